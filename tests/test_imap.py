"""IMAP connections: response parsing (pure), then connect/login against the real rig."""

import socket
import ssl

import pytest
from mailrig import get_shared_rig

from imap_sent_sync.mailsync.endpoint import Endpoint
from imap_sent_sync.mailsync.errors import (
    AppendError, AuthError, ConnectError, StartTlsUnavailable, TlsError, UnencryptedNotAllowed,
)
from imap_sent_sync.mailsync.imap import (
    AppendUid, append_message, close_imap, connect_imap, imap_session, parse_appenduid,
    parse_copyuid, parse_uid_set, server_capabilities,
)


# -- UIDPLUS response parsing ---------------------------------------------------

def test_parse_uid_set():
    assert parse_uid_set("4") == (4,)
    assert parse_uid_set("4,7:9") == (4, 7, 8, 9)
    assert parse_uid_set("9:7") == (7, 8, 9)


@pytest.mark.parametrize("response, expected", [
    (b"[APPENDUID 38505 3955] APPEND completed", AppendUid(38505, (3955,))),
    ("[appenduid 1 2:4] Append completed.", AppendUid(1, (2, 3, 4))),
    ([b"[APPENDUID 7 12] Append completed (0.001 + 0.000 secs)."], AppendUid(7, (12,))),
    (b"APPEND completed", None),
    (None, None),
])
def test_parse_appenduid(response, expected):
    assert parse_appenduid(response) == expected
    if expected:
        assert parse_appenduid(response).uid == expected.uids[0]


def test_parse_copyuid():
    parsed = parse_copyuid(b"[COPYUID 38505 304,319:320 3956:3958] Done")
    assert parsed.uidvalidity == 38505
    assert parsed.source_uids == (304, 319, 320)
    assert parsed.dest_uids == (3956, 3957, 3958)
    assert parse_copyuid(b"OK Done") is None


# -- against the real rig (Dovecot) -------------------------------------------

LAYOUTS = ["standard", "gmail", "outlook"]


@pytest.fixture(scope="session")
def rig():
    return get_shared_rig()


@pytest.fixture(scope="module")
def user(rig):
    return rig.add_user()


def endpoint(rig, user, port=None, security="ssl", **kw):
    values = dict(host=rig.host, port=port or rig.imaps_port, security=security,
                  login=user.login, secret=user.password, ca_pem=rig.ca_pem, timeout=5)
    values.update(kw)
    return Endpoint(**values)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_login_over_implicit_tls(rig, layout):
    user = rig.add_user(layout=layout)
    with imap_session(endpoint(rig, user)) as client:
        assert isinstance(client.socket(), ssl.SSLSocket)
        assert client.socket().getpeercert()  # verified, so the certificate is known
        names = {name for _flags, _delim, name in client.list_folders()}
        assert set(user.folders) <= names
        assert "UIDPLUS" in server_capabilities(client)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_login_over_starttls(rig, layout):
    user = rig.add_user(layout=layout)
    with imap_session(endpoint(rig, user, rig.imap_port, "starttls")) as client:
        assert isinstance(client.socket(), ssl.SSLSocket)
        assert client.select_folder(user.sent_folder)[b"UIDVALIDITY"]
    # Server-side proof that the login happened inside TLS on the STARTTLS port.
    # (the rig's own setup logins are on the implicit-TLS port)
    logins = [e for e in rig.imap_logins(user, min_count=2) if e["listener"] == "imap"]
    assert len(logins) == 1 and logins[0]["tls"] is True


@pytest.mark.parametrize("port_name, security", [("imaps_port", "ssl"),
                                                 ("imap_port", "starttls")])
def test_timeout_is_set_on_the_socket(rig, user, port_name, security):
    client = connect_imap(endpoint(rig, user, getattr(rig, port_name), security, timeout=3.5))
    try:
        assert isinstance(client.socket(), ssl.SSLSocket)
        assert client.socket().gettimeout() == 3.5
    finally:
        close_imap(client)


def test_empty_password_is_not_sent(rig, user):
    with pytest.raises(AuthError) as caught:
        connect_imap(endpoint(rig, user, secret=""))
    assert caught.value.reason == "no_secret"


def test_wrong_password_explains_app_passwords(rig, user):
    with pytest.raises(AuthError) as caught:
        connect_imap(endpoint(rig, user, secret="wrong-Pw-77aa"))
    error = caught.value
    assert error.reason == "wrong_credentials" and error.step == "imap_login"
    assert "refused the login" in error.message and user.login in error.message
    assert "AUTHENTICATIONFAILED" in error.message  # the server's own words are kept
    assert "app password" in error.hint and "IMAP access" in error.hint
    assert "wrong-Pw-77aa" not in error.message + error.hint + (error.detail or "")


def test_unknown_user_is_the_same_clear_error(rig):
    ghost = endpoint(rig, rig.add_user(), login="nobody-here@rig.test")
    with pytest.raises(AuthError) as caught:
        connect_imap(ghost)
    assert caught.value.reason == "wrong_credentials"


def test_non_ascii_password_uses_authenticate_plain(rig):
    user = rig.add_user(password="pässwörd-✓-9f3c")
    with imap_session(endpoint(rig, user)) as client:
        assert client.list_folders()


def test_closed_port_is_refused(rig, user):
    with pytest.raises(ConnectError) as caught:
        connect_imap(endpoint(rig, user, rig.closed_port()))
    assert caught.value.reason == "refused" and caught.value.step == "imap_reach"
    assert "refused the connection" in caught.value.message
    assert "993" in caught.value.hint


