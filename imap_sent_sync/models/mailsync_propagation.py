"""Delete and archive propagation between the mailboxes and Odoo.

Mailbox -> Odoo: during polling, the copies that left a synced folder are
found (VANISHED with QRESYNC, else a periodic UID comparison) and located by
Message-ID: in the Trash ("deleted"), in the Archive or Gmail's All Mail
("archived"), nowhere ("deleted": expunged, or moved out of sight). The link
always records that server state. Odoo changes only when the mailbox's rule
says so -- (a) delete, (c) archive -- and only once no other copy of the
email is still in a normal folder (the same email in INBOX and Sent, or in
two reps' mailboxes, keeps its chatter entry while one copy remains).

Odoo -> mailbox: see mailsync.server.action (the queue) and
mailsync_propagation_mail.py (mail.message unlink / archive).

An email deleted by a user in Odoo leaves a tombstone on its links
(``deleted_in_odoo``): it is never imported again, whichever folder or
mailbox of the company it shows up in (restored from the Trash, a backfill
run again after Resume...).
"""
import logging
from datetime import timedelta

from odoo import _, api, fields, models

from ..mailsync import inbound, server_actions

_logger = logging.getLogger(__name__)

# Without CONDSTORE a poll cannot tell that mail was expunged; compare the
# linked UIDs with the server at most this often per folder.
UID_CHECK_MINUTES = 60
# Folders where a copy does not count as "still in the mailbox" for the
# Odoo-side rules (Gmail's All Mail holds every message whatever its labels).
NOT_LIVE_ROLES = ("trash", "junk", "all", "archive")


class MailsyncLink(models.Model):
    _inherit = "mailsync.link"

    # Propagation
    deleted_in_odoo = fields.Boolean(
        string="Deleted in Odoo", readonly=True, index="btree_not_null", copy=False,
        help="A user deleted this email in Odoo: it is never imported again.")
    server_state_date = fields.Datetime(
        string="Server State Since", readonly=True, copy=False,
        help="When the sync saw this copy archived or deleted on the server.")


class MailsyncFolder(models.Model):
    _inherit = "mailsync.folder"

    # Propagation
    removal_checked_at = fields.Datetime(
        string="Removals Checked", readonly=True, copy=False,
        help="Last time the synced copies of this folder were compared with the server.")


