"""Synced emails in the chatter: delete and archive, both propagated to the mailbox.

* Deleting a synced email (the chatter's Delete on a synced email, or any
  ``mail.message.unlink()``) queues a move to the Trash of every server copy
  it is linked to, per each mailbox's rule (b), and leaves a tombstone so the
  email is never imported again. Deleting a whole record (a contact, an
  opportunity) removes its chatter but is not a request to clean anyone's
  mailbox: nothing is queued then.
* Archiving hides the email from the chatter -- ``mailsync_archived``, and a
  domain on ``_message_fetch``, the one method the chatter loads messages
  through -- while it stays in the database, in searches (the chatter's own
  search finds it) and in the "Synced Emails" list. Rule (d) moves the Inbox
  copies to the Archive folder.
"""
from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression


class MailMessage(models.Model):
    _inherit = "mail.message"

    # Propagation. No default: existing rows keep NULL (read as False), so
    # adding the column to a large mail_message table rewrites nothing.
    mailsync_archived = fields.Boolean(
        string="Archived Email", copy=False,
        help="Hidden from the chatter (archived here or in the mailbox); kept and searchable.")

    @api.model
    def _message_fetch(self, domain, search_term=None, before=None, after=None, around=None,
                       limit=30):
        # Plain chatter loading hides archived emails; a search (or jumping to
        # a message found by one) still shows them.
        if not search_term and around is None:
            domain = expression.AND([domain, [("mailsync_archived", "=", False)]])
        return super()._message_fetch(domain, search_term=search_term, before=before,
                                      after=after, around=around, limit=limit)

    def _to_store(self, store, /, **kwargs):
        super()._to_store(store, **kwargs)
        synced = self._mailsync_synced_ids()
        for message in self:
            store.add(message, {
                "mailsync_synced": message.id in synced,
                "mailsync_archived": bool(message.mailsync_archived),
            })

    def _mailsync_synced_ids(self):
        """Ids of these messages that came from (or went to) a synced mailbox."""
        ids = [i for i in self.ids if isinstance(i, int)]
        if not ids:
            return set()
        self.env["mailsync.link"].flush_model(["mail_message_ids"])
        self.env.cr.execute("""
            SELECT DISTINCT mail_message_id FROM mailsync_link_mail_message_rel
             WHERE mail_message_id = ANY(%s)
        """, (ids,))
        return {row[0] for row in self.env.cr.fetchall()}

    # ------------------------------------------------------------
    # Delete
    # ------------------------------------------------------------

    def unlink(self):
        if self and not self.env.context.get("mailsync_from_server") \
                and not self.env.context.get("mailsync_record_unlink"):
            # Access first: nothing is queued for a delete that is refused.
            self.check_access("unlink")
            self._mailsync_propagate_delete()
        return super().unlink()

    def _mailsync_propagate_delete(self):
        synced = self.browse(sorted(self._mailsync_synced_ids()))
        if not synced:
            return
        Link = self.env["mailsync.link"].sudo()
        links = Link.search([("mail_message_ids", "in", synced.ids)])
        # Tombstones first (whatever the rules): a user deleted this email.
        links.write({"deleted_in_odoo": True})
        self.env["mailsync.server.action"]._queue_for_messages(synced, "delete")
        for mailbox in links.mailbox_id:
            self.env["mailsync.log"]._record(
                mailbox, "delete", "info",
                _("%(count)s synced emails deleted in Odoo by %(user)s; %(what)s",
                  count=len(links.filtered(lambda l: l.mailbox_id == mailbox)
                            .mail_message_ids & synced),
                  user=self.env.user.name,
                  what=_("their server copies will be moved to the Trash.")
                  if mailbox.propagate_delete_to_mailbox
                  else _("the server copies are kept (rule off).")))

    def action_mailsync_delete(self):
        """Chatter "Delete" of a synced email (Odoo's own Delete only exists
        for comments, and only blanks them)."""
        messages = self._mailsync_check_synced()
        messages.unlink()
        return True

    # ------------------------------------------------------------
    # Archive
    # ------------------------------------------------------------

    def action_mailsync_archive(self):
        """Hide these synced emails from the chatter and, per each mailbox's
        rule (d), move their Inbox copies to the Archive folder."""
        messages = self._mailsync_check_synced()
        messages.check_access("write")
        todo = messages.filtered(lambda m: not m.mailsync_archived)
        todo.sudo().write({"mailsync_archived": True})
        self.env["mailsync.server.action"]._queue_for_messages(todo, "archive")
        return True

    def action_mailsync_unarchive(self):
        """Show archived emails in the chatter again (the mailbox is not changed)."""
        self.check_access("write")
        self.filtered("mailsync_archived").sudo().write({"mailsync_archived": False})
        return True

    def _mailsync_check_synced(self):
        synced = self._mailsync_synced_ids()
        if not synced or any(m.id not in synced for m in self):
            raise UserError(_("Only emails synced from a mailbox can be archived or deleted "
                              "this way."))
        return self


class MailThread(models.AbstractModel):
    _inherit = "mail.thread"

    def unlink(self):
        # Deleting a record deletes its chatter; that is not a request to move
        # anybody's mail to the Trash.
        return super(MailThread, self.with_context(mailsync_record_unlink=True)).unlink()
