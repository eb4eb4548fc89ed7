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

# Display order of a mailbox's folders: the ones a rep cares about first.
ROLE_SEQUENCE = {role: index for index, (role, _label) in enumerate(FOLDER_ROLES, start=1)}


class MailsyncFolder(models.Model):
    """A folder of a synced mailbox and its incremental sync state.

    Folder records mirror the server's folder list (see
    ``mailsync.mailbox._update_folders``): they are created and flagged by
    discovery, never by hand, which is why users may only edit the role and
    the "sync this folder" choice.
    """

    _name = "mailsync.folder"
    _description = "Synced Mailbox Folder"
    _order = "mailbox_id, sequence, path"

    mailbox_id = fields.Many2one("mailsync.mailbox", required=True, ondelete="cascade", index=True)
    user_id = fields.Many2one(related="mailbox_id.user_id", store=True, index=True)
    company_id = fields.Many2one(related="mailbox_id.company_id", store=True)
    path = fields.Char(
        required=True, readonly=True,
        help="Folder name on the server, decoded from modified UTF-7.")
    name = fields.Char(compute="_compute_name", store=True)
    delimiter = fields.Char(size=1, readonly=True)
    flags = fields.Char(
        readonly=True, help="LIST attributes reported by the server, e.g. \\Sent \\HasNoChildren.")
    role = fields.Selection(
        FOLDER_ROLES, required=True, default="other",
        help="What the folder is for. Detected from the server; you may correct it, "
             "and later discoveries keep your choice.")
    role_detected = fields.Selection(
        FOLDER_ROLES, string="Detected Role", readonly=True,
        help="Role found from the SPECIAL-USE attributes or the folder's name at the last discovery.")
    sequence = fields.Integer(compute="_compute_sequence", store=True)
    sync_enabled = fields.Boolean(string="Sync This Folder")
    exists_on_server = fields.Boolean(
        default=True, readonly=True,
        help="Unticked when the folder was not listed by the server at the last discovery "
             "(renamed or deleted). Its sync state is kept in case it comes back.")

    # Incremental sync state (RFC 3501 / 7162)
    uidvalidity = fields.Char(string="UIDVALIDITY", copy=False)
    last_uid = fields.Integer(string="Last UID Seen", copy=False)
    highestmodseq = fields.Char(string="HIGHESTMODSEQ", copy=False)

    # Inbound sync: backfill cursor. The folder's window is scanned newest
    # first, strictly below the poll cursor (last_uid) taken when the backfill
    # started; backfill_cursor is the lowest UID already scanned.
    backfill_todo = fields.Boolean(copy=False, readonly=True)
    backfill_cursor = fields.Integer(copy=False, readonly=True)
    backfill_total = fields.Integer(default=-1, copy=False, readonly=True)
    backfill_scanned = fields.Integer(copy=False, readonly=True)

    _sql_constraints = [
        ("mailbox_path_uniq", "unique(mailbox_id, path)", "A folder appears once per mailbox."),
    ]

    @api.depends("path", "delimiter")
    def _compute_name(self):
        for folder in self:
            path = folder.path or ""
            delimiter = folder.delimiter or "/"
            folder.name = path.rsplit(delimiter, 1)[-1] if delimiter else path

    @api.depends("role")
    def _compute_sequence(self):
        for folder in self:
            folder.sequence = ROLE_SEQUENCE.get(folder.role, len(ROLE_SEQUENCE) + 1)

    @api.depends("mailbox_id.display_name", "path")
    def _compute_display_name(self):
        for folder in self:
            folder.display_name = f"{folder.mailbox_id.display_name}: {folder.path}" if folder.mailbox_id \
                else folder.path
