"""Changes Odoo makes in users' mailboxes: move to Trash, move to Archive.

Deleting or archiving a synced email in Odoo never talks to a mail server in
the user's request: it queues one row per linked server copy (in the same
transaction as the delete/archive), and a cron makes the changes with one
IMAP session per mailbox (see ``mailsync.server_actions`` for the protocol
rules: UID MOVE or UID COPY + UID EXPUNGE of exactly those UIDs, never a
permanent delete). Rows are retried with backoff while the server is down,
are idempotent (a copy already moved or gone is done, not failed) and stay
visible to the mailbox owner and managers as the audit trail.
"""
import logging
import time

import psycopg2

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from .mailsync_log import capture_protocol_log
from .mailsync_queue import TIME_BUDGET
from ..mailsync.errors import explain

_logger = logging.getLogger(__name__)

KIND_SELECTION = [
    ("delete", "Move to Trash"),
    ("archive", "Archive"),
]
# pg_try_advisory_xact_lock(ADVISORY_CLASS, mailbox id): one worker per mailbox.
ADVISORY_CLASS = 0x6D737361
MAX_ATTEMPTS = 8            # then "failed", and the owner is told
# UIDVALIDITY changed: the inbound sync re-maps the copies by Message-ID at its
# next poll; wait for it rather than guess.
STALE_DELAY = 15 * 60


