"""SMTP submission connections against the rig's real aiosmtpd servers: no mail is sent."""
import smtplib
import ssl

import pytest

from mailrig import get_shared_rig

from imap_sent_sync.mailsync.endpoint import Endpoint
from imap_sent_sync.mailsync.errors import (
    AuthError, ConnectError, StartTlsUnavailable, TlsError, UnencryptedNotAllowed,
)
from imap_sent_sync.mailsync.smtp import close_smtp, connect_smtp, smtp_session


@pytest.fixture(scope="session")
def rig():
    return get_shared_rig()


@pytest.fixture(scope="module")
def user(rig):
    return rig.add_user()


def endpoint(rig, user, port=None, security="starttls", **kw):
    values = dict(host=rig.host, port=port or rig.smtp_port, security=security,
                  login=user.login, secret=user.password, ca_pem=rig.ca_pem, timeout=5)
    values.update(kw)
    return Endpoint(**values)


def sent_by(rig, user):
    return [d for d in rig.deliveries if d.login == user.login]


@pytest.mark.parametrize("port_name, security", [("smtp_port", "starttls"),
                                                 ("smtps_port", "ssl")])
def test_login_over_tls_sends_nothing(rig, port_name, security):
    user = rig.add_user()
    smtp = connect_smtp(endpoint(rig, user, getattr(rig, port_name), security))
    try:
        assert isinstance(smtp.sock, ssl.SSLSocket)
        assert smtp.sock.gettimeout() == 5
        assert smtp.has_extn("auth")
        assert smtp.noop()[0] == 250  # authenticated session is alive
    finally:
        close_smtp(smtp)
    assert sent_by(rig, user) == []


def test_session_context_manager(rig, user):
    with smtp_session(endpoint(rig, user)) as smtp:
        assert isinstance(smtp.sock, ssl.SSLSocket)
    assert smtp.sock is None  # QUIT closed it


def test_wrong_password(rig, user):
    with pytest.raises(AuthError) as caught:
        connect_smtp(endpoint(rig, user, secret="wrong-Pw-77aa"))
    error = caught.value
    assert error.reason == "wrong_credentials" and error.step == "smtp_auth"
    assert "535" in error.message and user.login in error.message
    assert "app password" in error.hint
    assert "wrong-Pw-77aa" not in error.message + error.hint + (error.detail or "")


def test_non_ascii_password(rig):
    # smtplib encodes SASL as ASCII; connect_smtp sends AUTH PLAIN in UTF-8 itself.
    user = rig.add_user(password="pässwörd-✓-9f3c")
    with smtp_session(endpoint(rig, user)) as smtp:
        assert smtp.noop()[0] == 250


def test_closed_port(rig, user):
    with pytest.raises(ConnectError) as caught:
        connect_smtp(endpoint(rig, user, rig.closed_port()))
    assert caught.value.reason == "refused" and caught.value.step == "smtp_reach"
    assert "587" in caught.value.hint


@pytest.mark.parametrize("port_name, security", [("smtps_port", "ssl"),
                                                 ("smtp_port", "starttls")])
def test_certificate_not_trusted_without_the_ca(rig, user, port_name, security):
    with pytest.raises(TlsError) as caught:
        connect_smtp(endpoint(rig, user, getattr(rig, port_name), security, ca_pem=None))
    assert caught.value.reason == "untrusted" and caught.value.step == "smtp_tls"
    assert "Custom CA" in caught.value.hint


def test_starttls_not_offered_is_refused(rig, user):
    with pytest.raises(StartTlsUnavailable) as caught:
        connect_smtp(endpoint(rig, user, rig.smtp_nostarttls_port, "starttls"))
    assert caught.value.step == "smtp_tls"
    assert "does not offer STARTTLS" in caught.value.message


def test_implicit_tls_on_a_starttls_port(rig, user):
    with pytest.raises(TlsError) as caught:
        connect_smtp(endpoint(rig, user, rig.smtp_port, "ssl"))
    assert caught.value.reason == "not_tls"
    assert "587" in caught.value.hint


def test_no_encryption_refused_without_acknowledgement(rig, user):
    with pytest.raises(UnencryptedNotAllowed):
        connect_smtp(endpoint(rig, user, rig.closed_port(), "none"))


def test_no_encryption_with_acknowledgement(rig, user):
    plain = endpoint(rig, user, rig.smtp_nostarttls_port, "none", allow_unencrypted=True)
    with smtp_session(plain) as smtp:
        assert not isinstance(smtp.sock, ssl.SSLSocket)
        assert smtp.noop()[0] == 250


def test_server_requiring_starttls_before_auth(rig, user):
    # "none" on a port that only offers AUTH after STARTTLS: explained, not a crash.
    plain = endpoint(rig, user, rig.smtp_port, "none", allow_unencrypted=True)
    with pytest.raises(AuthError) as caught:
        connect_smtp(plain)
    assert caught.value.reason == "privacy_required"
    assert "STARTTLS" in caught.value.hint


def test_login_false_connects_without_auth(rig, user):
    smtp = connect_smtp(endpoint(rig, user), login=False)
    try:
        assert isinstance(smtp.sock, ssl.SSLSocket)
        with pytest.raises(smtplib.SMTPSenderRefused):
            smtp.sendmail(user.address, ["someone@example.com"], b"Subject: x\r\n\r\nx\r\n")
    finally:
        close_smtp(smtp)
    assert sent_by(rig, user) == []
