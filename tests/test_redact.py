"""Secret redaction in text and log records (pure; the end-to-end check against
real servers is in test_diagnostics.py::test_no_secret_in_debug_logs)."""
import base64
import logging

import pytest
from hypothesis import given, settings, strategies as st

from imap_sent_sync.mailsync.errors import AuthError
from imap_sent_sync.mailsync.redact import (
    MASK, REDACTED_LOGGERS, SecretRedactingFilter, contains_secret, install_redaction, redact,
)

SECRET = "Pw-9f3c-unique!"


def b64(data):
    return base64.b64encode(data).decode("ascii")


def test_plain_occurrences():
    assert redact("login bob %s and again %s." % (SECRET, SECRET), [SECRET]) == \
        "login bob *** and again ***."


def test_nothing_to_redact():
    assert redact("hello", []) == "hello"
    assert redact("hello", None) == "hello"
    assert redact(None, [SECRET]) is None
    assert redact(b"bytes " + SECRET.encode(), [SECRET]) == "bytes ***"


@pytest.mark.parametrize("login", ["", "b", "bo", "bob", "bob@example.com", "x" * 31])
def test_auth_plain_blob_for_any_login(login):
    # AUTH PLAIN base64("\0login\0password"): the password's position shifts with the login.
    blob = b64(("\0%s\0%s" % (login, SECRET)).encode())
    out = redact("C: AUTH PLAIN %s\r\nS: 235 ok" % blob, [SECRET])
    assert blob not in out and MASK in out
    assert out.endswith("S: 235 ok")


def test_auth_login_and_xoauth_style_blobs():
    assert redact("334 UGFzc3dvcmQ6\r\n%s\r\n" % b64(SECRET.encode()), [SECRET]) == \
        "334 UGFzc3dvcmQ6\r\n***\r\n"
    assert contains_secret(b64(SECRET.encode()).rstrip("="), [SECRET])
    assert contains_secret(base64.urlsafe_b64encode(b"user=a\x01auth=" + SECRET.encode())
                           .decode(), [SECRET])


def test_imap_quoted_and_repr_forms():
    secret = 'a"b\\c-9f3c'
    quoted = 'a\\"b\\\\c-9f3c'  # as sent in an IMAP quoted string
    line = "> %r" % ('A001 LOGIN bob "%s"' % quoted).encode()  # as imaplib logs it
    assert secret not in redact(line, [secret])
    assert "9f3c" not in redact(line, [secret])
    assert "9f3c" not in redact(repr(secret), [secret])


def test_unicode_secret_in_base64():
    secret = "pässwörd-ünïcode"
    blob = b64(("\0bob\0" + secret).encode("utf-8"))
    assert redact(blob, [secret]) == MASK


def test_unrelated_base64_untouched():
    text = "AUTH PLAIN %s" % b64(b"\0bob\0another-password")
    assert redact(text, [SECRET]) == text


@settings(max_examples=200, deadline=None)
@given(login=st.text(max_size=40),
       secret=st.text(min_size=6, max_size=40).filter(lambda s: s.strip() == s and s))
def test_property_no_encoding_survives(login, secret):
    blob = b64(("\0%s\0%s" % (login, secret)).encode("utf-8"))
    out = redact("%s | %s | %s" % (secret, blob, b64(secret.encode("utf-8"))), [secret])
    assert secret not in out
    assert blob not in out
    assert b64(secret.encode("utf-8")) not in out


# -- logging ------------------------------------------------------------------

def test_filter_rewrites_message_args_and_exception(caplog):
    logger = logging.getLogger("test_redact.direct")
    flt = SecretRedactingFilter([SECRET])
    logger.addFilter(flt)
    try:
        with caplog.at_level(logging.DEBUG, logger="test_redact.direct"):
            logger.debug("LOGIN %s %s", "bob", SECRET)
            try:
                raise ValueError("boom " + SECRET)
            except ValueError:
                logger.exception("failed with %r", {"password": SECRET})
    finally:
        logger.removeFilter(flt)
    assert SECRET not in caplog.text
    assert "LOGIN bob ***" in caplog.text
    assert "ValueError: boom ***" in caplog.text


def test_install_redaction_covers_imapclient_loggers_and_is_scoped(caplog):
    logger = logging.getLogger("imapclient.imapclient")
    with caplog.at_level(logging.DEBUG):
        with install_redaction(SECRET):
            logger.debug("> b'A001 LOGIN bob %s'", SECRET)
            for name in REDACTED_LOGGERS:
                logging.getLogger(name).debug("secret is %s", SECRET)
        logger.debug("after: %s", "unrelated")
    assert SECRET not in caplog.text
    assert caplog.text.count(MASK) == 1 + len(REDACTED_LOGGERS)
    assert "after: unrelated" in caplog.text


def test_nested_registrations_are_counted(caplog):
    logger = logging.getLogger("imapclient.imapclient")
    with caplog.at_level(logging.DEBUG):
        with install_redaction(SECRET):
            with install_redaction(SECRET):
                pass
            logger.debug("still %s", SECRET)  # the outer block still protects it
    assert SECRET not in caplog.text


def test_install_redaction_scrubs_escaping_errors():
    with pytest.raises(AuthError) as caught:
        with install_redaction(SECRET):
            raise AuthError("server echoed %s" % SECRET, "hint", detail="detail %s" % SECRET)
    assert SECRET not in str(caught.value)
    assert SECRET not in caught.value.detail
