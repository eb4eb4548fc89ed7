"""IMAP connections with a strict security policy, on top of imapclient.

``connect_imap(endpoint)`` returns a logged-in ``imapclient.IMAPClient``:

* "ssl": implicit TLS from the first byte;
* "starttls": plain connect, then STARTTLS -- and the connection is refused if
  the server does not offer it (no silent fallback to clear text);
* "none": clear text, only when ``endpoint.allow_unencrypted`` is set.

Certificates are always verified (``tls.make_ssl_context``). Every socket has
``endpoint.timeout``. All failures are translated into ``errors`` classes
with a human message and a fix hint; the secret is registered with the log
redaction filter while it is on the wire.
"""
import imaplib
import logging
import re
import ssl
from contextlib import contextmanager
from typing import NamedTuple

from imapclient import IMAPClient
from imapclient import exceptions as imap_exceptions

from . import errors
from .endpoint import SECURITY_NONE, SECURITY_SSL, SECURITY_STARTTLS
from .errors import AppendError, AuthError, ConnectError, StartTlsUnavailable, TlsError
from .redact import install_redaction, redact
from .tls import ssl_context_for, tls_error_from

_logger = logging.getLogger(__name__)

STEP_REACH = "imap_reach"
STEP_TLS = "imap_tls"
STEP_LOGIN = "imap_login"

_GENERIC_LOGIN_HINT = (
    "Check the login name (usually the full email address) and the password. Most providers "
    "(Gmail, Yahoo, iCloud, Outlook.com...) refuse the normal password and need an app "
    "password, and some need IMAP access switched on in the mailbox settings first.")


def quiet_imaplib_unless_debugging(client):
    """Switch imaplib's own tracing off unless someone listens at DEBUG.

    IMAPClient sets imaplib's debug level to 5, and imaplib then formats the
    repr() of every line it reads before the logger decides to drop it: a 25 MB
    message body costs several extra copies of itself in memory and makes a
    full-body FETCH about twice as slow. With the mailbox's debug log on, the
    trace is kept (and redacted).
    """
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


def connect_imap(endpoint, *, login=True):
    """Open an IMAP connection to ``endpoint`` and log in (unless ``login=False``).

    Raises ConnectError, TlsError (StartTlsUnavailable, UnencryptedNotAllowed)
    or AuthError. The caller owns the client: ``logout()`` it, or use
    ``imap_session``.
    """
    endpoint.check_security_allowed(step=STEP_TLS)
    context = ssl_context_for(endpoint, STEP_TLS)
    with install_redaction(endpoint.secret):
        client = open_imap(endpoint, context)
        if login:
            try:
                login_imap(client, endpoint)
            except BaseException:
                abandon(client)
                raise
    return client


@contextmanager
def imap_session(endpoint, *, login=True):
    """``with imap_session(endpoint) as client:`` -- logs out (never EXPUNGEs) at the end."""
    client = connect_imap(endpoint, login=login)
    try:
        yield client
    finally:
        close_imap(client)


def open_imap(endpoint, context=None):
    """Connect and secure the channel (TLS or STARTTLS), without logging in."""
    if context is None and endpoint.security != SECURITY_NONE:
        context = ssl_context_for(endpoint, STEP_TLS)
    try:
        client = IMAPClient(endpoint.host, endpoint.port,
                            ssl=endpoint.security == SECURITY_SSL,
                            ssl_context=context, timeout=endpoint.timeout)
    except Exception as exc:
        raise connect_failure(exc, endpoint) from None
    quiet_imaplib_unless_debugging(client)
    if endpoint.security == SECURITY_STARTTLS:
        try:
            start_tls(client, endpoint, context)
        except BaseException:
            abandon(client)
            raise
    return client


def start_tls(client, endpoint, context):
    """Upgrade to TLS, refusing to continue in clear text if the server can't."""
    if not client.has_capability("STARTTLS"):
        raise StartTlsUnavailable(
            "%s port %s does not offer STARTTLS, so the connection was refused rather than "
            "sending the password unencrypted." % (endpoint.host, endpoint.port),
            "Choose SSL/TLS (usually port 993). If the server really has no encryption, "
            "ask its administrator to enable it.",
            STEP_TLS, reason="starttls_unavailable")
    try:
        client.starttls(context)
    except Exception as exc:
        raise connect_failure(exc, endpoint) from None
    if not isinstance(client.socket(), ssl.SSLSocket):  # belt and braces: never go on in clear
        raise TlsError("STARTTLS did not result in an encrypted connection.",
                       "Choose SSL/TLS instead.", STEP_TLS, reason="starttls_failed")


