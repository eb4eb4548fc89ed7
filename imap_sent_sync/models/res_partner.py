from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

MAILSYNC_GROUP = "imap_sent_sync.group_mailsync_user"


class ResPartner(models.Model):
    """The contact's synced emails: the "Emails" smart button and Find Past
    Emails (see mailsync_contact_search.py). Email Sync users only."""

    _inherit = "res.partner"

    mailsync_email_count = fields.Integer(
        string="Synced Emails", compute="_compute_mailsync_email_count", groups=MAILSYNC_GROUP,
        help="Emails in this contact's chatter that come from (or went to) a synced mailbox.")

    def _compute_mailsync_email_count(self):
        counts = dict(self._mailsync_email_rows("m.res_id, COUNT(*)", "GROUP BY m.res_id"))
        for partner in self:
            partner.mailsync_email_count = counts.get(partner.id, 0)

    # ------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------

    def action_view_mailsync_emails(self):
        self.ensure_one()
        self._check_mailsync_user()
        self.check_access("read")
        return {
            "type": "ir.actions.act_window",
            "name": _("Emails of %s", self.display_name),
            "res_model": "mail.message",
            "view_mode": "list,form",
            "views": [(self.env.ref("imap_sent_sync.view_mail_message_mailsync_list").id, "list"),
                      (False, "form")],
            "domain": [("id", "in", [row[0] for row in self._mailsync_email_rows("m.id")])],
            "context": {"create": False},
        }

    def action_find_past_emails(self):
        """Look through the connected mailboxes for older mail with these
        contacts' addresses, in the background (the inbound cron)."""
        self._check_mailsync_user()
        self.check_access("read")
        missing = self.filtered(lambda p: not p.email_normalized)
        if missing:
            raise UserError(_("%s has no valid email address: set one to find past emails.",
                              ", ".join(missing.mapped("display_name"))))
        mailboxes = self.env["mailsync.contact.search"]._request(self)
        if not mailboxes:
            return self._mailsync_notification("warning", _(
                "No connected mailbox: connect one in Email Sync > My Mailboxes first."))
        who = self.email_normalized if len(self) == 1 else _("%s contacts", len(self))
        if len(mailboxes) == 1:
            message = _("Looking for past emails with %s in 1 mailbox; they will appear in the "
                        "chatter shortly.", who)
        else:
            message = _("Looking for past emails with %(who)s in %(count)s mailboxes; they will "
                        "appear in the chatter shortly.", who=who, count=len(mailboxes))
        return self._mailsync_notification("info", message)

    # ------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------

    def _check_mailsync_user(self):
        # Object buttons can be called by RPC whatever the view shows.
        if not self.env.user.has_group(MAILSYNC_GROUP):
            raise AccessError(_("Only Email Sync users can see or search a contact's synced "
                                "emails."))

    def _mailsync_email_rows(self, select, tail=""):
        """One query over the chatters of all of ``self``: messages with a
        server copy (a mailsync.link), which is what the chatter marks as
        synced."""
        ids = [pid for pid in self.ids if isinstance(pid, int)]
        if not ids:
            return []
        self.env["mail.message"].flush_model(["model", "res_id"])
        self.env["mailsync.link"].flush_model(["mail_message_ids"])
        self.env.cr.execute("""
            SELECT %s FROM mail_message m
             WHERE m.model = 'res.partner' AND m.res_id = ANY(%%s)
               AND EXISTS (SELECT 1 FROM mailsync_link_mail_message_rel r
                            WHERE r.mail_message_id = m.id)
             %s""" % (select, tail), (ids,))
        return self.env.cr.fetchall()

    @api.model
    def _mailsync_notification(self, kind, message):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"type": kind, "title": _("Find Past Emails"), "message": message,
                       "sticky": False},
        }