class MailsyncServerAction(models.Model):
    _name = "mailsync.server.action"
    _inherit = ["mailsync.queue"]
    _description = "Mailbox Change"
    _order = "id desc"
    _rec_name = "subject"
    _queue_cron = "imap_sent_sync.ir_cron_mailsync_server_action"
    _queue_advisory_class = ADVISORY_CLASS

    kind = fields.Selection(KIND_SELECTION, required=True, readonly=True)
    state = fields.Selection([
        ("queued", "Queued"),
        ("done", "Done"),
        ("failed", "Failed"),
        ("cancelled", "Cancelled"),
    ], default="queued", required=True, index=True, readonly=True)
    link_id = fields.Many2one("mailsync.link", string="Server Copy", ondelete="set null",
                              index="btree_not_null", readonly=True)
    message_id = fields.Char(string="Message-ID", readonly=True)
    subject = fields.Char(readonly=True)
    folder_id = fields.Many2one("mailsync.folder", string="Folder", ondelete="set null",
                                readonly=True)
    folder_path = fields.Char(string="From Folder", readonly=True)
    uid = fields.Integer(string="UID", readonly=True)
    requested_by_id = fields.Many2one("res.users", string="Requested By", readonly=True,
                                      default=lambda self: self.env.user)
    result = fields.Selection([
        ("moved", "Moved"),
        ("already_there", "Already in the Folder"),
        ("gone", "Already Gone"),
        ("changed", "Message Changed on the Server"),
    ], readonly=True,
        help="Already in the Folder / Already Gone: an earlier attempt or another mail app did "
             "it; nothing was moved twice. Message Changed: the server copy is no longer the "
             "synced email, so it was left alone.")
    target_path = fields.Char(string="To Folder", readonly=True)
    target_uid = fields.Integer(string="New UID", readonly=True)

    # ------------------------------------------------------------
    # Actions (list and form buttons; Retry: mailsync.queue)
    # ------------------------------------------------------------

    def action_cancel(self):
        return self._give_up("cancelled", "move", lambda count: _(
            "%(count)s mailbox changes cancelled by %(user)s; the server was not touched.",
            count=count, user=self.env.user.name))

    # ------------------------------------------------------------
    # Queueing (from mail.message unlink / archive)
    # ------------------------------------------------------------

    @api.model
    def _queue_for_messages(self, messages, kind):
        """Queue ``kind`` for every server copy linked to ``messages`` whose
        mailbox's rule asks for it. Returns the new rows (sudo).

        delete: copies still on the server (in their folder, or archived);
        archive: copies still in an Inbox (archiving elsewhere means nothing).
        """
        if not messages:
            return self.sudo().browse()
        Link = self.env["mailsync.link"].sudo()
        links = Link.search([("mail_message_ids", "in", messages.ids),
                             ("state", "in", ("synced", "archived"))])
        rule = "propagate_%s_to_mailbox" % kind
        links = links.filtered(lambda l: l.mailbox_id[rule] and l.mailbox_id.active
                               and l.mailbox_id.state != "disconnected")
        if kind == "archive":
            links = links.filtered(lambda l: l.state == "synced" and l.folder_id.role == "inbox")
        if not links:
            return self.sudo().browse()
        self.flush_model()
        self.env.cr.execute("""
            SELECT link_id FROM mailsync_server_action
             WHERE link_id = ANY(%s) AND kind = %s AND state = 'queued'
        """, (links.ids, kind))
        queued = {row[0] for row in self.env.cr.fetchall()}
        subjects = {}
        for message in messages.sudo():
            subjects.setdefault(message.id, message.subject or message.record_name or "")
        vals_list = []
        for link in links:
            if link.id in queued:
                continue
            subject = next((subjects[m] for m in link.mail_message_ids.ids if m in subjects), "")
            vals_list.append({
                "mailbox_id": link.mailbox_id.id,
                "kind": kind,
                "link_id": link.id,
                "message_id": link.message_id,
                "subject": (subject or "")[:512],
                "folder_id": link.folder_id.id,
                "folder_path": link.folder_id.path,
                "uid": link.uid,
                "requested_by_id": self.env.uid,
            })
        rows = self.sudo().create(vals_list)
        if rows:
            # ir.cron._trigger notifies the cron runner after this transaction
            # commits: the user's delete never waits for a mail server.
            self._trigger_cron()
        return rows

    # ------------------------------------------------------------
    # Processing (cron)
    # ------------------------------------------------------------

    @api.model
    def _cron_process_server_actions(self, time_budget=TIME_BUDGET):
        """Make the due changes, one mailbox batch per transaction."""
        return self._process_due(time_budget)

    def _process_claimed(self, use_move=None):
        """Make the claimed changes (one mailbox) and record each outcome.

        ``use_move``: None = UID MOVE when the server offers it; False forces
        the UID COPY + STORE + UID EXPUNGE path (same code a server without
        MOVE gets). Returns the number of rows settled.
        """
        from ..mailsync import imap as mailsync_imap
        from ..mailsync import server_actions
        from ..mailsync.errors import MailsyncError

        rows = self.sudo()
        mailbox = rows.mailbox_id
        mailbox.ensure_one()
        started = time.monotonic()
        secrets, failure = [], None
        stats = {"moved": 0, "already_there": 0, "gone": 0, "changed": 0, "waiting": 0,
                 "failed": 0}
        try:
            endpoint = mailbox._get_imap_endpoint()
            secrets = [endpoint.secret]
            with capture_protocol_log(mailbox.debug_logging, secrets) as protocol_lines:
                with mailsync_imap.imap_session(endpoint) as client:
                    caps = server_actions.server_capabilities(client)
                    targets = _Targets(self.env, mailbox, client)
                    for (kind, source), group in rows._plan():
                        group._run_group(client, kind, source, targets, caps, use_move, stats)
        except (MailsyncError, UserError) as error:
            failure = error
        except psycopg2.Error:
            # The database, not the server: the transaction is unusable, so
            # recording a failure here would only raise again. The cron loop
            # rolls the batch back; the rows stay queued.
            raise
        except Exception as error:  # noqa: BLE001 - unexpected answer: keep the rows queued
            _logger.exception("Email Sync: mailbox changes of mailbox %s failed", mailbox.id)
            failure = error
        duration_ms = int((time.monotonic() - started) * 1000)
        detail = protocol_lines if mailbox.debug_logging and failure is None else None
        if failure is not None:
            rows.filtered(lambda r: r.state == "queued")._connection_failure(
                mailbox, failure, duration_ms, secrets)
            return len(rows.filtered(lambda r: r.state != "queued"))
        self._log_batch(mailbox, rows, stats, duration_ms, detail, secrets)
        return len(rows.filtered(lambda r: r.state != "queued"))

    def _plan(self):
        """[((kind, source), rows)]: rows grouped by what to do and where the copy is.

        source is ("folder", folder record) for a copy still where the sync
        saw it, ("archive", None) for a copy archived since (found by
        Message-ID in the Archive folder), ("none", None) when the server
        copy is already gone.
        """
        groups = {}
        for row in self:
            link = row.link_id
            if link and link.state == "deleted":
                source = ("none", None)
            elif link and link.state == "archived":
                source = ("archive", None) if row.kind == "delete" else ("none", None)
            elif link and link.uid:
                source = ("folder", link.folder_id)
            elif not link and row.folder_id and row.uid:
                source = ("folder", row.folder_id)
            else:
                source = ("none", None)
            key = (row.kind, source)
            groups[key] = groups.get(key, self.browse()) | row
        return list(groups.items())

    def _run_group(self, client, kind, source, targets, caps, use_move, stats):
        from ..mailsync import server_actions
        from ..mailsync.errors import FolderError

        where, folder = source
        try:
            if where == "none":
                for row in self:
                    row._settle("gone", None, None, stats)
                return
            target = targets.get("trash" if kind == "delete" else "archive")
            if where == "archive":
                self._move_from_archive(client, targets, target, caps, use_move, stats)
                return
            uid_of = {row: row.link_id.uid if row.link_id else row.uid for row in self}
            move = server_actions.move_to_trash if kind == "delete" else server_actions.archive
            result = move(client, folder.path, list(uid_of.values()), target,
                          message_ids={uid: row.message_id for row, uid in uid_of.items()},
                          uidvalidity=int(folder.uidvalidity) if folder.uidvalidity else None,
                          capabilities=caps, use_move=use_move)
            gone = self._apply(result, uid_of, stats)
            if gone and kind == "delete" and not result.source_missing:
                # Not in its folder any more: another app may have archived it
                # meanwhile (the next poll would tell); delete that copy.
                gone._move_from_archive(client, targets, target, caps, use_move, stats)
            else:
                for row in gone:
                    row._settle("gone", None, None, stats)
        except server_actions.ServerActionError as error:
            self._row_failure(error, stats, final=error.reason == "unsafe_server")
        except FolderError as error:
            self._row_failure(error, stats)

    def _move_from_archive(self, client, targets, trash, caps, use_move, stats):
        """Move the copies of these rows found (by Message-ID) in the Archive
        folder -- Gmail: All Mail -- to the Trash."""
        from ..mailsync import server_actions

        path = targets.get("archive")
        if path == trash:
            for row in self:
                row._settle("gone", None, None, stats)
            return
        found = server_actions.locate_message_ids(client, path, [r.message_id for r in self])
        uid_of = {}
        for row in self:
            hits = found.get(server_actions.message_id_key(row.message_id)) or []
            if hits:
                uid_of[row] = hits[0]
            else:
                row._settle("gone", None, None, stats)
        if not uid_of:
            return
        result = server_actions.move_messages(
            client, path, list(uid_of.values()), trash, create_role="trash",
            message_ids={uid: row.message_id for row, uid in uid_of.items()},
            capabilities=caps, use_move=use_move)
        for row in self._apply(result, uid_of, stats):
            row._settle("gone", None, None, stats)

    def _apply(self, result, uid_of, stats):
        """Write a server_actions.ActionResult on the rows (``uid_of``: row -> UID).

        Returns the rows whose copy was not in the folder (the caller decides
        whether to look elsewhere or call them gone)."""
        dedup = set(result.deduplicated)
        skipped = set(result.skipped)
        gone = self.browse()
        for row, uid in uid_of.items():
            if uid in result.moved:
                row._settle("moved", result.target, result.moved[uid], stats)
            elif uid in dedup:
                row._settle("already_there", result.target, None, stats)
            elif uid in skipped and result.stale:
                row._wait_stale(stats)
            elif uid in skipped:
                row._settle("changed", result.target, None, stats)
            else:
                gone |= row
        return gone

    def _settle(self, result, target, target_uid, stats):
        """Done: the server copy is where it must be (or no longer ours)."""
        self.ensure_one()
        now = fields.Datetime.now()
        state = "cancelled" if result == "changed" else "done"
        self.write({"state": state, "result": result, "target_path": target or False,
                    "target_uid": target_uid or 0, "done_at": now, "last_error": False})
        # The link records where the server copy is now. An archive that found
        # the copy gone says nothing of where it went: the next poll's removal
        # scan classifies it.
        if self.link_id and (result in ("moved", "already_there")
                             or (result == "gone" and self.kind == "delete")):
            self.link_id.state = "deleted" if self.kind == "delete" else "archived"
        stats[result] += 1

    def _wait_stale(self, stats):
        self.ensure_one()
        message = _("The folder %s was reset on the server (new UIDVALIDITY); waiting for the "
                    "next sync to find this email again by its Message-ID.", self.folder_path)
        failed = self._attempt_failed(MAX_ATTEMPTS, {"last_error": message}, delay=STALE_DELAY)
        stats["failed" if failed else "waiting"] += 1

    def _row_failure(self, error, stats, final=False):
        text = explain(error)
        rows = self.filtered(lambda r: r.state == "queued")
        failed = rows._attempt_failed(MAX_ATTEMPTS, {"last_error": text}, final=final)
        stats["waiting"] += len(rows) - len(failed)
        stats["failed"] += len(failed)
        if failed:
            failed._notify_failed(text)

    def _connection_failure(self, mailbox, error, duration_ms, secrets):
        """The mailbox could not be used at all: every row waits and is retried."""
        from ..mailsync.redact import redact

        text = redact(explain(error), secrets)
        failed = self._attempt_failed(MAX_ATTEMPTS, {"last_error": text})
        self.env["mailsync.log"]._record(
            mailbox, "move", "failure",
            _("%(count)s mailbox changes waiting (will be retried): %(error)s",
              count=len(self), error=text), duration_ms=duration_ms, secrets=secrets)
        if failed:
            failed._notify_failed(text)

    def _notify_failed(self, text):
        mailbox = self.mailbox_id[:1]
        lines = "\n".join("- %s (%s)" % (row.subject or "?", row.folder_path or "?")
                          for row in self[:20])
        self.env["mailsync.log"]._record(
            mailbox, "move", "failure",
            _("%(count)s mailbox changes failed: %(error)s\n%(lines)s",
              count=len(self), error=text, lines=lines))
        self._notify_owner(
            mailbox, _("Changes in the mailbox failed"),
            _("%(count)s deletes or archives made in Odoo could not be made in the mailbox "
              "%(mailbox)s: %(error)s See Email Sync > Mailbox Changes; retry them from there "
              "once the cause is fixed.\n%(lines)s", count=len(self),
              mailbox=mailbox.display_name, error=text, lines=lines))

    @api.model
    def _log_batch(self, mailbox, rows, stats, duration_ms, detail, secrets):
        kinds = set(rows.mapped("kind"))
        operation = "delete" if kinds == {"delete"} else "move"
        targets = ", ".join(sorted({p for p in rows.mapped("target_path") if p}))
        message = _("Mailbox changes: %(moved)s moved%(to)s, %(there)s already there, "
                    "%(gone)s already gone, %(changed)s left alone (changed on the server), "
                    "%(waiting)s waiting, %(failed)s failed.",
                    moved=stats["moved"], to=(" to %s" % targets) if targets else "",
                    there=stats["already_there"], gone=stats["gone"], changed=stats["changed"],
                    waiting=stats["waiting"], failed=stats["failed"])
        outcome = "failure" if stats["failed"] and not stats["moved"] else "success"
        self.env["mailsync.log"]._record(mailbox, operation, outcome, message,
                                         duration_ms=duration_ms, detail=detail, secrets=secrets)