def connect_failure(exc, endpoint):
    """Translate anything raised while connecting/securing into our errors."""
    if isinstance(exc, errors.MailsyncError):
        return exc
    if errors.is_tls_exception(exc):
        return tls_error_from(exc, endpoint.host, endpoint.port, STEP_TLS)
    if isinstance(exc, OSError):
        return errors.connect_error_from(exc, endpoint.host, endpoint.port, endpoint.timeout,
                                         STEP_REACH)
    if isinstance(exc, imaplib.IMAP4.abort):
        # imaplib.abort: socket error or the server said BYE (e.g. too many connections)
        return ConnectError("%s closed the connection (%s)."
                            % (endpoint.describe(), redact(str(exc), [endpoint.secret])[:200]),
                            "Try again later. If it persists, check the port and security, and "
                            "close other apps connected to this mailbox.", STEP_REACH,
                            reason="closed", detail=str(exc))
    if isinstance(exc, imaplib.IMAP4.error):
        if "TLS" in str(exc):
            return TlsError("The server failed to start TLS: %s" % exc,
                            "Choose SSL/TLS (port 993) instead of STARTTLS.", STEP_TLS,
                            reason="starttls_failed", detail=str(exc))
        return ConnectError(
            "%s did not answer like an IMAP server." % endpoint.describe(),
            "Check the port: IMAP uses 993 (SSL/TLS) or 143 (STARTTLS); 465/587/25 are SMTP "
            "and 995/110 are POP3.", STEP_REACH, reason="not_imap", detail=str(exc))
    return ConnectError("Could not connect to %s: %s" % (endpoint.describe(), exc),
                        "Check the host, port and security.", STEP_REACH, reason="network",
                        detail=repr(exc))


def login_imap(client, endpoint):
    """LOGIN, or AUTHENTICATE PLAIN when the credential is not ASCII.

    imaplib sends LOGIN arguments as ASCII; AUTHENTICATE PLAIN carries UTF-8.
    """
    endpoint.check_credentials(STEP_LOGIN)
    if client.has_capability("LOGINDISABLED"):
        raise AuthError(
            "The server does not allow logging in without encryption.",
            "Choose SSL/TLS or STARTTLS.", STEP_LOGIN, reason="privacy_required")
    try:
        if endpoint.login.isascii() and endpoint.secret.isascii():
            client.login(endpoint.login, endpoint.secret)
        elif client.has_capability("AUTH=PLAIN"):
            client.plain_login(endpoint.login, endpoint.secret)
        else:
            raise AuthError(
                "The login name or password contains non-ASCII characters, which this server "
                "cannot accept (it does not offer AUTH=PLAIN).",
                "Use a password made of ASCII letters, digits and punctuation (an app password "
                "is).", STEP_LOGIN, reason="non_ascii")
    except imap_exceptions.LoginError as exc:
        # imapclient turns every error during LOGIN into LoginError, including a
        # dropped connection (imaplib.abort): that is not a wrong password.
        if isinstance(exc.__context__, imaplib.IMAP4.abort):
            failure = connect_failure(exc.__context__, endpoint)
            failure.step = STEP_LOGIN
            raise failure from None
        raise auth_error_from_response(str(exc), endpoint) from None
    except errors.MailsyncError:
        raise
    except Exception as exc:
        failure = connect_failure(exc, endpoint)
        failure.step = STEP_LOGIN
        raise failure from None
    _logger.debug("IMAP login as %s on %s", endpoint.login, endpoint.describe())


# RFC 5530 response codes -> (reason, message, hint)
_LOGIN_CODES = {
    "UNAVAILABLE": ("unavailable", "The server's login service is temporarily unavailable.",
                    "Try again in a few minutes."),
    "AUTHORIZATIONFAILED": ("authorization", "The login worked, but it may not open this mailbox.",
                            "Check the login name; for a shared mailbox ask its administrator."),
    "EXPIRED": ("expired", "The password has expired.",
                "Set a new password (or app password) with your provider, then enter it here."),
    "PRIVACYREQUIRED": ("privacy_required",
                        "The server only accepts logins over an encrypted connection.",
                        "Choose SSL/TLS or STARTTLS."),
    "CONTACTADMIN": ("contact_admin", "The server refused the login and asks you to contact "
                     "your mail administrator.", "Contact your mail administrator."),
    "LIMIT": ("limit", "The server refused the login: too many connections for this account.",
              "Close other mail apps or syncs of this mailbox for a while, then try again."),
}


