"""Exceptions raised by the mailsync protocol code.

Every error carries a ``message`` a user can read ("The server refused the
login") and, where we know one, a ``hint`` that says how to fix it ("Create an
app password ..."). ``step`` names the connection-test step the failure belongs
to (see ``diagnostics.STEP_KEYS``), ``reason`` is a short machine-readable
cause (e.g. "dns", "refused", "timeout", "untrusted") and ``detail`` keeps the
technical text (server response, library error) for the debug log.

None of these ever contain a secret: messages are written by us, and server
text is redacted before it is stored (see ``redact``).
"""
import errno
import socket
import ssl


class MailsyncError(Exception):
    """Base class: a human ``message``, an optional fix ``hint``."""

    def __init__(self, message, hint=None, step=None, *, reason=None, detail=None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.step = step
        self.reason = reason
        self.detail = detail

    def __str__(self):
        return self.message


def explain(error):
    """What to show a user for ``error``: the message, then the fix hint.

    Works for any exception (MailsyncError, Odoo's UserError, OSError...); the
    message and hint of our own errors never contain a secret.
    """
    if error is None:
        return ""
    message = (getattr(error, "message", None) or getattr(error, "name", None)
               or str(error) or error.__class__.__name__)
    return " ".join(filter(None, [message, getattr(error, "hint", None)]))


class ConnectError(MailsyncError):
    """The server could not be reached: DNS failure, refused, timeout, dropped."""


class TlsError(MailsyncError):
    """The TLS handshake or the certificate check failed, or TLS was not possible."""


class StartTlsUnavailable(TlsError):
    """STARTTLS was required but the server does not offer it (no silent downgrade)."""


class UnencryptedNotAllowed(TlsError):
    """Security "none" was chosen without acknowledging that the password travels in clear."""


class AuthError(MailsyncError):
    """The server refused the login or offers no usable authentication."""


class FolderError(MailsyncError):
    """A folder could not be listed, selected or created."""


class AppendError(MailsyncError):
    """A message could not be appended (or the appended test message not cleaned up)."""


class SmtpError(MailsyncError):
    """The SMTP server answered with an error outside connect/TLS/auth."""


# OSError errnos that mean "no route": the network, not the server, is the problem.
_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


def connect_error_from(exc, host, port, timeout, step=None):
    """Translate a socket-level exception raised while connecting into a ConnectError.

    DNS failure, refusal and timeout get different messages because they have
    different fixes (spelling of the name, the port, a firewall).
    """
    where = "%s port %s" % (host, port)
    if isinstance(exc, socket.gaierror):
        if exc.errno == socket.EAI_AGAIN:
            return ConnectError(
                "The name %r could not be resolved right now (temporary DNS failure)." % host,
                "Check this server's network and DNS settings, then try again.",
                step, reason="dns", detail=str(exc))
        return ConnectError(
            "The server name %r does not exist (DNS lookup failed)." % host,
            "Check the spelling of the server name, or choose your provider's preset.",
            step, reason="dns", detail=str(exc))
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(
            "%s refused the connection: nothing accepts connections on that port." % where,
            "Check the port. Usual ports: IMAP 993 (SSL/TLS) or 143 (STARTTLS); "
            "SMTP 465 (SSL/TLS) or 587 (STARTTLS).",
            step, reason="refused", detail=str(exc))
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return ConnectError(
            "No answer from %s within %g seconds." % (where, timeout),
            "A firewall may block this port, or the host or port is wrong. If the port "
            "expects SSL/TLS (993, 465) choose SSL/TLS; for 143 or 587 choose STARTTLS.",
            step, reason="timeout", detail=str(exc))
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return ConnectError(
            "%s cannot be reached from this server (no network route)." % where,
            "Check this server's network connection and firewall.",
            step, reason="unreachable", detail=str(exc))
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, EOFError, BrokenPipeError)):
        return ConnectError(
            "%s closed the connection unexpectedly." % where,
            "The server may be overloaded or limiting connections; try again later. "
            "If it keeps happening, check host, port and security.",
            step, reason="closed", detail=str(exc))
    return ConnectError(
        "Could not connect to %s: %s" % (where, exc.strerror or exc),
        "Check the host, the port and this server's network connection.",
        step, reason="network", detail=str(exc))


def is_tls_exception(exc):
    """True when exc comes from the TLS layer (handshake, certificate)."""
    return isinstance(exc, (ssl.SSLError, ssl.CertificateError))
