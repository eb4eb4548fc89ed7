"""Connection test: every step a user needs to see, each with a message and a fix.

``run_connection_test(imap, smtp)`` never raises: each failure becomes a
``StepResult`` with ``ok=False``. Steps that depend on a failed one are
reported as skipped (``ok=None``). The IMAP chain and the SMTP chain are
independent: a wrong IMAP password does not hide an SMTP problem.

IMAP: imap_reach -> imap_tls -> imap_login -> imap_folders -> imap_append
SMTP: smtp_reach -> smtp_tls -> smtp_auth   (nothing is ever sent)

The append check stores a tiny marked message (\\Seen) in the Sent folder
(INBOX if there is none), finds its UID (APPENDUID, else UID SEARCH on the
marker header), checks that UID really holds the marker, flags it \\Deleted
and removes exactly that UID with UID EXPUNGE. Without UIDPLUS there is no
way to expunge one message only, so it is left flagged \\Deleted and the step
says so: the user's other deleted messages are never expunged. On Gmail-like
servers (a folder with the "all" role) a copy of the test message in All Mail
is removed the same way.
"""
import concurrent.futures
import logging
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from email.utils import formatdate

from . import imap as imap_mod
from . import smtp as smtp_mod
from .endpoint import SECURITY_NONE
from .errors import AppendError, ConnectError, MailsyncError, connect_error_from
from .folders import FolderInfo, folder_for_role, list_folders
from .presets import get_preset, login_failure_hint
from .redact import install_redaction, redact
from .tls import describe_tls

_logger = logging.getLogger(__name__)

STEP_LABELS = {
    "imap_reach": "IMAP server reachable",
    "imap_tls": "IMAP encryption and certificate",
    "imap_login": "IMAP login",
    "imap_folders": "IMAP folders",
    "imap_append": "Permission to add messages",
    "smtp_reach": "SMTP server reachable",
    "smtp_tls": "SMTP encryption and certificate",
    "smtp_auth": "SMTP login",
}
STEP_KEYS = tuple(STEP_LABELS)
IMAP_STEPS = STEP_KEYS[:5]
SMTP_STEPS = STEP_KEYS[5:]

TEST_HEADER = "X-Mailsync-Connection-Test"
_ROLE_LABELS = {"sent": "Sent", "archive": "Archive", "trash": "Trash", "drafts": "Drafts",
                "junk": "Junk", "all": "All Mail"}


@dataclass
class StepResult:
    key: str
    label: str
    ok: bool | None            # None: skipped
    message: str
    hint: str | None = None
    duration_ms: int = 0
    reason: str | None = None  # machine-readable cause of a failure (see errors)


@dataclass
class ConnectionReport:
    steps: list = field(default_factory=list)
    folders: list = field(default_factory=list)      # FolderInfo, when the listing worked
    capabilities: tuple = ()                         # IMAP capabilities after login
    smtp_features: tuple = ()                        # EHLO keywords after TLS

    @property
    def ok(self):
        """True when no step failed (skipped steps, e.g. no SMTP given, are not failures)."""
        return all(step.ok is not False for step in self.steps)

    def step(self, key):
        for step in self.steps:
            if step.key == key:
                return step
        return None

    @property
    def first_failure(self):
        return next((step for step in self.steps if step.ok is False), None)

    def as_dict(self):
        return {"ok": self.ok, "steps": [asdict(s) for s in self.steps],
                "folders": [asdict(f) for f in self.folders],
                "capabilities": list(self.capabilities),
                "smtp_features": list(self.smtp_features)}

    def as_text(self):
        """Plain-text summary for a log or a chatter message."""
        marks = {True: "OK", False: "FAILED", None: "skipped"}
        lines = []
        for step in self.steps:
            lines.append("[%s] %s: %s" % (marks[step.ok], step.label, step.message))
            if step.ok is False and step.hint:
                lines.append("    Fix: %s" % step.hint)
        return "\n".join(lines)


class _Chain:
    """Runs the steps of one protocol in order; after a failure the rest is skipped."""

    def __init__(self, report, keys):
        self.report = report
        self.keys = keys
        self.failed = None

    def run(self, key, func, *, on_error_hint=None):
        """Run ``func()`` -> message (or (ok, message, hint)); record a StepResult."""
        if self.failed:
            return self.skip(key, "Skipped: %s failed." % STEP_LABELS[self.failed])
        started = time.monotonic()
        try:
            outcome = func()
        except MailsyncError as exc:
            step = StepResult(key, STEP_LABELS[key], False, exc.message,
                              on_error_hint(exc) if on_error_hint else exc.hint,
                              _ms(started), exc.reason)
        except Exception as exc:  # a bug or an unexpected server reply: still a step
            _logger.debug("connection test step %s crashed", key, exc_info=True)
            step = StepResult(key, STEP_LABELS[key], False,
                              "Unexpected error: %s" % (str(exc) or type(exc).__name__),
                              "Try again; if it persists, send the debug log to support.",
                              _ms(started), "unexpected")
        else:
            ok, message, hint = outcome if isinstance(outcome, tuple) else (True, outcome, None)
            step = StepResult(key, STEP_LABELS[key], ok, message, hint, _ms(started))
        if step.ok is False:
            self.failed = key
        self.report.steps.append(step)
        return step

    def skip(self, key, message):
        step = StepResult(key, STEP_LABELS[key], None, message)
        self.report.steps.append(step)
        return step

    def skip_rest(self, message):
        done = {s.key for s in self.report.steps}
        for key in self.keys:
            if key not in done:
                self.skip(key, message)


