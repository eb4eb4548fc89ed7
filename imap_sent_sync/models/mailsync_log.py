from odoo import fields, models


class MailsyncLog(models.Model):
    """Audit trail of every sync action: connect, fetch, append, move, delete."""

    _name = "mailsync.log"
    _description = "Mailbox Sync Log"
    _order = "id desc"

    mailbox_id = fields.Many2one("mailsync.mailbox", required=True, ondelete="cascade", index=True)
    user_id = fields.Many2one(related="mailbox_id.user_id", store=True, index=True)
    company_id = fields.Many2one(related="mailbox_id.company_id", store=True)
    operation = fields.Selection([
        ("connection_test", "Connection Test"),
        ("connect", "Connect"),
        ("folders", "Folder Discovery"),
        ("fetch", "Fetch"),
        ("append", "Append"),
        ("move", "Move"),
        ("delete", "Delete"),
        ("credentials", "Credentials"),
    ], required=True)
    outcome = fields.Selection([("success", "Success"), ("failure", "Failure"), ("info", "Info")],
                               required=True, default="info")
    duration_ms = fields.Integer(string="Duration (ms)")
    message = fields.Text()
    detail = fields.Text(help="Protocol detail, recorded only with Debug Log on; secrets are redacted.")
