"""SMTP submission connections with the same security policy as IMAP.

``connect_smtp(endpoint)`` returns an ``smtplib.SMTP`` (or ``SMTP_SSL``) on
which EHLO is done, TLS is up ("ssl" implicit, or "starttls" -- refused if
not offered) and AUTH succeeded. Nothing is sent. smtplib's protocol trace
(``set_debuglevel``) is never switched on: it prints to stderr, passwords
included in AUTH lines.
"""
import base64
import logging
import smtplib
import socket
import ssl
from contextlib import contextmanager

from . import errors
from .endpoint import SECURITY_NONE, SECURITY_SSL, SECURITY_STARTTLS
from .errors import AuthError, ConnectError, SmtpError, StartTlsUnavailable, TlsError
from .redact import install_redaction, redact
from .tls import ssl_context_for, tls_error_from

_logger = logging.getLogger(__name__)

STEP_REACH = "smtp_reach"
STEP_TLS = "smtp_tls"
STEP_AUTH = "smtp_auth"

_GENERIC_AUTH_HINT = (
    "Check the login name (usually the full email address) and the password. Most providers "
    "need an app password for SMTP, and some (Microsoft 365) need SMTP AUTH enabled for the "
    "mailbox by an administrator.")


def connect_smtp(endpoint, *, login=True, local_hostname=None):
    """Connect to an SMTP submission server, secure the channel, authenticate.

    Raises ConnectError, TlsError (StartTlsUnavailable, UnencryptedNotAllowed),
    AuthError or SmtpError. The caller owns the connection: ``quit()`` it, or
    use ``smtp_session``.
    """
    endpoint.check_security_allowed(step=STEP_TLS)
    context = ssl_context_for(endpoint, STEP_TLS)
    with install_redaction(endpoint.secret):
        smtp = open_smtp(endpoint, context, local_hostname=local_hostname)
        if login:
            try:
                login_smtp(smtp, endpoint)
            except BaseException:
                abandon(smtp)
                raise
    return smtp


@contextmanager
def smtp_session(endpoint, *, login=True):
    smtp = connect_smtp(endpoint, login=login)
    try:
        yield smtp
    finally:
        close_smtp(smtp)


def default_local_hostname():
    # smtplib's default is socket.getfqdn(), a reverse DNS lookup that has no
    # timeout and can stall for many seconds on a badly configured host.
    name = socket.gethostname() or "localhost"
    return name if "." in name else "%s.localdomain" % name


def open_smtp(endpoint, context=None, *, local_hostname=None):
    """Connect, EHLO and secure the channel, without authenticating."""
    if context is None and endpoint.security != SECURITY_NONE:
        context = ssl_context_for(endpoint, STEP_TLS)
    local_hostname = local_hostname or default_local_hostname()
    try:
        if endpoint.security == SECURITY_SSL:
            smtp = smtplib.SMTP_SSL(endpoint.host, endpoint.port, local_hostname=local_hostname,
                                    timeout=endpoint.timeout, context=context)
        else:
            smtp = smtplib.SMTP(endpoint.host, endpoint.port, local_hostname=local_hostname,
                                timeout=endpoint.timeout)
    except Exception as exc:
        raise connect_failure(exc, endpoint) from None
    try:
        _ehlo(smtp, endpoint)
        if endpoint.security == SECURITY_STARTTLS:
            start_tls(smtp, endpoint, context)
    except BaseException:
        abandon(smtp)
        raise
    return smtp


def _ehlo(smtp, endpoint):
    try:
        smtp.ehlo_or_helo_if_needed()
    except Exception as exc:
        raise connect_failure(exc, endpoint) from None


def start_tls(smtp, endpoint, context):
    """STARTTLS, refusing to continue in clear text if the server can't."""
    if not smtp.has_extn("starttls"):
        raise StartTlsUnavailable(
            "%s port %s does not offer STARTTLS, so the connection was refused rather than "
            "sending the password unencrypted." % (endpoint.host, endpoint.port),
            "Choose SSL/TLS (usually port 465), or the provider's submission port 587 with "
            "STARTTLS.", STEP_TLS, reason="starttls_unavailable")
    try:
        smtp.starttls(context=context)
        smtp.ehlo()  # capabilities must be asked again after STARTTLS (RFC 3207)
    except Exception as exc:
        raise connect_failure(exc, endpoint) from None
    if not isinstance(smtp.sock, ssl.SSLSocket):  # never go on in clear text
        raise TlsError("STARTTLS did not result in an encrypted connection.",
                       "Choose SSL/TLS instead.", STEP_TLS, reason="starttls_failed")