def _ms(started):
    return int((time.monotonic() - started) * 1000)


def run_connection_test(imap, smtp=None, *, preset_key=None, check_append=True):
    """Test an IMAP endpoint (and optionally SMTP) step by step; never raises."""
    report = ConnectionReport()
    secrets = [e.secret for e in (imap, smtp) if e is not None and e.secret]
    try:
        with install_redaction(*secrets):
            _test_imap(report, imap, preset_key, check_append)
            _test_smtp(report, smtp, preset_key)
    except Exception as exc:  # last resort: the contract is "never raise"
        _logger.debug("connection test crashed", exc_info=True)
        chain = _Chain(report, STEP_KEYS)
        chain.skip_rest("Not run: the test stopped unexpectedly (%s)." % type(exc).__name__)
    for step in report.steps:
        step.message = redact(step.message, secrets)
        step.hint = redact(step.hint, secrets) if step.hint else step.hint
    return report


# -- IMAP -----------------------------------------------------------------

def _test_imap(report, endpoint, preset_key, check_append):
    chain = _Chain(report, IMAP_STEPS)
    if endpoint is None:
        chain.skip_rest("No IMAP server configured.")
        return
    chain.run("imap_reach", lambda: probe_tcp(endpoint, "imap_reach"))
    client = None
    try:
        def secure():
            nonlocal client
            client = imap_mod.connect_imap(endpoint, login=False)
            return _tls_summary(client.socket(), endpoint, client.has_capability("STARTTLS"))
        chain.run("imap_tls", secure)

        def login():
            imap_mod.login_imap(client, endpoint)
            report.capabilities = tuple(sorted(imap_mod.server_capabilities(client)))
            return "Logged in as %s." % endpoint.login
        chain.run("imap_login", login, on_error_hint=lambda exc: _login_hint(exc, preset_key))

        def folders():
            report.folders = list_folders(client)
            return _folders_summary(report.folders, preset_key)
        chain.run("imap_folders", folders)

        if check_append:
            chain.run("imap_append", lambda: check_append_permission(client, report.folders))
        elif not chain.failed:
            chain.skip("imap_append", "Not checked (not requested).")
        chain.skip_rest("Skipped.")
    finally:
        if client is not None:
            imap_mod.close_imap(client)


def _login_hint(exc, preset_key):
    if exc.reason == "wrong_credentials":
        return login_failure_hint(preset_key)
    return exc.hint


def _folders_summary(folders, preset_key):
    with_role = sorted((f for f in folders if f.role in _ROLE_LABELS),
                       key=lambda f: list(_ROLE_LABELS).index(f.role))
    described = ", ".join("%s: %s" % (_ROLE_LABELS[f.role], f.path) for f in with_role)
    message = "%d folders found%s." % (len(folders), " (%s)" % described if described else "")
    if folder_for_role(folders, "sent") is None:
        expected = get_preset(preset_key).sent_folder
        return (True, message + " No Sent folder was recognised.",
                "Choose the Sent folder in the mailbox settings%s, or let the sync create "
                "a 'Sent' folder." % (" (usually %r)" % expected if expected else ""))
    return message


def check_append_permission(client, folders):
    """Append a marked test message to the Sent folder (or INBOX) and remove exactly it.

    Returns (ok, message, hint); raises AppendError when the server refuses.
    """
    target = folder_for_role(folders, "sent") or folder_for_role(folders, "inbox")
    path = target.path if target else "INBOX"
    marker = uuid.uuid4().hex
    appended = imap_mod.append_message(client, path, _test_message(marker), flags=("\\Seen",))
    found, expunged = remove_marked_message(client, path, marker, appended)
    if not found:
        return (False, "The test message was added to %r but could not be found again to "
                "remove it." % path, "Delete the message with subject 'Connection test' by "
                "hand; the server may not support header search.")
    # Gmail-like servers also show every message in All Mail; removing it from
    # the label folder alone would leave it there.
    all_mail = folder_for_role(folders, "all")
    if all_mail is not None and all_mail.path != path:
        remove_marked_message(client, all_mail.path, marker)
    if expunged:
        return "A test message was added to %r and removed again." % path
    return (True, "A test message was added to %r. The server lacks UIDPLUS, so it could not "
            "be removed on its own without also expunging other deleted messages: it is left "
            "flagged as deleted and will disappear at the next expunge." % path, None)


