import base64
import email.policy
import logging
import math
import time
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import email_normalize

from .mail_mail import SENDING_MAIL_KEY
from ..mailsync.errors import explain
from .mailsync_log import capture_protocol_log
from .mailsync_queue import TIME_BUDGET

_logger = logging.getLogger(__name__)

KIND_SELECTION = [
    ("reply", "Reply to a Customer"),
    ("new", "New Conversation"),
    ("internal", "Internal Notification"),
]
FREQUENCY_SELECTION = [
    ("immediate", "Immediately"),
    ("batch_5", "Every 5 Minutes"),
    ("batch_15", "Every 15 Minutes"),
    ("hourly", "Hourly"),
]
FREQUENCY_MINUTES = {"immediate": 0, "batch_5": 5, "batch_15": 15, "hourly": 60}
CONTENT_SELECTION = [
    ("full", "Full Message"),
    ("text", "Text Only"),
    ("headers", "Headers Only"),
]
ERROR_POLICY_SELECTION = [
    ("retry", "Retry, then Notify"),
    ("skip", "Skip and Continue"),
]

# Global defaults (Settings); each mailbox can override them.
PARAM_PREFIX = "imap_sent_sync.sent_copy_"
DEFAULTS = {
    "frequency": "immediate",
    "content": "full",
    "attachments": True,
    "max_attachment_mb": 0.0,
    "internal": False,
    "mass_mailing": False,
    "error_policy": "retry",
    "max_attempts": 5,
    "retry_delay": 60,        # seconds before the first retry; doubles each time
    "retry_delay_max": 6 * 3600,
    "batch_size": 1000,       # rows claimed per transaction
    "batch_bytes": 64 * 1024 * 1024,
    "retention_days": 30,     # exact bytes of filed copies are kept this long
}

# pg_try_advisory_xact_lock(ADVISORY_CLASS, mailbox id): one worker per
# mailbox at a time, so two workers never append the same Message-ID
# (one message sent to two recipients is two outbox rows) concurrently.
ADVISORY_CLASS = 0x6D736F62
# Up to this many copies in a batch, existing copies are looked up by an OR'd
# HEADER Message-ID search; above, by date (SINCE) and a header FETCH.
SEARCH_STRATEGY_MAX = 20


