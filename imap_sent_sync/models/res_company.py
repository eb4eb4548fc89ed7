from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


class ResCompany(models.Model):
    _inherit = "res.company"

    # Propagation: company-wide defaults of the four delete/archive rules,
    # copied on each new mailbox (each mailbox may then differ), and the
    # compliance switch. Safe defaults: what users do in Odoo reaches the
    # mailbox; what they do on their phone does not remove CRM history.
    mailsync_delete_to_odoo = fields.Boolean(
        string="Delete in Odoo when deleted in the mailbox", default=False)
    mailsync_delete_to_mailbox = fields.Boolean(
        string="Delete in the mailbox when deleted in Odoo", default=True)
    mailsync_archive_to_odoo = fields.Boolean(
        string="Archive in Odoo when archived in the mailbox", default=False)
    mailsync_archive_to_mailbox = fields.Boolean(
        string="Archive in the mailbox when archived in Odoo", default=True)
    mailsync_retain_history = fields.Boolean(
        string="Retain email history (compliance)",
        help="Mail deleted in a mailbox is never deleted from Odoo: the rule \"Delete in Odoo "
             "when deleted in the mailbox\" cannot be switched on for any mailbox of the company.")

    @api.constrains("mailsync_retain_history", "mailsync_delete_to_odoo")
    def _check_mailsync_retain_history(self):
        for company in self:
            if company.mailsync_retain_history and company.mailsync_delete_to_odoo:
                raise ValidationError(_(
                    "%s retains email history: mail deleted in a mailbox cannot be deleted "
                    "from Odoo.", company.name))

    def write(self, vals):
        if vals.get("mailsync_retain_history"):
            # Switching compliance on switches the forbidden rule off everywhere
            # in the same transaction, so no poll can delete history meanwhile.
            vals["mailsync_delete_to_odoo"] = False
        res = super().write(vals)
        if vals.get("mailsync_retain_history"):
            mailboxes = self.env["mailsync.mailbox"].sudo().with_context(active_test=False).search([
                ("company_id", "in", self.ids), ("propagate_delete_to_odoo", "=", True)])
            if mailboxes:
                mailboxes.write({"propagate_delete_to_odoo": False})
                for mailbox in mailboxes:
                    self.env["mailsync.log"]._record(
                        mailbox, "delete", "info",
                        _("\"Delete in Odoo when deleted in the mailbox\" switched off: the "
                          "company now retains email history."))
        return res
