from odoo import api, fields, models


FOLDER_ROLES = [
    ("inbox", "Inbox"),
    ("sent", "Sent"),
    ("archive", "Archive"),
    ("trash", "Trash"),
    ("drafts", "Drafts"),
    ("junk", "Junk"),
    ("all", "All Mail"),
    ("other", "Other"),
]


class MailsyncFolder(models.Model):
    """A folder of a synced mailbox and its incremental sync state."""

    _name = "mailsync.folder"
    _description = "Synced Mailbox Folder"
    _order = "mailbox_id, sequence, path"

    mailbox_id = fields.Many2one("mailsync.mailbox", required=True, ondelete="cascade", index=True)
    user_id = fields.Many2one(related="mailbox_id.user_id", store=True, index=True)
    company_id = fields.Many2one(related="mailbox_id.company_id", store=True)
    path = fields.Char(required=True, help="Folder name on the server, decoded from modified UTF-7.")
    name = fields.Char(compute="_compute_name", store=True)
    delimiter = fields.Char(size=1)
    role = fields.Selection(FOLDER_ROLES, required=True, default="other")
    sequence = fields.Integer(default=10)
    sync_enabled = fields.Boolean(string="Sync This Folder")
    exists_on_server = fields.Boolean(default=True)

    # Incremental sync state (RFC 3501 / 7162)
    uidvalidity = fields.Char(string="UIDVALIDITY", copy=False)
    last_uid = fields.Integer(string="Last UID Seen", copy=False)
    highestmodseq = fields.Char(string="HIGHESTMODSEQ", copy=False)

    _sql_constraints = [
        ("mailbox_path_uniq", "unique(mailbox_id, path)", "A folder appears once per mailbox."),
    ]

    @api.depends("path", "delimiter")
    def _compute_name(self):
        for folder in self:
            path = folder.path or ""
            delimiter = folder.delimiter or "/"
            folder.name = path.rsplit(delimiter, 1)[-1] if delimiter else path