def remove_marked_message(client, path, marker, appended=None):
    """Delete the test message carrying ``marker`` from ``path``; (found, expunged).

    Only a UID that provably holds the marker is touched, and it is removed
    with UID EXPUNGE of that UID alone; without UIDPLUS it stays flagged
    \\Deleted (a plain EXPUNGE would also remove the user's deleted mail).
    """
    try:
        info = client.select_folder(path)
    except Exception as exc:
        raise AppendError("The test message was added to %r but the folder cannot be opened to "
                          "remove it: %s" % (path, exc), "Delete the message with subject "
                          "'Connection test' by hand.", reason="cleanup", detail=str(exc))
    if appended and appended.uid and appended.uidvalidity == info.get(b"UIDVALIDITY"):
        uids = [appended.uid]
    else:
        uids = client.search(["HEADER", TEST_HEADER, marker])
    if uids:
        headers = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (%s)]" % TEST_HEADER])
        uids = [uid for uid, data in headers.items() if marker.encode() in _first_body(data)]
    if not uids:
        return False, False
    client.add_flags(uids, ["\\Deleted"], silent=True)
    if not client.has_capability("UIDPLUS"):
        return True, False
    client.uid_expunge(uids)
    return True, True


def _first_body(fetch_data):
    for key, value in fetch_data.items():
        if key.startswith(b"BODY[") and isinstance(value, bytes):
            return value
    return b""


def _test_message(marker):
    return ("From: Odoo connection test <connection-test@mailsync.invalid>\r\n"
            "To: connection-test@mailsync.invalid\r\n"
            "Subject: Connection test (safe to delete)\r\n"
            "Date: %s\r\n"
            "Message-ID: <%s@mailsync.invalid>\r\n"
            "%s: %s\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n"
            "This message checks that Odoo may add messages to this folder. It is removed "
            "right away.\r\n" % (formatdate(localtime=True), marker, TEST_HEADER, marker)
            ).encode("ascii")


# -- SMTP -----------------------------------------------------------------

def _test_smtp(report, endpoint, preset_key):
    chain = _Chain(report, SMTP_STEPS)
    if endpoint is None:
        chain.skip_rest("No SMTP server configured.")
        return
    chain.run("smtp_reach", lambda: probe_tcp(endpoint, "smtp_reach"))
    smtp = None
    try:
        def secure():
            nonlocal smtp
            smtp = smtp_mod.connect_smtp(endpoint, login=False)
            report.smtp_features = tuple(sorted(smtp.esmtp_features))
            return _tls_summary(smtp.sock, endpoint, smtp.has_extn("starttls"))
        chain.run("smtp_tls", secure)

        def login():
            smtp_mod.login_smtp(smtp, endpoint)
            return "Logged in as %s (no message was sent)." % endpoint.login
        chain.run("smtp_auth", login, on_error_hint=lambda exc: _login_hint(exc, preset_key))
        chain.skip_rest("Skipped.")
    finally:
        if smtp is not None:
            smtp_mod.close_smtp(smtp)


# -- shared ---------------------------------------------------------------

def _tls_summary(sock, endpoint, offers_starttls):
    if endpoint.security == SECURITY_NONE:
        hint = ("The server offers STARTTLS: choose STARTTLS to encrypt the connection."
                if offers_starttls else "Ask the server's administrator to enable TLS.")
        return (True, "Connected WITHOUT encryption (allowed for this mailbox): the password "
                "and mail travel in clear text.", hint)
    how = "STARTTLS" if endpoint.security == "starttls" else "SSL/TLS"
    return "Encrypted with %s: %s." % (how, describe_tls(sock))


def probe_tcp(endpoint, step):
    """Resolve the host (bounded by the timeout) and open one TCP connection."""
    addresses = resolve(endpoint.host, endpoint.port, endpoint.timeout, step)
    last_error = None
    for family, address in addresses:
        started = time.monotonic()
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(endpoint.timeout)
                sock.connect(address)
            where = endpoint.host if endpoint.host == address[0] else "%s (%s)" % (
                endpoint.host, address[0])
            return "%s accepts connections on port %s (%d ms)." % (
                where, endpoint.port, _ms(started))
        except OSError as exc:
            last_error = exc
    raise connect_error_from(last_error, endpoint.host, endpoint.port, endpoint.timeout, step)


def resolve(host, port, timeout, step=None):
    """getaddrinfo with a deadline: the system resolver has no timeout of its own."""
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = executor.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise ConnectError("Looking up the name %r took longer than %g seconds." % (host, timeout),
                           "Check this server's DNS settings.", step, reason="dns_timeout")
    except OSError as exc:
        raise connect_error_from(exc, host, port, timeout, step) from None
    finally:
        executor.shutdown(wait=False)
    seen, addresses = set(), []
    for family, _type, _proto, _name, address in infos:
        if address not in seen:
            seen.add(address)
            addresses.append((family, address))
    return addresses


__all__ = ["StepResult", "ConnectionReport", "run_connection_test", "check_append_permission",
           "remove_marked_message", "probe_tcp", "resolve", "STEP_KEYS", "STEP_LABELS",
           "FolderInfo", "TEST_HEADER"]
