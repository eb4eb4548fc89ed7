"""The work queue of the sent copies (``mailsync.outbox``) and of the mailbox
changes (``mailsync.server.action``), written once.

Both queue rows in the user's transaction; a cron claims the due rows one
mailbox per transaction, does the IMAP work (``_process_claimed``), retries
with backoff and tells the owner when it keeps failing. Each queue keeps its
rows, its IMAP work and failure policy, and tunes the rest with the
``_queue_*`` attributes and hooks below. It defines ``state`` ("queued",
"done", "failed" and its own given-up value) and its cron entry point.
"""
import logging
import threading
import time
from datetime import datetime, timedelta

import psycopg2

from odoo import api, fields, models

_logger = logging.getLogger(__name__)

# A cron run stops claiming new batches after this long (the cron is
# re-triggered through _notify_progress when work remains).
TIME_BUDGET = 120


class MailsyncQueue(models.AbstractModel):
    _name = "mailsync.queue"
    _description = "Email Sync: Work Queue"

    # XML id of the cron working on the queue.
    _queue_cron = None
    # pg_try_advisory_xact_lock(class, mailbox id): one worker per mailbox.
    _queue_advisory_class = None
    # Mailboxes connected to; the rows of others (paused, failing, archived...)
    # wait: a paused mailbox's rows run after Resume.
    _queue_mailbox_states = ("connected",)
    # States the Retry button queues again (a cancelled row stays cancelled),
    # and what else it resets (a retried row is no longer done).
    _queue_retry_states = ("queued", "failed")
    _queue_retry_values = {"done_at": False}
    # Serialization conflicts a cron run rolls back and retries before giving
    # up; 0: the first one aborts the run (the next run picks the rows up).
    _queue_max_conflicts = 0

    mailbox_id = fields.Many2one("mailsync.mailbox", required=True, index=True, ondelete="cascade",
                                 readonly=True)
    user_id = fields.Many2one(related="mailbox_id.user_id", store=True, index=True, string="Owner")
    company_id = fields.Many2one(related="mailbox_id.company_id", store=True)
    attempts = fields.Integer(readonly=True)
    next_try = fields.Datetime(string="Next Try", readonly=True, default=fields.Datetime.now)
    last_error = fields.Text(readonly=True)
    done_at = fields.Datetime(readonly=True)

    def init(self):
        # The cron looks for due rows only; keep that index small. (Odoo also
        # calls init() on this abstract model, which has no table.)
        if not self._abstract:
            self.env.cr.execute(f"""
                CREATE INDEX IF NOT EXISTS {self._table}_due_idx
                    ON {self._table} (next_try, mailbox_id) WHERE state = 'queued'
            """)

    # ------------------------------------------------------------
    # Actions (list and form buttons)
    # ------------------------------------------------------------

    def action_retry(self):
        """Queue again now, with a fresh attempt budget."""
        rows = self.filtered(lambda row: row.state in self._queue_retry_states)
        rows.check_access("read")
        rows.sudo().write({"state": "queued", "attempts": 0, "next_try": fields.Datetime.now(),
                           **self._queue_retry_values})
        if rows:
            self._trigger_cron()
        return True

    def _give_up(self, state, operation, message):
        """Skip/Cancel: settle the queued or failed rows as ``state`` without
        touching the server; ``message(count)`` is logged on each mailbox."""
        rows = self.filtered(lambda row: row.state in ("queued", "failed"))
        rows.check_access("read")
        rows.sudo().write({"state": state, "done_at": fields.Datetime.now()})
        for mailbox in rows.mailbox_id:
            self.env["mailsync.log"]._record(
                mailbox, operation, "info",
                message(len(rows.filtered(lambda r: r.mailbox_id == mailbox))))
        return True

    # ------------------------------------------------------------
    # Processing (cron)
    # ------------------------------------------------------------

    @api.model
    def _trigger_cron(self, at=None):
        cron = self.env.ref(self._queue_cron, raise_if_not_found=False)
        if cron:
            cron.sudo()._trigger(at)

    @api.model
    def _process_due(self, time_budget=TIME_BUDGET):
        """Work on due rows, one mailbox batch per transaction, until none is
        due or the time is up. Returns the number of rows settled."""
        auto_commit = not getattr(threading.current_thread(), "testing", False)
        deadline = time.monotonic() + time_budget
        done, conflicts, seen = 0, 0, set()
        while time.monotonic() < deadline:
            claimed = self.browse()
            try:
                claimed = self._claim_batch(exclude=seen)
                if not claimed:
                    break
                seen.update(claimed.ids)
                settled = claimed._process_claimed()
                if auto_commit:
                    self.env.cr.commit()
                done += settled
            except psycopg2.extensions.TransactionRollbackError:
                # Another worker (or a user pressing Retry) changed these rows
                # since this transaction's snapshot: nothing of the batch is
                # recorded, and it is claimed again.
                if not auto_commit or conflicts >= self._queue_max_conflicts:
                    raise
                conflicts += 1
                self.env.cr.rollback()
                seen.difference_update(claimed.ids)
        self._after_run(auto_commit)
        self.env["ir.cron"]._notify_progress(done=done, remaining=self._count_due())
        if auto_commit:
            self.env.cr.commit()
        return done

    @api.model
    def _after_run(self, auto_commit):
        """Housekeeping at the end of a cron run (nothing by default)."""

    @api.model
    def _due_rows_sql(self):
        """FROM/WHERE of the due rows (alias ``q``); parameters (now, mailbox states)."""
        return f"""
              FROM {self._table} q
              JOIN mailsync_mailbox m ON m.id = q.mailbox_id
             WHERE q.state = 'queued' AND q.next_try <= %s
               AND m.active AND m.state IN %s
        """

    @api.model
    def _count_due(self):
        self.env.cr.execute("SELECT count(*)" + self._due_rows_sql(),
                            (datetime.utcnow(), self._queue_mailbox_states))
        return self.env.cr.fetchone()[0]

    @api.model
    def _claim_limits(self):
        """(rows, bytes): the most rows a batch (one transaction) claims, and
        their most total ``size`` (None: the rows have no size)."""
        return 500, None

    @api.model
    def _claim_batch(self, exclude=()):
        """Lock and return the next batch of due rows of one mailbox, or an empty set.

        Rows are locked FOR UPDATE SKIP LOCKED and the mailbox through a
        transaction-level advisory lock: concurrent cron workers each take a
        different mailbox, and the locks end with the batch's commit.
        """
        self.flush_model()
        self.env["mailsync.mailbox"].flush_model(["state", "active"])
        cr = self.env.cr
        # Wall-clock time, not now(): that is the start of the transaction,
        # which in a long transaction would hide rows queued since.
        now = datetime.utcnow()
        cr.execute("SELECT q.mailbox_id" + self._due_rows_sql()
                   + " GROUP BY q.mailbox_id ORDER BY min(q.next_try) LIMIT 50",
                   (now, self._queue_mailbox_states))
        mailbox_ids = [row[0] for row in cr.fetchall()]
        max_rows, max_bytes = self._claim_limits()
        size = "0" if max_bytes is None else "size"
        for mailbox_id in mailbox_ids:
            cr.execute("SELECT pg_try_advisory_xact_lock(%s, %s)",
                       (self._queue_advisory_class, mailbox_id))
            if not cr.fetchone()[0]:
                continue  # another worker has this mailbox
            cr.execute(f"""
                SELECT id, {size} FROM {self._table}
                 WHERE mailbox_id = %s AND state = 'queued' AND next_try <= %s
                   AND NOT (id = ANY(%s))
                 ORDER BY id LIMIT %s
                   FOR UPDATE SKIP LOCKED
            """, (mailbox_id, now, list(exclude), max_rows))
            ids, total = [], 0
            for row_id, row_size in cr.fetchall():
                if max_bytes is not None and ids and total + (row_size or 0) > max_bytes:
                    break
                ids.append(row_id)
                total += row_size or 0
            if ids:
                return self.browse(ids)
        return self.browse()

    def _process_claimed(self):
        """Work on the claimed rows (one mailbox); returns the number settled."""
        raise NotImplementedError

    # ------------------------------------------------------------
    # Failures
    # ------------------------------------------------------------

    @api.model
    def _retry_delays(self):
        """(first retry delay, longest delay) in seconds: the delay doubles each attempt."""
        return 60, 6 * 3600

    @api.model
    def _backoff(self, attempt):
        base, longest = self._retry_delays()
        return min(base * 2 ** max(attempt - 1, 0), longest)

    def _attempt_failed(self, max_attempts, values=None, final=False, state="failed", delay=None):
        """Count one more failed attempt on each row, writing ``values`` too.

        A row is given up (``state``, done) at ``max_attempts``, or at once
        when ``final``; else it is due again after the backoff (or ``delay``
        seconds). Returns the rows given up.
        """
        now = fields.Datetime.now()
        given_up = self.browse()
        for row in self:
            attempts = row.attempts + 1
            if final or attempts >= max_attempts:
                row.write({**(values or {}), "attempts": attempts, "state": state, "done_at": now})
                given_up |= row
            else:
                wait = self._backoff(attempts) if delay is None else delay
                row.write({**(values or {}), "attempts": attempts,
                           "next_try": now + timedelta(seconds=wait)})
        return given_up

    @api.model
    def _notify_owner(self, mailbox, summary, note):
        """Tell the mailbox's owner: one open activity per problem (same
        summary), whose note is updated when the problem comes back."""
        summary = summary[:250]
        activity_type = self.env.ref("mail.mail_activity_data_warning", raise_if_not_found=False) \
            or self.env.ref("mail.mail_activity_data_todo")
        existing = self.env["mail.activity"].sudo().search([
            ("res_model", "=", "mailsync.mailbox"), ("res_id", "=", mailbox.id),
            ("summary", "=", summary)], limit=1)
        body = note.replace("\n", "<br/>")
        if existing:
            existing.note = body
            return existing
        _logger.warning("Email Sync: %s (mailbox %s)", summary, mailbox.id)
        return mailbox.sudo().activity_schedule(
            activity_type_id=activity_type.id, summary=summary, note=body,
            user_id=mailbox.user_id.id)