class MailsyncSync(models.AbstractModel):
    _inherit = "mailsync.sync"

    # ------------------------------------------------------------
    # Hooks into the inbound poll
    # ------------------------------------------------------------

    @api.model
    def _folder_changed(self, mailbox, folder, session, status):
        res = super()._folder_changed(mailbox, folder, session, status)
        # HIGHESTMODSEQ moved: mail may have been expunged or moved away. With
        # QRESYNC the server says which UIDs (one cheap round trip); with
        # CONDSTORE alone every linked UID must be looked up, so only now and then.
        if inbound.has_qresync(session.client) or self._removal_check_due(folder):
            self._check_removals(mailbox, folder, session, modseq=folder.highestmodseq)
        return res

    @api.model
    def _poll(self, mailbox, session, stats):
        more = super()._poll(mailbox, session, stats)
        if not session.condstore:
            # No HIGHESTMODSEQ, so no _folder_changed when mail disappears.
            for folder in self._synced_folders(mailbox):
                if folder.uidvalidity and self._removal_check_due(folder):
                    self._check_removals(mailbox, folder, session)
        return more

    @api.model
    def _removal_check_due(self, folder):
        due = fields.Datetime.now() - timedelta(minutes=UID_CHECK_MINUTES)
        return not folder.removal_checked_at or folder.removal_checked_at <= due

    @api.model
    def _skip_linked(self, folder, candidates):
        candidates = super()._skip_linked(folder, candidates)
        if not candidates:
            return candidates
        # Tombstones: deleted in Odoo by a user, never imported again.
        self.env["mailsync.link"].flush_model(["deleted_in_odoo", "message_id", "company_id"])
        self.env.cr.execute("""
            SELECT DISTINCT message_id FROM mailsync_link
             WHERE deleted_in_odoo AND company_id = %s AND message_id = ANY(%s)
        """, (folder.mailbox_id.company_id.id, list({c.message_id for c in candidates})))
        deleted = {row[0] for row in self.env.cr.fetchall()}
        return [c for c in candidates if c.message_id not in deleted]

    # ------------------------------------------------------------
    # Mailbox -> Odoo
    # ------------------------------------------------------------

    @api.model
    def _check_removals(self, mailbox, folder, session, modseq=None):
        """Find the linked copies that left ``folder`` and apply the rules.

        ``modseq``: the HIGHESTMODSEQ stored at the previous poll (VANISHED
        since then, with QRESYNC); None compares every linked UID.
        """
        Link = self.env["mailsync.link"].sudo()
        links = Link.search([("folder_id", "=", folder.id), ("state", "=", "synced"),
                             ("uid", "!=", False)])
        folder.removal_checked_at = fields.Datetime.now()
        if not links:
            return {}
        scan = server_actions.removed_uids(
            session.client, folder.path, links.mapped("uid"),
            uidvalidity=int(folder.uidvalidity) if folder.uidvalidity else None,
            modseq=int(modseq) if modseq else None)
        session.selected = None  # the scan opened folders of its own
        if scan.uidvalidity_changed or not scan.removed:
            return {}
        removed = set(scan.removed)
        gone_links = links.filtered(lambda l: l.uid in removed)
        roles = {f.role: f.path for f in mailbox.folder_ids.filtered("exists_on_server")}
        archive = roles.get("archive") or roles.get("all")
        if folder.role in ("archive", "all", "trash") or archive == folder.path:
            archive = None  # leaving the Archive is not archiving
        trash = roles.get("trash") if folder.role != "trash" else None
        kinds = server_actions.classify_removed(
            session.client, {l.uid: l.message_id for l in gone_links},
            trash_folder=trash, archive_folder=archive)
        session.selected = None
        return self._apply_server_removals(mailbox, folder, gone_links, kinds, scan.method)

    @api.model
    def _apply_server_removals(self, mailbox, folder, links, kinds, method=""):
        """Record the server state on ``links`` and reflect it in Odoo per the rules."""
        now = fields.Datetime.now()
        archived = links.filtered(lambda l: kinds.get(l.uid) == server_actions.KIND_ARCHIVE)
        deleted = links - archived
        archived.write({"state": "archived", "server_state_date": now})
        deleted.write({"state": "deleted", "server_state_date": now})
        to_delete = self.env["mail.message"]
        to_archive = self.env["mail.message"]
        if deleted and mailbox.propagate_delete_to_odoo \
                and not mailbox.company_id.mailsync_retain_history:
            to_delete = self._without_live_copies(deleted.mail_message_ids, ("synced", "archived"),
                                                  ("trash", "junk"))
        if archived and mailbox.propagate_archive_to_odoo:
            to_archive = self._without_live_copies(archived.mail_message_ids, ("synced",),
                                                   NOT_LIVE_ROLES)
            to_archive = to_archive.filtered(lambda m: not m.mailsync_archived)
        counts = {
            "trash": sum(1 for l in links if kinds.get(l.uid) == server_actions.KIND_TRASH),
            "archive": len(archived),
            "gone": sum(1 for l in links if kinds.get(l.uid) == server_actions.KIND_GONE),
        }
        if to_archive:
            to_archive.sudo().write({"mailsync_archived": True})
        deleted_count = len(to_delete)
        if to_delete:
            # From the server: no queued server action (the copies are gone
            # already) and no tombstone (restored on the server, it may come back).
            to_delete.sudo().with_context(mailsync_from_server=True).unlink()
        kept = _("kept in Odoo (rules off)") if not (to_delete or to_archive) else ""
        message = _(
            "%(count)s synced emails left %(folder)s on the server (%(method)s): %(trash)s moved "
            "to the Trash, %(archive)s archived, %(gone)s expunged or moved elsewhere. In Odoo: "
            "%(deleted)s deleted, %(archived)s archived %(kept)s",
            count=len(links), folder=folder.path, method=method or "-", trash=counts["trash"],
            archive=counts["archive"], gone=counts["gone"], deleted=deleted_count,
            archived=len(to_archive), kept=kept)
        self.env["mailsync.log"]._record(mailbox, "delete" if deleted else "move", "info",
                                         message.strip(), folder=folder)
        return {"links": links, "kinds": kinds, "deleted": deleted_count,
                "archived": len(to_archive)}

    @api.model
    def _without_live_copies(self, messages, live_states, ignored_roles):
        """Those of ``messages`` with no copy left in a normal folder of any mailbox."""
        if not messages:
            return messages
        self.env["mailsync.link"].flush_model()
        self.env.cr.execute("""
            SELECT DISTINCT r.mail_message_id
              FROM mailsync_link_mail_message_rel r
              JOIN mailsync_link l ON l.id = r.link_id
              JOIN mailsync_folder f ON f.id = l.folder_id
             WHERE r.mail_message_id = ANY(%s)
               AND l.state = ANY(%s)
               AND f.role <> ALL(%s)
        """, (messages.ids, list(live_states), list(ignored_roles)))
        live = {row[0] for row in self.env.cr.fetchall()}
        return messages.filtered(lambda m: m.id not in live)


class MailsyncMailbox(models.Model):
    _inherit = "mailsync.mailbox"

    def _compute_server_action_counts(self):
        groups = self.env["mailsync.server.action"].sudo()._read_group(
            [("mailbox_id", "in", self.ids), ("state", "in", ("queued", "failed"))],
            ["mailbox_id", "state"], ["__count"])
        counts = {(mailbox.id, state): count for mailbox, state, count in groups}
        for mailbox in self:
            mailbox.server_action_queued_count = counts.get((mailbox.id, "queued"), 0)
            mailbox.server_action_failed_count = counts.get((mailbox.id, "failed"), 0)

    def action_view_server_actions(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "imap_sent_sync.action_mailsync_server_action")
        action["domain"] = [("mailbox_id", "=", self.id)]
        action["context"] = {"search_default_pending": 1}
        return action

    def action_resume(self):
        res = super().action_resume()
        # Changes queued while paused run now.
        self.env["mailsync.server.action"]._trigger_cron()
        return res

    def action_disconnect(self):
        """Disconnect never touches server mail: queued changes are cancelled."""
        queued = self.env["mailsync.server.action"].sudo().search(
            [("mailbox_id", "in", self.ids), ("state", "=", "queued")])
        res = super().action_disconnect()
        if queued:
            queued.write({"state": "cancelled", "done_at": fields.Datetime.now(),
                          "last_error": _("Cancelled: the mailbox was disconnected.")})
        return res
