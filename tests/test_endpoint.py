"""Endpoint: validation, the unencrypted refusal, and no secret in repr/str."""

import pytest

from imap_sent_sync.mailsync.endpoint import DEFAULT_TIMEOUT, Endpoint
from imap_sent_sync.mailsync.errors import (
    AuthError, MailsyncError, TlsError, UnencryptedNotAllowed,
)

SECRET = "Pw-9f3c-unique!"


def make(**kw):
    values = dict(host="imap.example.com", port=993, security="ssl", login="bob", secret=SECRET)
    values.update(kw)
    return Endpoint(**values)


def test_secret_never_in_repr_or_str():
    endpoint = make(ca_pem="-----BEGIN CERTIFICATE-----")
    assert SECRET not in repr(endpoint)
    assert SECRET not in str(endpoint)
    assert "BEGIN CERTIFICATE" not in repr(endpoint)
    assert endpoint.describe() == "imap.example.com:993 (SSL/TLS)"


def test_normalisation():
    endpoint = make(host="  imap.example.com ", port="143", security=" STARTTLS", timeout=0)
    assert (endpoint.host, endpoint.port, endpoint.security) == ("imap.example.com", 143,
                                                                   "starttls")
    assert endpoint.timeout == DEFAULT_TIMEOUT  # never a socket without timeout


@pytest.mark.parametrize("kw", [dict(security="tls13"), dict(host=""), dict(port="abc"),
                                dict(port=0), dict(port=70000)])
def test_invalid_configuration(kw):
    with pytest.raises(MailsyncError) as caught:
        make(**kw)
    assert caught.value.reason == "config" and caught.value.hint


def test_unencrypted_needs_acknowledgement():
    with pytest.raises(UnencryptedNotAllowed) as caught:
        make(security="none", port=143).check_security_allowed(step="imap_tls")
    assert isinstance(caught.value, TlsError)
    assert caught.value.step == "imap_tls"
    assert "unencrypted" in caught.value.message
    make(security="none", port=143, allow_unencrypted=True).check_security_allowed()
    make().check_security_allowed()


@pytest.mark.parametrize("kw, reason", [
    (dict(login=None), "no_login"), (dict(login=" "), "no_login"),
    (dict(secret=None), "no_secret"), (dict(secret=""), "no_secret"),
])
def test_missing_credentials(kw, reason):
    with pytest.raises(AuthError) as caught:
        make(**kw).check_credentials(step="imap_login")
    assert caught.value.reason == reason and caught.value.step == "imap_login"
    make().check_credentials()
