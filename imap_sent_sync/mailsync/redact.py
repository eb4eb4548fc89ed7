"""Scrub secrets from text and log records.

A password can leak in more shapes than its plain text: IMAP-quoted
(backslashes and quotes escaped), inside a Python repr (imaplib logs
``> b'...'``), or base64-encoded inside SASL exchanges (AUTH PLAIN/LOGIN,
AUTHENTICATE PLAIN) where it is glued to the login name. ``redact`` removes all
of these; for base64 it looks for the part of the encoding that depends on the
secret alone, whatever the login before it, and blanks the whole base64 word.

Logging: ``install_redaction(secret)`` registers the secret with one shared
``SecretRedactingFilter`` attached to the loggers of imapclient (which logs
every command at DEBUG) and of this package, for as long as the ``with`` block
runs. imapclient 4.1 already masks LOGIN/AUTHENTICATE lines itself
(IMAPlibLoggerAdapter); the filter is a second, independent guard. smtplib
prints its protocol trace to stderr only when set_debuglevel() is called, which
this package never does.
"""
import base64
import logging
import re
import threading
from contextlib import contextmanager

MASK = "***"

# Loggers that see protocol traffic. Logger filters only apply to records
# created on that exact logger (not on children), so each one is listed. This
# package is "imap_sent_sync.mailsync" in plain Python and
# "odoo.addons.imap_sent_sync.mailsync" inside Odoo: use the real name.
_PACKAGE = __name__.rsplit(".", 1)[0]
REDACTED_LOGGERS = (
    "imapclient",
    "imapclient.imapclient",
    "imapclient.imaplib",
    "imapclient.util",
    _PACKAGE,
    _PACKAGE + ".imap",
    _PACKAGE + ".smtp",
    _PACKAGE + ".diagnostics",
    _PACKAGE + ".folders",
)

# A base64 fragment shorter than one group (4 chars) says nothing about the
# secret; from one group on it is specific enough (a false match only masks a word).
_MIN_B64_CORE = 4
_B64_WORD = re.compile(r"[A-Za-z0-9+/=_-]+")


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _literal_forms(secret):
    """The secret as it can appear in logs without encoding: plain, quoted, repr'ed."""
    quoted = secret.replace("\\", "\\\\").replace('"', '\\"')  # IMAP quoted string
    forms = set()
    for form in {secret, quoted}:
        forms.add(form)
        forms.add(repr(form)[1:-1])                                  # str repr
        forms.add(repr(form.encode("utf-8"))[2:-1])                  # bytes repr, as imaplib logs
    return {f for f in forms if f}


def _base64_cores(secret):
    """Base64 fragments that appear whenever the secret is base64-encoded in a stream.

    In base64, each 3-byte group becomes 4 characters. Whatever precedes the
    secret (e.g. "\\0login\\0" in AUTH PLAIN) only shifts it by 0, 1 or 2 bytes
    modulo 3; for each shift, the groups lying wholly inside the secret encode
    to a fixed string. Finding any of those means the secret is there.
    """
    data = secret.encode("utf-8")
    cores = set()
    for shift in range(3):
        padded = b"\0" * shift + data
        first_group = -(-shift // 3)               # first group wholly inside the secret
        last_group = len(padded) // 3              # groups after this include other bytes
        encoded = base64.b64encode(padded).decode("ascii")
        core = encoded[first_group * 4:last_group * 4]
        if len(core) >= _MIN_B64_CORE:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))  # urlsafe alphabet
    # Short secrets have no safe core; still catch their whole standalone encodings.
    for whole in (base64.b64encode(data).decode("ascii"),
                  base64.urlsafe_b64encode(data).decode("ascii")):
        cores.add(whole)
        cores.add(whole.rstrip("="))
    return {c for c in cores if c}


def redact(text, secrets):
    """Return ``text`` with every form of every secret replaced by ``***``."""
    if text is None:
        return text
    text = _text(text)
    secrets = [_text(s) for s in (secrets or ()) if s]
    if not secrets:
        return text
    for secret in secrets:
        for form in sorted(_literal_forms(secret), key=len, reverse=True):
            text = text.replace(form, MASK)
    cores = set()
    for secret in secrets:
        cores |= _base64_cores(secret)
    if cores:
        text = _B64_WORD.sub(lambda m: MASK if any(c in m.group(0) for c in cores)
                             else m.group(0), text)
    return text


def contains_secret(text, secrets):
    """True when ``text`` shows any secret in any known form."""
    return redact(text, secrets) != _text(text)


class SecretRedactingFilter(logging.Filter):
    """Rewrites log records so that no registered secret can be printed.

    The record's message is formatted once, redacted and frozen (args cleared);
    exception text and stack info are redacted too. Records are never dropped.
    """

    def __init__(self, secrets=()):
        super().__init__()
        self._lock = threading.Lock()
        self._secrets = {}  # secret -> number of active registrations
        for secret in secrets:
            self.add(secret)

    def add(self, secret):
        if secret:
            with self._lock:
                self._secrets[secret] = self._secrets.get(secret, 0) + 1

    def remove(self, secret):
        if secret:
            with self._lock:
                count = self._secrets.get(secret, 0) - 1
                if count > 0:
                    self._secrets[secret] = count
                else:
                    self._secrets.pop(secret, None)

    @property
    def secrets(self):
        with self._lock:
            return list(self._secrets)

    def filter(self, record):
        secrets = self.secrets
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = "%s %r" % (record.msg, record.args)
        record.msg = redact(message, secrets)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # Formatters use exc_text as is once it is set, so this redacted text
            # is what any handler prints for the traceback.
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


_shared_filter = SecretRedactingFilter()
_attach_lock = threading.Lock()
_attached = False


def shared_filter():
    """The process-wide filter installed on REDACTED_LOGGERS."""
    global _attached
    with _attach_lock:
        if not _attached:
            for name in REDACTED_LOGGERS:
                logger = logging.getLogger(name)
                if _shared_filter not in logger.filters:
                    logger.addFilter(_shared_filter)
            _attached = True
    return _shared_filter


@contextmanager
def install_redaction(*secrets):
    """Scrub ``secrets`` from the protocol loggers while the block runs.

    Also redacts the message of a MailsyncError escaping the block, in case a
    server echoed the secret back in its error text.
    """
    redactor = shared_filter()
    secrets = [s for s in secrets if s]
    for secret in secrets:
        redactor.add(secret)
    try:
        yield redactor
    except Exception as exc:
        _redact_exception(exc, secrets)
        raise
    finally:
        for secret in secrets:
            redactor.remove(secret)


def _redact_exception(exc, secrets):
    for attr in ("message", "hint", "detail"):
        value = getattr(exc, attr, None)
        if isinstance(value, str):
            setattr(exc, attr, redact(value, secrets))
    if exc.args and any(isinstance(a, (str, bytes)) for a in exc.args):
        exc.args = tuple(redact(a, secrets) if isinstance(a, (str, bytes)) else a
                         for a in exc.args)