class _Targets:
    """Trash/Archive folder paths of one mailbox, resolved once per session.

    The mailbox's folder records win (discovery found them, the user may have
    corrected a role); else the server is asked (SPECIAL-USE, names) and a
    missing folder is created -- and recorded, so the next run finds it.
    """

    def __init__(self, env, mailbox, client):
        self.env = env
        self.mailbox = mailbox
        self.client = client
        self._paths = {}

    def get(self, role):
        if role in self._paths:
            return self._paths[role]
        from ..mailsync import server_actions

        folders = self.mailbox.folder_ids.filtered("exists_on_server")
        roles = ("trash",) if role == "trash" else ("archive", "all")
        path = created = None
        for wanted in roles:
            found = folders.filtered(lambda f: f.role == wanted)[:1]
            if found:
                path, created = found.path, server_actions.ensure_folder(self.client, found.path,
                                                                          role)
                break
        if path is None:
            resolve = (server_actions.resolve_trash_folder if role == "trash"
                       else server_actions.resolve_archive_folder)
            path, created = resolve(self.client)
        record = self.mailbox.folder_ids.filtered(lambda f: f.path == path)[:1]
        if not record:
            self.env["mailsync.folder"].sudo().create({
                "mailbox_id": self.mailbox.id, "path": path, "role": role,
                "role_detected": role, "sync_enabled": False, "exists_on_server": True})
        elif not record.exists_on_server:
            record.exists_on_server = True
        if created:
            self.env["mailsync.log"]._record(
                self.mailbox, "folders", "info",
                _("The server had no %(role)s folder: %(path)s created (and subscribed).",
                  role=role.title(), path=path))
        self._paths[role] = path
        return path