class MailsyncOutbox(models.Model):
    """A message sent from Odoo through a mailbox's SMTP, to be filed in its Sent folder.

    The row is created in the transaction that records the send, holding the
    exact bytes the SMTP server accepted; a cron appends it (see
    ``mailsync.sent_copy``) and records where it landed.
    """

    _name = "mailsync.outbox"
    _inherit = ["mailsync.queue"]
    _description = "Sent Copy To File"
    _order = "id desc"
    _rec_name = "subject"
    _queue_cron = "imap_sent_sync.ir_cron_mailsync_outbox"
    _queue_advisory_class = ADVISORY_CLASS
    # A mailbox in error is still tried: copies are filed as soon as it works.
    _queue_mailbox_states = ("connected", "error")
    # Skipped copies can be retried too; a retried copy keeps its done_at
    # until it is filed again.
    _queue_retry_states = ("queued", "failed", "skipped")
    _queue_retry_values = {}
    # A conflicting batch is safe to claim again: copies already appended are
    # found by Message-ID on the next attempt, so retrying never duplicates.
    _queue_max_conflicts = 5

    state = fields.Selection([
        ("queued", "Queued"),
        ("done", "Filed"),
        ("failed", "Failed"),
        ("skipped", "Skipped"),
    ], default="queued", required=True, index=True, readonly=True)
    kind = fields.Selection(KIND_SELECTION, required=True, default="new", readonly=True)

    # What was sent
    message_id = fields.Char(string="Message-ID", index=True, readonly=True)
    subject = fields.Char(readonly=True)
    email_from = fields.Char(string="From", readonly=True)
    recipients = fields.Char(readonly=True, help="Envelope recipients the server accepted.")
    # The exact bytes live in the bytea column raw_bytes (see init()), not in a
    # Binary field: those are stored base64-encoded, a third larger, and every
    # drain would decode them again. This field shows them in the form.
    raw_message = fields.Binary(
        string="Message as Sent", compute="_compute_raw_message",
        help="The exact bytes the SMTP server accepted. Cleared after the retention period "
             "once the copy is filed.")
    size = fields.Integer(readonly=True, help="Size of the message as sent, in bytes.")
    sent_at = fields.Datetime(required=True, readonly=True, default=fields.Datetime.now)
    mail_message_id = fields.Many2one("mail.message", string="Chatter Message",
                                      ondelete="set null", index="btree_not_null", readonly=True)

    # Filing (with next_try, last_error... of mailsync.queue)
    attempts = fields.Integer(help="Times the server refused this copy.")
    folder_id = fields.Many2one("mailsync.folder", string="Folder", ondelete="set null",
                                readonly=True)
    folder_path = fields.Char(string="Filed In", readonly=True)
    appended_uid = fields.Integer(string="UID", readonly=True)
    uidvalidity = fields.Char(string="UIDVALIDITY", readonly=True)
    result = fields.Selection([
        ("appended", "Appended"),
        ("found", "Already in the Folder"),
    ], readonly=True, help="'Already in the Folder': the provider saved the sent mail itself "
                           "(Gmail, Microsoft 365) or an earlier attempt did; no second copy.")
    done_at = fields.Datetime(string="Filed At")

    def init(self):
        self.env.cr.execute("ALTER TABLE mailsync_outbox ADD COLUMN IF NOT EXISTS raw_bytes bytea")
        super().init()

    def _compute_raw_message(self):
        raw = self._read_raw()
        for row in self:
            data = raw.get(row.id)
            row.raw_message = base64.b64encode(data) if data else False

    def _read_raw(self):
        """{id: exact bytes sent} of these rows (rows whose bytes were purged are absent)."""
        ids = [row_id for row_id in self.ids if isinstance(row_id, int)]
        if not ids:
            return {}
        self.env.cr.execute(
            "SELECT id, raw_bytes FROM mailsync_outbox WHERE id IN %s AND raw_bytes IS NOT NULL",
            (tuple(ids),))
        return {row_id: bytes(value) for row_id, value in self.env.cr.fetchall()}

    # ------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------

    def action_skip(self):
        """Give up on these copies (the mail itself was sent)."""
        return self._give_up("skipped", "append", lambda count: self.env._(
            "%(count)s sent copies skipped by %(user)s.", count=count, user=self.env.user.name))

    # ------------------------------------------------------------
    # Queueing (called from ir.mail_server.send_email)
    # ------------------------------------------------------------

    @api.model
    def _mailbox_option(self, mailbox, key):
        """A sending option of ``mailbox``, falling back to the global default."""
        if key in ("error_policy", "max_attempts"):
            value = mailbox[f"sent_copy_{key}"]
            if value and value != "default":
                return value
            return self._global_option(key)
        return mailbox[f"sent_copy_{key}"]

    @api.model
    def _global_option(self, key):
        default = DEFAULTS[key]
        value = self.env["ir.config_parameter"].sudo().get_param(PARAM_PREFIX + key)
        if value in (None, False, ""):
            return default
        if isinstance(default, bool):
            return value not in (False, "False", "false", "0", "drop")
        if isinstance(default, (int, float)):
            try:
                return type(default)(float(value))
            except ValueError:
                return default
        return value

    @api.model
    def _current_sending_mail(self, message):
        """The mail.mail whose email is being sent, when mail.mail._send() is the sender."""
        from ..mailsync.sent_copy import normalize_message_id

        marker = self.env.cr.cache.get(SENDING_MAIL_KEY)
        if not marker:
            return self.env["mail.mail"]
        mail_id, message_id = marker
        if normalize_message_id(message_id) != normalize_message_id(message["Message-Id"]):
            return self.env["mail.mail"]
        return self.env["mail.mail"].sudo().browse(mail_id).exists()

    @api.model
    def _classify(self, mail, headers, recipients):
        """The kind of one sent email: "internal", "reply" or "new".

        internal: every recipient is an internal user. reply: the record's
        thread holds mail received from someone else than the author (the
        customer wrote first), or the email answers another (In-Reply-To).
        new: anything else.
        """
        normalized = {email_normalize(address) for address in recipients} - {False}
        if normalized:
            internal_emails = set(self.env["res.users"].sudo().search([
                ("share", "=", False), ("email_normalized", "in", list(normalized)),
            ]).mapped("email_normalized"))
            if normalized <= internal_emails:
                return "internal"
        if mail and mail.mail_message_id and mail.model and mail.res_id:
            message = mail.mail_message_id
            received = self.env["mail.message"].sudo().search_count([
                ("model", "=", mail.model), ("res_id", "=", mail.res_id),
                ("message_type", "=", "email"), ("id", "<", message.id),
                ("author_id", "!=", message.author_id.id),
            ], limit=1)
            if received:
                return "reply"
        if headers.get("In-Reply-To"):
            return "reply"
        return "new"

    @api.model
    def _enqueue_sent(self, mailbox, data, *, recipients, mail=None):
        """Create the outbox row for bytes ``data`` just accepted by ``mailbox``'s SMTP.

        Returns the row, or an empty recordset when the mailbox's options leave
        this kind of mail out (copies off, mass mailing, internal notifications).
        """
        from ..mailsync.sent_copy import normalize_message_id

        mailbox = mailbox.sudo()
        if not mailbox.sent_copy_enabled:
            return self.browse()
        mail = mail or self.env["mail.mail"]
        if mail and "mailing_id" in mail._fields and mail.mailing_id \
                and not mailbox.sent_copy_mass_mailing:
            return self.browse()
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(data)
        kind = self._classify(mail, headers, recipients)
        if kind == "internal" and not mailbox.sent_copy_internal:
            return self.browse()
        now = fields.Datetime.now()
        next_try = self._next_slot(now, FREQUENCY_MINUTES.get(mailbox.sent_copy_frequency, 0))
        row = self.sudo().create({
            "mailbox_id": mailbox.id,
            "kind": kind,
            "message_id": normalize_message_id(headers.get("Message-ID")),
            "subject": str(headers.get("Subject") or "")[:512],
            "email_from": str(headers.get("From") or "")[:512],
            "recipients": ", ".join(recipients)[:2048],
            "size": len(data),
            "sent_at": now,
            "next_try": next_try,
            "mail_message_id": mail.mail_message_id.id if mail else False,
        })
        self.env.cr.execute("UPDATE mailsync_outbox SET raw_bytes = %s WHERE id = %s",
                            (psycopg2.Binary(data), row.id))
        if next_try <= now:
            # ir.cron._trigger() notifies the cron runner from a postcommit
            # hook: the cron wakes up right after this transaction commits,
            # and never before the row exists for it.
            self._trigger_cron()
        else:
            self._trigger_cron(at=next_try, mailbox=mailbox, exclude=row)
        return row

    @api.model
    def _next_slot(self, now, minutes):
        """``now`` for immediate mode, else the next clock boundary of the batch
        interval (every 5/15 minutes, on the hour), so that copies of a mailbox
        go out together."""
        if not minutes:
            return now
        epoch = datetime(1970, 1, 1)
        elapsed = (now - epoch).total_seconds() / 60.0
        return epoch + timedelta(minutes=math.floor(elapsed / minutes + 1) * minutes)

    @api.model
    def _trigger_cron(self, at=None, mailbox=None, exclude=None):
        if at and mailbox:
            # One trigger per batch slot and mailbox is enough.
            domain = [("mailbox_id", "=", mailbox.id), ("state", "=", "queued"),
                      ("next_try", "=", at)]
            if exclude:
                domain.append(("id", "not in", exclude.ids))
            if self.sudo().search_count(domain, limit=1):
                return
        super()._trigger_cron(at)

    # ------------------------------------------------------------
    # Filing (cron)
    # ------------------------------------------------------------

    @api.model
    def _cron_process_outbox(self, time_budget=TIME_BUDGET):
        """File due copies, one mailbox batch per transaction, until none is due."""
        return self._process_due(time_budget)

    @api.model
    def _after_run(self, auto_commit):
        """Drop the bytes of copies filed long ago (see _purge_old_bytes)."""
        if not auto_commit:
            self._purge_old_bytes()
            return
        try:
            self._purge_old_bytes()
            self.env.cr.commit()
        except psycopg2.extensions.TransactionRollbackError:
            self.env.cr.rollback()  # another worker purges them

    @api.model
    def _claim_limits(self):
        # A batch is one IMAP session: cap its bytes too (large attachments).
        return self._global_option("batch_size"), self._global_option("batch_bytes")

    def _process_claimed(self):
        """Append the claimed rows (one mailbox) and record each outcome.

        Returns the number of rows settled. A mailbox-level problem (server
        unreachable, login refused, folder unusable) leaves every row queued
        and pushes the mailbox's next try back; a message the server refuses
        counts an attempt on that row only.
        """
        from ..mailsync import imap as mailsync_imap
        from ..mailsync.errors import MailsyncError
        from ..mailsync.sent_copy import PartialBatchError

        rows = self.sudo()
        mailbox = rows.mailbox_id
        mailbox.ensure_one()
        started = time.monotonic()
        settled = 0
        secrets = []
        protocol_lines = []
        failure = None
        reports = []
        try:
            endpoint = mailbox._get_imap_endpoint()
            secrets = [endpoint.secret]
            with capture_protocol_log(mailbox.debug_logging, secrets) as protocol_lines:
                with mailsync_imap.imap_session(endpoint) as client:
                    for folder, group in rows._group_by_target(client):
                        try:
                            report = group._append_group(client, folder)
                        except PartialBatchError as error:
                            # Settle what the server confirmed before the line dropped.
                            settled += group._apply_results(folder, error.results, None)
                            raise
                        reports.append((folder, report))
                        settled += group._apply_results(folder, report.results,
                                                        report.uidvalidity)
        except (MailsyncError, UserError) as error:
            failure = error
        except psycopg2.Error:
            raise  # the transaction is unusable: the cron loop rolls the batch back
        except Exception as error:  # a bug or an unexpected server answer: keep the rows
            _logger.exception("Email Sync: filing sent copies of mailbox %s failed", mailbox.id)
            failure = error
        duration_ms = int((time.monotonic() - started) * 1000)
        detail = protocol_lines if mailbox.debug_logging else None
        if failure is not None:
            waiting = rows.filtered(lambda r: r.state == "queued")
            waiting._mailbox_failure(mailbox, failure, duration_ms, detail, secrets)
        else:
            rows._mailbox_success(mailbox, reports, duration_ms, detail, secrets)
        return settled

    def _group_by_target(self, client):
        """[(folder record, rows)] -- the target folder of each row, per its kind."""
        groups, by_kind = {}, {}
        for row in self:
            if row.kind not in by_kind:
                by_kind[row.kind] = self._target_folder(row.mailbox_id, row.kind, client)
            folder = by_kind[row.kind]
            groups[folder] = groups.get(folder, self.browse()) | row
        return list(groups.items())

    @api.model
    def _target_folder(self, mailbox, kind, client):
        """The mailsync.folder receiving copies of ``kind``: the folder chosen for
        that kind, else the mailbox's chosen folder, else its Sent folder -- and
        when the server has none, a top-level "Sent" created for the purpose."""
        from ..mailsync.sent_copy import ensure_folder, resolve_sent_folder

        mailbox = mailbox.sudo()
        chosen = {
            "reply": mailbox.sent_folder_reply_id,
            "new": mailbox.sent_folder_new_id,
            "internal": mailbox.sent_folder_internal_id,
        }.get(kind) or mailbox.sent_folder_id
        if chosen:
            if ensure_folder(client, chosen.path):
                self.env["mailsync.log"]._record(
                    mailbox, "folders", "info",
                    self.env._("Folder %s created on the server for sent copies.", chosen.path))
            return chosen
        sent = mailbox.folder_ids.filtered(lambda f: f.role == "sent" and f.exists_on_server)[:1]
        path, created = resolve_sent_folder(client, preferred=sent.path if sent else None)
        folder = mailbox.folder_ids.filtered(lambda f: f.path == path)[:1]
        if created:
            self.env["mailsync.log"]._record(
                mailbox, "folders", "info",
                self.env._("The server had no Sent folder: %s created (and subscribed) for sent copies.",
                  path))
        if not folder:
            folder = self.env["mailsync.folder"].sudo().create({
                "mailbox_id": mailbox.id, "path": path, "role": "sent", "role_detected": "sent",
                "sync_enabled": True, "exists_on_server": True,
            })
        elif not folder.exists_on_server:
            folder.exists_on_server = True
        return folder

    def _append_group(self, client, folder):
        from ..mailsync.sent_copy import CopyOptions, PendingCopy, append_copies, transform_copy

        mailbox = self.mailbox_id
        options = CopyOptions(
            content=mailbox.sent_copy_content or "full",
            attachments=bool(mailbox.sent_copy_attachments),
            max_attachment_bytes=int((mailbox.sent_copy_max_attachment_mb or 0) * 1024 * 1024))
        raw_by_id = self._read_raw()
        copies = [PendingCopy(key=row.id, raw=transform_copy(raw_by_id.get(row.id, b""), options),
                              message_id=row.message_id or None, internal_date=row.sent_at)
                  for row in self]
        return append_copies(client, folder.path, copies,
                             strategy=self._existing_strategy(len(copies)))

    @api.model
    def _existing_strategy(self, count):
        """How to look for copies already in the folder (see sent_copy.find_existing).

        A few Message-IDs: OR'd UID SEARCH HEADER, exact whatever the dates.
        A large batch: the server would compare every header of the folder with
        every id; SINCE + a header FETCH of the recent messages is several
        times cheaper (bench/bench_outbound.py measures both).
        """
        forced = self.env["ir.config_parameter"].sudo().get_param(
            "imap_sent_sync.sent_copy_existing_strategy")
        if forced in ("search", "recent"):
            return forced
        return "search" if count <= SEARCH_STRATEGY_MAX else "recent"

    def _apply_results(self, folder, results, uidvalidity):
        """Write the outcome of append_copies() on the rows; returns rows settled.

        Filed rows are updated with one statement: a drain of a large queue
        would otherwise spend as long in per-row UPDATEs as in the APPENDs.
        """
        ids = set(self.ids)
        filed = []
        failed = self.browse()
        for result in results:
            if result.key not in ids:
                continue
            if result.status in ("appended", "exists"):
                filed.append((result.key, "appended" if result.status == "appended" else "found",
                              result.uid or 0))
            else:
                row = self.browse(result.key)
                row.last_error = explain(result.error)
                failed |= row
        if filed:
            self.flush_recordset()
            now = fields.Datetime.now()
            row_ids, outcomes, uids = (list(column) for column in zip(*filed))
            self.env.cr.execute("""
                UPDATE mailsync_outbox AS o
                   SET state = 'done', result = v.result, appended_uid = v.uid,
                       uidvalidity = %s, folder_id = %s, folder_path = %s, done_at = %s,
                       last_error = NULL, write_uid = %s, write_date = %s
                  FROM unnest(%s::int[], %s::varchar[], %s::int[]) AS v(id, result, uid)
                 WHERE o.id = v.id
            """, (str(uidvalidity) if uidvalidity else None, folder.id, folder.path, now,
                  self.env.uid, now, row_ids, outcomes, uids))
            self.browse([row_id for row_id, _r, _u in filed]).invalidate_recordset([
                "state", "result", "appended_uid", "uidvalidity", "folder_id", "folder_path",
                "done_at", "last_error", "write_uid", "write_date"])
        return len(filed) + failed._message_failure()

    def _message_failure(self):
        """The server refused these copies: retry with backoff, or give up per policy."""
        if not self:
            return 0
        mailbox = self.mailbox_id
        policy = self._mailbox_option(mailbox, "error_policy")
        max_attempts = self._mailbox_option(mailbox, "max_attempts") or 1
        skip = policy == "skip"
        given_up = self._attempt_failed(max_attempts, final=skip,
                                        state="skipped" if skip else "failed")
        if given_up:
            lines = "\n".join("- %s (%s): %s" % (row.subject or "?", row.message_id or "?",
                                                  (row.last_error or "").splitlines()[0])
                              for row in given_up[:20])
            verb = self.env._("skipped") if policy == "skip" else self.env._("failed after %s attempts", max_attempts)
            message = self.env._("%(count)s sent copies %(verb)s; the mails themselves were sent.\n%(lines)s",
                        count=len(given_up), verb=verb, lines=lines)
            self.env["mailsync.log"]._record(mailbox, "append", "failure", message)
            self._notify_owner(
                mailbox, self.env._("Sent copies could not be saved"),
                self.env._("The server refused to store %(count)s sent copies in the mailbox %(mailbox)s "
                  "(policy: %(policy)s). See Email Sync > Sent Copies; retry them from there "
                  "once the cause is fixed.\n%(lines)s",
                  count=self.search_count([("mailbox_id", "=", mailbox.id),
                                           ("state", "in", ("failed", "skipped"))]),
                  mailbox=mailbox.display_name, policy=dict(ERROR_POLICY_SELECTION)[policy],
                  lines=lines))
        return len(given_up)

    @api.model
    def _retry_delays(self):
        return self._global_option("retry_delay"), self._global_option("retry_delay_max")

    def _mailbox_failure(self, mailbox, error, duration_ms, detail, secrets):
        """Nothing could be filed: queue the rows and retry the mailbox later.

        Connection problems never fail a copy: it waits until the server is
        back (the rows stay queued). The owner is told once the problem has
        lasted ``max_attempts`` tries in a row, in one activity per problem.
        """
        from ..mailsync.redact import redact

        failures = mailbox.sent_copy_failures + 1
        text = redact(explain(error), secrets)
        delay = self._backoff(failures)
        next_try = fields.Datetime.now() + timedelta(seconds=delay)
        mailbox.write({"sent_copy_failures": failures})
        self.write({"next_try": next_try, "last_error": text})
        # The other queued rows of the mailbox wait for the same server.
        self.search([("mailbox_id", "=", mailbox.id), ("state", "=", "queued"),
                     ("next_try", "<", next_try), ("id", "not in", self.ids)]).write(
            {"next_try": next_try, "last_error": text})
        self.env["mailsync.log"]._record(
            mailbox, "append", "failure",
            self.env._("%(count)s sent copies waiting (try %(n)s, next in %(delay)s s): %(error)s",
              count=len(self), n=failures, delay=delay, error=text),
            duration_ms=duration_ms, detail=detail, secrets=secrets)
        if failures >= (self._mailbox_option(mailbox, "max_attempts") or 1):
            queued = self.search_count([("mailbox_id", "=", mailbox.id), ("state", "=", "queued")])
            self._notify_owner(
                mailbox, self.env._("Sent copies are waiting: %s", _problem_label(self.env, error)),
                self.env._("%(count)s copies of mail sent from Odoo are waiting to be saved in the "
                  "Sent folder of %(mailbox)s; nothing is lost and the mails themselves were "
                  "sent. They are saved automatically as soon as the server can be used "
                  "again.\n%(error)s", count=queued, mailbox=mailbox.display_name, error=text))

    def _mailbox_success(self, mailbox, reports, duration_ms, detail, secrets):
        results = [x for _f, report in reports for x in report.results]
        appended = sum(1 for x in results if x.status == "appended")
        found = sum(1 for x in results if x.status == "exists")
        failed = sum(1 for x in results if x.status == "failed")
        folders = ", ".join(sorted({folder.path for folder, _r in reports}))
        message = self.env._("%(appended)s sent copies appended to %(folders)s, %(found)s already there, "
                    "%(failed)s refused.", appended=appended, folders=folders, found=found,
                    failed=failed)
        self.env["mailsync.log"]._record(
            mailbox, "append", "failure" if failed and not appended else "success", message,
            duration_ms=duration_ms, detail=detail, secrets=secrets)
        if mailbox.sent_copy_failures:
            mailbox.write({"sent_copy_failures": 0})
            self._resolve_notifications(mailbox)
            # The server is back: the copies that only waited for it (no
            # refusal of their own) are due now, not at their backoff time.
            self.search([("mailbox_id", "=", mailbox.id), ("state", "=", "queued"),
                         ("attempts", "=", 0), ("next_try", ">", fields.Datetime.now())]).write(
                {"next_try": fields.Datetime.now()})

    # ------------------------------------------------------------
    # Owner notifications: one open activity per problem (_notify_owner)
    # ------------------------------------------------------------

    @api.model
    def _resolve_notifications(self, mailbox):
        """The server is back: close the 'waiting' activities of this mailbox."""
        waiting = self.env._("Sent copies are waiting: %s", "")
        activities = self.env["mail.activity"].sudo().search([
            ("res_model", "=", "mailsync.mailbox"), ("res_id", "=", mailbox.id),
            ("summary", "=like", waiting.replace("%", "\\%") + "%")])
        if activities:
            activities.action_feedback(feedback=self.env._("Resolved: the waiting copies were saved."))

    # ------------------------------------------------------------
    # Housekeeping
    # ------------------------------------------------------------

    @api.model
    def _purge_old_bytes(self):
        """Drop the message bytes of copies filed long ago; the row stays as the trail."""
        days = self._global_option("retention_days")
        if not days or days <= 0:
            return
        self.flush_model(["state", "done_at"])
        self.env.cr.execute("""
            UPDATE mailsync_outbox SET raw_bytes = NULL
             WHERE state = 'done' AND raw_bytes IS NOT NULL
               AND done_at < (now() AT TIME ZONE 'UTC') - make_interval(days => %s)
        """, (int(days),))
        if self.env.cr.rowcount:
            self.invalidate_model(["raw_message"])


def _problem_label(env, error):
    from ..mailsync import errors

    if isinstance(error, errors.AuthError):
        return env._("login refused")
    if isinstance(error, errors.TlsError):
        return env._("secure connection failed")
    if isinstance(error, errors.ConnectError):
        return env._("server unreachable")
    if isinstance(error, errors.FolderError):
        return env._("folder unavailable")
    if isinstance(error, UserError):
        return env._("mailbox settings incomplete")
    return env._("unexpected error")