def test_unknown_host_is_a_dns_error(rig, user):
    with pytest.raises(ConnectError) as caught:
        connect_imap(endpoint(rig, user, host="no-such-host.invalid"))
    assert caught.value.reason == "dns"
    assert "no-such-host.invalid" in caught.value.message


def test_silent_server_times_out(rig, user):
    # A listening socket nobody serves: TCP connects (backlog), no greeting ever comes.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        with pytest.raises(ConnectError) as caught:
            connect_imap(endpoint(rig, user, port, "starttls", timeout=0.5))
    assert caught.value.reason == "timeout"
    assert "0.5 seconds" in caught.value.message


def test_certificate_not_trusted_without_the_ca(rig, user):
    with pytest.raises(TlsError) as caught:
        connect_imap(endpoint(rig, user, ca_pem=None))
    assert caught.value.reason == "untrusted" and caught.value.step == "imap_tls"
    assert "Custom CA" in caught.value.hint


def test_certificate_not_trusted_without_the_ca_over_starttls(rig, user):
    with pytest.raises(TlsError) as caught:
        connect_imap(endpoint(rig, user, rig.imap_port, "starttls", ca_pem=None))
    assert caught.value.reason == "untrusted"


def test_hostname_mismatch(rig, user):
    # "127.1" reaches 127.0.0.1 (inet_aton accepts the short form) but is not an
    # IP address to OpenSSL, so it is checked as a host name, which the rig's
    # certificate (localhost, rig.test names, loopback IPs) does not cover. Works
    # on any machine, unlike relying on /etc/hosts.
    alias = "127.1"
    with pytest.raises(TlsError) as caught:
        connect_imap(endpoint(rig, user, host=alias))
    assert caught.value.reason == "hostname"
    assert alias in caught.value.message


def test_starttls_not_offered_is_refused(rig, user):
    with pytest.raises(StartTlsUnavailable) as caught:
        connect_imap(endpoint(rig, user, rig.imap_nostarttls_port, "starttls"))
    assert caught.value.step == "imap_tls"
    assert "does not offer STARTTLS" in caught.value.message
    assert "SSL/TLS" in caught.value.hint
    # and the password never went out: no login on the plain server
    assert all(entry["listener"] != "imap_nostarttls" for entry in rig.imap_logins(user))


def test_implicit_tls_on_a_starttls_port(rig, user):
    with pytest.raises(TlsError) as caught:
        connect_imap(endpoint(rig, user, rig.imap_port, "ssl"))
    assert caught.value.reason == "not_tls"
    assert "STARTTLS" in caught.value.hint


def test_no_encryption_refused_without_acknowledgement(rig, user):
    # A closed port proves no connection is even attempted.
    with pytest.raises(UnencryptedNotAllowed) as caught:
        connect_imap(endpoint(rig, user, rig.closed_port(), "none"))
    assert caught.value.step == "imap_tls"
    assert "unencrypted" in caught.value.message


def test_no_encryption_with_acknowledgement(rig):
    user = rig.add_user()
    unencrypted = endpoint(rig, user, rig.imap_nostarttls_port, "none", allow_unencrypted=True)
    with imap_session(unencrypted) as client:
        assert not isinstance(client.socket(), ssl.SSLSocket)
        assert client.list_folders()
    logins = [e for e in rig.imap_logins(user, min_count=2) if e["listener"] == "imap_nostarttls"]
    assert len(logins) == 1 and logins[0]["tls"] is False


def test_session_logout_never_expunges(rig):
    user = rig.add_user()
    raw = b"Subject: keep me\r\nMessage-ID: <keep@rig.test>\r\n\r\nbody\r\n"
    uid = rig.append(user, "INBOX", raw, flags=(b"\\Deleted",))
    with imap_session(endpoint(rig, user)) as client:
        client.select_folder("INBOX")
    assert rig.folder_uids(user, "INBOX") == [uid]


def test_append_message_returns_appenduid(rig):
    user = rig.add_user()
    raw = b"Subject: sent\r\nMessage-ID: <a1@rig.test>\r\n\r\nbody\r\n"
    with imap_session(endpoint(rig, user)) as client:
        appended = append_message(client, user.sent_folder, raw)
    assert appended.uid in rig.folder_uids(user, user.sent_folder)
    assert b"\\Seen" in rig.fetch_flags(user, user.sent_folder)[appended.uid]


def test_append_to_missing_folder(rig, user):
    with imap_session(endpoint(rig, user)) as client:
        with pytest.raises(AppendError) as caught:
            append_message(client, "No Such Folder", b"Subject: x\r\n\r\nx\r\n")
    assert caught.value.reason == "no_folder"


def test_imaplib_tracing_off_unless_debug_logging(rig, user):
    """imaplib's repr() tracing would copy every fetched body (4x peak memory on a
    25 MB message, measured by bench/bench_inbound.py); it stays on only while
    someone listens at DEBUG."""
    import logging
    with imap_session(endpoint(rig, user)) as client:
        assert client._imap.debug == 0
    trace_logger = logging.getLogger("imapclient.imaplib")
    previous = trace_logger.level
    trace_logger.setLevel(logging.DEBUG)
    try:
        with imap_session(endpoint(rig, user)) as client:
            assert client._imap.debug > 0
    finally:
        trace_logger.setLevel(previous)