def connect_failure(exc, endpoint):
    """Translate anything raised while connecting/securing into our errors."""
    if isinstance(exc, errors.MailsyncError):
        return exc
    if errors.is_tls_exception(exc):
        return tls_error_from(exc, endpoint.host, endpoint.port, STEP_TLS)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return ConnectError(
            "%s closed the connection without an SMTP greeting." % endpoint.describe(),
            "Check the port and security: SMTP uses 465 (SSL/TLS) or 587 (STARTTLS).",
            STEP_REACH, reason="closed", detail=str(exc))
    if isinstance(exc, smtplib.SMTPResponseException):
        text = _response_text(exc, endpoint)
        if isinstance(exc, smtplib.SMTPConnectError):
            return ConnectError("%s refused the SMTP session: %s" % (endpoint.describe(), text),
                                "The server may be busy or blocking this address; try later.",
                                STEP_REACH, reason="refused", detail=text)
        return SmtpError("The SMTP server answered with an error: %s" % text,
                         "Check the port and security.", STEP_TLS, reason="smtp", detail=text)
    if isinstance(exc, OSError):
        return errors.connect_error_from(exc, endpoint.host, endpoint.port, endpoint.timeout,
                                         STEP_REACH)
    if isinstance(exc, smtplib.SMTPException):
        return SmtpError("SMTP error with %s: %s" % (endpoint.describe(), exc),
                         "Check the port and security.", STEP_REACH, reason="smtp",
                         detail=str(exc))
    return ConnectError("Could not connect to %s: %s" % (endpoint.describe(), exc),
                        "Check the host, port and security.", STEP_REACH, reason="network",
                        detail=repr(exc))


def _response_text(exc, endpoint):
    message = exc.smtp_error
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return redact("%s %s" % (exc.smtp_code, " ".join(str(message).split())),
                  [endpoint.secret])[:300]


def auth_mechanisms(smtp):
    return set(smtp.esmtp_features.get("auth", "").upper().split())


def login_smtp(smtp, endpoint):
    """AUTH with the endpoint's credential (never sends mail)."""
    endpoint.check_credentials(STEP_AUTH)
    if not smtp.has_extn("auth") and smtp.has_extn("starttls"):
        raise AuthError(
            "The SMTP server only allows logging in after STARTTLS.",
            "Choose STARTTLS (or SSL/TLS on port 465).", STEP_AUTH, reason="privacy_required")
    if not smtp.has_extn("auth"):
        raise AuthError(
            "The SMTP server offers no authentication on this connection.",
            "Use the provider's submission port (587 with STARTTLS, or 465 with SSL/TLS); "
            "port 25 is for server-to-server mail.", STEP_AUTH, reason="no_auth")
    try:
        if endpoint.login.isascii() and endpoint.secret.isascii():
            smtp.login(endpoint.login, endpoint.secret)
        else:
            _auth_plain_utf8(smtp, endpoint)
    except smtplib.SMTPAuthenticationError as exc:
        raise auth_error_from(exc, endpoint) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise AuthError("The SMTP server does not support authentication here.",
                        "Use the submission port 587 (STARTTLS) or 465 (SSL/TLS).",
                        STEP_AUTH, reason="no_auth", detail=str(exc)) from None
    except smtplib.SMTPServerDisconnected as exc:
        raise ConnectError("The SMTP server closed the connection during login.",
                           "Try again later.", STEP_AUTH, reason="closed",
                           detail=str(exc)) from None
    except smtplib.SMTPException as exc:
        # "No suitable authentication method found."
        raise AuthError(
            "None of the SMTP server's login methods (%s) can be used."
            % (", ".join(sorted(auth_mechanisms(smtp))) or "none"),
            "Use the provider's submission server with password login; OAuth2-only servers "
            "are not supported yet.", STEP_AUTH, reason="no_mechanism",
            detail=str(exc)) from None
    except OSError as exc:
        failure = connect_failure(exc, endpoint)
        failure.step = STEP_AUTH
        raise failure from None
    _logger.debug("SMTP login as %s on %s", endpoint.login, endpoint.describe())


def _auth_plain_utf8(smtp, endpoint):
    # smtplib encodes SASL data as ASCII, so a UTF-8 password needs AUTH PLAIN by hand.
    if "PLAIN" not in auth_mechanisms(smtp):
        raise AuthError(
            "The login name or password contains non-ASCII characters, which this server "
            "cannot accept (it does not offer AUTH PLAIN).",
            "Use a password made of ASCII letters, digits and punctuation (an app password "
            "is).", STEP_AUTH, reason="non_ascii")
    token = base64.b64encode(("\0%s\0%s" % (endpoint.login, endpoint.secret)).encode("utf-8"))
    code, response = smtp.docmd("AUTH", "PLAIN " + token.decode("ascii"))
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, response)


def auth_error_from(exc, endpoint, hint=None):
    text = _response_text(exc, endpoint)
    if exc.smtp_code == 530 or "STARTTLS" in text.upper():
        return AuthError("The SMTP server requires encryption before login (%s)." % text,
                         "Choose STARTTLS or SSL/TLS.", STEP_AUTH, reason="privacy_required",
                         detail=text)
    if 400 <= exc.smtp_code < 500:
        return AuthError("The SMTP server could not check the login right now (%s)." % text,
                         "Try again in a few minutes.", STEP_AUTH, reason="unavailable",
                         detail=text)
    return AuthError(
        "The SMTP server refused the login for %r: wrong login name or password, or the "
        "account needs an app password (server said: %s)." % (endpoint.login, text),
        hint or _GENERIC_AUTH_HINT, STEP_AUTH, reason="wrong_credentials", detail=text)


def close_smtp(smtp):
    try:
        smtp.quit()
    except Exception:
        abandon(smtp)


def abandon(smtp):
    try:
        smtp.close()
    except Exception:
        pass
