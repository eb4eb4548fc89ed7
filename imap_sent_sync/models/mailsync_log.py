import contextlib
import logging
import threading

from odoo import api, fields, models

from .. import mailsync
from ..mailsync.redact import redact

# Loggers that carry the protocol conversation: imapclient logs every command
# and response at DEBUG (it hides LOGIN/AUTHENTICATE arguments itself), and
# the mailsync package logs its own steps.
PROTOCOL_LOGGERS = ("imapclient", mailsync.__name__)
# A debug log line is for reading, not for storing mail: cap what one action keeps.
MAX_DETAIL_LINES = 2000
MAX_LINE_LENGTH = 500

_capture_lock = threading.Lock()
_capture_state = {}  # logger name -> {"count", "level", "propagate", "threshold", "forwarder"}


class _ThreadCapture(logging.Handler):
    """Collects the records of one thread: the request running the action.

    Other threads (other requests, cron workers) log through the same loggers
    at the same time; their records are not ours to store on this mailbox.
    """

    def __init__(self, thread_id, lines, secrets):
        super().__init__(logging.DEBUG)
        self.thread_id = thread_id
        self.lines = lines
        self.secrets = secrets

    def emit(self, record):
        if record.thread != self.thread_id or len(self.lines) >= MAX_DETAIL_LINES:
            return
        try:
            text = record.getMessage()
        except Exception:  # a broken log call must never break the sync
            return
        text = redact(text, self.secrets)[:MAX_LINE_LENGTH]
        self.lines.append(f"{record.name.rsplit('.', 1)[-1]}: {text}")


class _Forwarder(logging.Handler):
    """Passes on what the logger would have passed on without the capture.

    Capturing needs the protocol loggers at DEBUG; without this, lowering their
    level would also pour every other thread's DEBUG conversation into the
    server log. So while capturing, the logger stops propagating and this
    handler forwards only records at or above the level that applied before.
    """

    def __init__(self, logger, threshold):
        super().__init__(logging.DEBUG)
        self.logger = logger
        self.threshold = threshold

    def emit(self, record):
        if record.levelno >= self.threshold and self.logger.parent:
            self.logger.parent.handle(record)


@contextlib.contextmanager
def capture_protocol_log(enabled=True, secrets=()):
    """Yield a list that fills with this thread's protocol log lines, redacted.

    With ``enabled`` false nothing is touched and the list stays empty, so
    callers can use it unconditionally and decide by the mailbox's debug flag.
    """
    lines = []
    if not enabled:
        yield lines
        return
    secrets = [secret for secret in secrets if secret]
    handler = _ThreadCapture(threading.get_ident(), lines, secrets)
    loggers = [logging.getLogger(name) for name in PROTOCOL_LOGGERS]
    with _capture_lock:
        for logger in loggers:
            state = _capture_state.get(logger.name)
            if state is None:
                threshold = logger.getEffectiveLevel()
                state = _capture_state[logger.name] = {
                    "count": 0, "level": logger.level, "propagate": logger.propagate,
                    "forwarder": _Forwarder(logger, threshold) if logger.propagate else None,
                }
                logger.setLevel(logging.DEBUG)
                logger.propagate = False
                if state["forwarder"]:
                    logger.addHandler(state["forwarder"])
            state["count"] += 1
            logger.addHandler(handler)
    try:
        yield lines
    finally:
        with _capture_lock:
            for logger in loggers:
                logger.removeHandler(handler)
                state = _capture_state[logger.name]
                state["count"] -= 1
                if not state["count"]:
                    if state["forwarder"]:
                        logger.removeHandler(state["forwarder"])
                    logger.setLevel(state["level"])
                    logger.propagate = state["propagate"]
                    del _capture_state[logger.name]


class MailsyncLog(models.Model):
    """Audit trail of every sync action: connect, fetch, append, move, delete.

    Lines are written by the sync itself (through ``_record``, as superuser):
    users may read the lines of their own mailboxes but never write them, so
    the trail stays trustworthy.
    """

    _name = "mailsync.log"
    _description = "Mailbox Sync Log"
    _order = "id desc"
    _rec_name = "operation"

    mailbox_id = fields.Many2one("mailsync.mailbox", required=True, ondelete="cascade", index=True,
                                 readonly=True)
    user_id = fields.Many2one(related="mailbox_id.user_id", store=True, index=True)
    company_id = fields.Many2one(related="mailbox_id.company_id", store=True)
    folder_id = fields.Many2one("mailsync.folder", ondelete="set null", readonly=True)
    operation = fields.Selection([
        ("connection_test", "Connection Test"),
        ("connect", "Connect"),
        ("folders", "Folder Discovery"),
        ("fetch", "Fetch"),
        ("append", "Append"),
        ("move", "Move"),
        ("delete", "Delete"),
        ("credentials", "Credentials"),
    ], required=True, readonly=True)
    outcome = fields.Selection([("success", "Success"), ("failure", "Failure"), ("info", "Info")],
                               required=True, default="info", readonly=True)
    duration_ms = fields.Integer(string="Duration (ms)", readonly=True)
    message = fields.Text(readonly=True)
    detail = fields.Text(
        readonly=True,
        help="Protocol detail, recorded only with Debug Log on; secrets are redacted.")

    @api.model
    def _record(self, mailbox, operation, outcome, message, *, duration_ms=0, detail=None,
                folder=None, secrets=()):
        """Append one line to the trail of ``mailbox``.

        Every text is redacted against ``secrets`` (the mailbox's own secret,
        typically) before it reaches the database: a server that echoes a
        credential in an error must not turn the audit log into a leak.
        """
        secrets = [secret for secret in secrets if secret]
        if isinstance(detail, (list, tuple)):
            detail = "\n".join(detail)
        return self.sudo().create({
            "mailbox_id": mailbox.id,
            "folder_id": folder.id if folder else False,
            "operation": operation,
            "outcome": outcome,
            "duration_ms": int(duration_ms or 0),
            "message": redact(message or "", secrets) or False,
            "detail": redact(detail, secrets) if detail else False,
        })