def auth_error_from_response(text, endpoint, hint=None):
    """AuthError for a refused LOGIN, explaining RFC 5530 codes when the server gives one."""
    server_text = _server_text(text, endpoint)
    code = re.search(r"\[([A-Z-]+)", server_text)
    code = code.group(1) if code else ""
    if code in _LOGIN_CODES:
        reason, message, code_hint = _LOGIN_CODES[code]
        return AuthError("%s (server said: %s)" % (message, server_text), hint or code_hint,
                         STEP_LOGIN, reason=reason, detail=server_text)
    if re.search(r"too many|simultaneous", server_text, re.I):
        reason, message, code_hint = _LOGIN_CODES["LIMIT"]
        return AuthError("%s (server said: %s)" % (message, server_text), code_hint,
                         STEP_LOGIN, reason=reason, detail=server_text)
    return AuthError(
        "The server refused the login for %r: wrong login name or password, or the account "
        "needs an app password (server said: %s)." % (endpoint.login, server_text),
        hint or _GENERIC_LOGIN_HINT, STEP_LOGIN, reason="wrong_credentials", detail=server_text)


def _server_text(text, endpoint):
    text = re.sub(r"^\w+ failed: ", "", str(text or "").strip())
    if text.startswith(("b'", 'b"')) and text.endswith(text[1]):
        text = text[2:-1]
    text = redact(text, [endpoint.secret])
    return text[:300] or "no details"


def close_imap(client):
    """LOGOUT (never CLOSE: CLOSE would expunge the user's \\Deleted messages)."""
    try:
        client.logout()
    except Exception:
        abandon(client)


def abandon(client):
    """Drop the connection without talking to the server again."""
    try:
        client.shutdown()
    except Exception:
        pass


def server_capabilities(client):
    """Capabilities as a frozenset of upper-case str ("IDLE", "AUTH=PLAIN", ...)."""
    return frozenset((c.decode("ascii", "replace") if isinstance(c, bytes) else str(c)).upper()
                     for c in client.capabilities())


# -- UIDPLUS responses (imapclient returns them unparsed) -------------------

class AppendUid(NamedTuple):
    uidvalidity: int
    uids: tuple

    @property
    def uid(self):
        return self.uids[0] if self.uids else None


class CopyUid(NamedTuple):
    uidvalidity: int
    source_uids: tuple
    dest_uids: tuple


def parse_uid_set(text):
    """'4,7:9' -> (4, 7, 8, 9) (RFC 4315 uid-set, ranges may be reversed)."""
    uids = []
    for part in str(text).split(","):
        if ":" in part:
            low, high = sorted(int(x) for x in part.split(":"))
            uids.extend(range(low, high + 1))
        elif part:
            uids.append(int(part))
    return tuple(uids)


def _response_text(response):
    if isinstance(response, (list, tuple)):
        response = b" ".join(r if isinstance(r, bytes) else str(r).encode() for r in response if r)
    if isinstance(response, bytes):
        response = response.decode("utf-8", "replace")
    return str(response or "")


def parse_appenduid(response):
    """AppendUid from an APPEND response ('[APPENDUID 38505 3955] ...'), or None."""
    match = re.search(r"\[APPENDUID (\d+) ([\d:,]+)\]", _response_text(response), re.I)
    if not match:
        return None
    return AppendUid(int(match.group(1)), parse_uid_set(match.group(2)))


def parse_copyuid(response):
    """CopyUid from a COPY/MOVE response ('[COPYUID 38505 304,319:320 3956:3958]'), or None."""
    match = re.search(r"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", _response_text(response), re.I)
    if not match:
        return None
    return CopyUid(int(match.group(1)), parse_uid_set(match.group(2)),
                   parse_uid_set(match.group(3)))


def append_message(client, folder, raw, flags=("\\Seen",), msg_time=None):
    """APPEND ``raw`` bytes to ``folder``; returns AppendUid when the server gives one.

    Raises AppendError with a hint for the usual refusals (missing folder,
    quota, no permission).
    """
    try:
        response = client.append(folder, raw, flags=flags, msg_time=msg_time)
    except imap_exceptions.IMAPClientError as exc:
        raise append_error_from(exc, folder) from None
    return parse_appenduid(response)


def append_error_from(exc, folder):
    text = str(exc)
    if "TRYCREATE" in text.upper():
        return AppendError("The folder %r does not exist on the server." % folder,
                           "Choose another folder, or create it.", reason="no_folder",
                           detail=text)
    if re.search(r"OVERQUOTA|quota", text, re.I):
        return AppendError("The mailbox is full (over quota), so %r cannot take a new message."
                           % folder, "Free some space in the mailbox.", reason="quota",
                           detail=text)
    if re.search(r"NOPERM|permission|denied|read-?only", text, re.I):
        return AppendError("This account may not add messages to %r." % folder,
                           "Choose another folder, or ask the mailbox administrator for "
                           "insert rights.", reason="no_permission", detail=text)
    return AppendError("The server refused to add a message to %r: %s" % (folder, text),
                       "Check the folder and the mailbox quota.", reason="refused", detail=text)
