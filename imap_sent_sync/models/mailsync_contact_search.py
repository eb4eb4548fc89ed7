"""Find Past Emails: the older mail of a contact created after the backfill.

The sync imports mail with the contacts that exist when it reads the mail, so
a contact created (or given its address) later has none of the mail exchanged
with it before. "Find Past Emails" on the contact creates one request per
active connected mailbox of the contact's company -- every rep's mailbox, not
only the clicking user's, as the automatic sync imports mail with contacts
from all of them too -- and triggers the inbound cron.

The inbound runner (``mailsync.sync._step``) works the requests off as steps
like the others: one transaction each, the mailbox claimed, at most
POLL_BATCH messages per step, the request's cursor (folder, UID) written with
the data. Per synced folder, the server searches the mailbox's backfill window
for the address (below the poll cursor: newer mail is the poll's), and the
hits go through the same header check, matching, dedupe and content options
as the rest of the sync.
"""
import imaplib
from datetime import timedelta

import psycopg2.errors

from odoo import _, api, fields, models

from ..mailsync import address_search, addresses, inbound
from . import mailsync_sync
from .mailsync_sync_importer import ConcurrentImport


class MailsyncContactSearch(models.Model):
    _name = "mailsync.contact.search"
    _description = "Find Past Emails Request"
    _order = "id"

    partner_id = fields.Many2one("res.partner", string="Contact", required=True,
                                 ondelete="cascade", index=True, readonly=True)
    mailbox_id = fields.Many2one("mailsync.mailbox", required=True, ondelete="cascade",
                                 index=True, readonly=True)
    user_id = fields.Many2one(related="mailbox_id.user_id", store=True, index=True)
    company_id = fields.Many2one(related="mailbox_id.company_id", store=True)
    email = fields.Char(
        required=True, readonly=True,
        help="Normalized address searched: the contact's when the search was asked.")
    state = fields.Selection([
        ("pending", "Pending"),
        ("done", "Done"),
        ("failed", "Failed"),
    ], required=True, default="pending", readonly=True)
    # Cursor: the folder being searched and the UID below which it continues
    # (0: from the poll cursor down).
    folder_id = fields.Many2one("mailsync.folder", ondelete="set null", readonly=True)
    below_uid = fields.Integer(readonly=True)
    found_count = fields.Integer(string="Messages Found", readonly=True,
                                 help="Server copies in the window that mention the address.")
    imported_count = fields.Integer(string="Chatter Entries Added", readonly=True)
    error = fields.Text(readonly=True)

    def init(self):
        # The runner asks "does this mailbox have pending requests?" for every
        # connected mailbox at each claim.
        self.env.cr.execute("""
            CREATE INDEX IF NOT EXISTS mailsync_contact_search_pending_idx
                ON mailsync_contact_search (mailbox_id) WHERE state = 'pending'
        """)

    # ------------------------------------------------------------
    # Requests
    # ------------------------------------------------------------

    @api.model
    def _request(self, partners):
        """Queue a search of every active connected mailbox for ``partners``
        (which have an address); returns the mailboxes that will search."""
        mailboxes = self.env["mailsync.mailbox"].sudo().search(
            [("state", "=", "connected"), ("has_secret", "=", True)])
        pending = self.sudo().search([("partner_id", "in", partners.ids),
                                      ("state", "=", "pending")])
        queued = {(r.partner_id.id, r.mailbox_id.id, r.email) for r in pending}
        searched = self.env["mailsync.mailbox"].sudo()
        vals_list = []
        for partner in partners:
            # The sync matches contacts of the mailbox's company or of none.
            boxes = mailboxes.filtered(
                lambda m: not partner.company_id or m.company_id == partner.company_id)
            searched |= boxes
            vals_list += [{"partner_id": partner.id, "mailbox_id": mailbox.id,
                           "email": partner.email_normalized}
                          for mailbox in boxes
                          if (partner.id, mailbox.id, partner.email_normalized) not in queued]
        if vals_list:
            self.sudo().create(vals_list)
        if searched:
            searched._trigger_inbound()
        return searched

    @api.model
    def _next_for(self, mailbox):
        """The oldest pending request of ``mailbox`` (empty when none)."""
        return self.sudo().search([("mailbox_id", "=", mailbox.id), ("state", "=", "pending")],
                                  limit=1)

    # ------------------------------------------------------------
    # Runner step (called by mailsync.sync._step, mailbox claimed)
    # ------------------------------------------------------------

    def _search_step(self, mailbox, session, stats):
        """Search one folder for the address and import at most POLL_BATCH of
        the hits; True when more work is waiting."""
        self.ensure_one()
        sync = self.env["mailsync.sync"]
        folders = sync._synced_folders(mailbox).sorted("id")
        folder = self.folder_id if self.folder_id in folders else self._next_folder(folders)
        if not folder:
            return self._finish(mailbox)
        info = session.examine(folder.path)
        if not folder.uidvalidity:
            folder.write(sync._cursor_vals(info.uidvalidity, info.uidnext - 1, info.highestmodseq))
        elif int(folder.uidvalidity) != info.uidvalidity:
            # Stored UIDs are void: re-map first, then search the folder again.
            sync._resync_folder(mailbox, folder, session, stats)
            self.write({"folder_id": folder.id, "below_uid": 0})
            return True
        below = (self.below_uid if folder == self.folder_id and self.below_uid
                 else (folder.last_uid or 0) + 1)
        try:
            uids = address_search.search_address_uids(
                session.client, addresses.lookup_forms(self.email), self._since(mailbox), below)
        except imaplib.IMAP4.abort:
            raise  # the connection: retried with the mailbox
        except imaplib.IMAP4.error as error:
            # The server refused this search (NO/BAD): retrying would only hold
            # up the mailbox's sync.
            return self._finish(mailbox, error=str(error))
        batch = uids[:mailsync_sync.POLL_BATCH]
        created = stats.created
        if batch:
            self._import_batch(mailbox, folder, session, batch, stats)
        self.write({"found_count": self.found_count + len(batch),
                    "imported_count": self.imported_count + stats.created - created})
        if len(uids) > len(batch):
            self.write({"folder_id": folder.id, "below_uid": min(batch)})
            return True
        following = self._next_folder(folders, after=folder)
        if not following:
            return self._finish(mailbox)
        self.write({"folder_id": following.id, "below_uid": 0})
        return True

    def _next_folder(self, folders, after=None):
        after = after if after is not None else self.folder_id
        return folders.filtered(lambda f: f.id > (after.id or 0))[:1]

    @api.model
    def _since(self, mailbox):
        """Start of the window: the mailbox's last backfill window, or its
        configured one when that reaches further back (or none ran)."""
        days = mailbox.backfill_days if mailbox.backfill_days > 0 else 0
        window = fields.Date.context_today(mailbox) - timedelta(days=days)
        return min(mailbox.backfill_since, window) if mailbox.backfill_since else window

    def _finish(self, mailbox, error=None):
        self.write({"state": "failed" if error else "done", "error": error or False,
                    "folder_id": False, "below_uid": 0})
        if error:
            message = _("Find Past Emails for %(contact)s (%(email)s) failed: %(error)s",
                        contact=self.partner_id.display_name, email=self.email, error=error)
        else:
            message = _("Find Past Emails for %(contact)s (%(email)s), asked by %(user)s: "
                        "%(found)s messages found since %(since)s, %(imported)s chatter entries "
                        "added.", contact=self.partner_id.display_name, email=self.email,
                        user=self.create_uid.name, found=self.found_count,
                        since=self._since(mailbox), imported=self.imported_count)
        self.env["mailsync.log"]._record(mailbox, "fetch", "failure" if error else "info", message)
        return self.env["mailsync.sync"]._work_waiting(mailbox)

    # ------------------------------------------------------------
    # Import
    # ------------------------------------------------------------

    @api.model
    def _import_batch(self, mailbox, folder, session, uids, stats):
        """New copies are imported as a poll imports them; copies imported
        before the contact existed (for other contacts of the same email)
        also go on the records that lack the email now."""
        self.env["mailsync.link"].flush_model()
        self.env.cr.execute("""
            SELECT l.uid, l.id, l.state = 'synced' AND NOT EXISTS (
                       SELECT 1 FROM mailsync_link t
                        WHERE t.message_id = l.message_id AND t.company_id = l.company_id
                          AND t.deleted_in_odoo)
              FROM mailsync_link l
             WHERE l.folder_id = %s AND l.uid = ANY(%s)
        """, (folder.id, list(uids)))
        linked = {uid: (link_id, live) for uid, link_id, live in self.env.cr.fetchall()}
        fresh = [uid for uid in uids if uid not in linked]
        if fresh:
            self.env["mailsync.sync"]._import_uids(mailbox, folder, session, fresh, stats)
        # Pending copies are the running backfill's (it matches them again at
        # import); tombstoned or archived ones stay as they are.
        live = {uid: link_id for uid, (link_id, ok) in linked.items() if ok}
        if live:
            self._add_to_new_records(mailbox, folder, session, live, stats)

    @api.model
    def _add_to_new_records(self, mailbox, folder, session, link_ids, stats):
        """Linked copies ({uid: link id}): matched again, and when a record
        has no entry for the email yet (the new contact), it gets one and the
        link points at it too. Bodies are fetched only then."""
        sync = self.env["mailsync.sync"]
        importer = self.env["mailsync.importer"]
        options = importer._get_options(mailbox)
        records = inbound.fetch_headers(session.client, sorted(link_ids))
        stats.scanned += len(records)
        candidates = sync._header_candidates(mailbox, folder, records, stats)
        for cand in candidates:
            cand.link_id = link_ids[cand.uid]
        matched = importer._match_candidates(candidates, options)
        existing = importer._existing_entries({cand.message_id: [cand] for cand in matched})
        missing = [cand for cand in matched
                   if any((cand.message_id,) + target not in existing for target in cand.targets)]
        if not missing:
            return
        full = sync._fetch_full(mailbox, folder, session, missing, options, stats)
        try:
            with self.env.cr.savepoint():
                stats.created += importer._import_candidates(mailbox, full, options)
        except (psycopg2.errors.UniqueViolation, psycopg2.errors.SerializationFailure) as error:
            # Another worker imported this email for the contact meanwhile.
            if mailsync_sync._is_entry_clash(error):
                raise ConcurrentImport() from error
            raise
        stats.imported += len(full)
