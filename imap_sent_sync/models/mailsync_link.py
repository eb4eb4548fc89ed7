from odoo import api, fields, models


class MailsyncLink(models.Model):
    """One server copy of an imported email and the chatter entries it maps to.

    A link exists only for mail that matched a contact: private mail leaves no
    row here. The same email seen in INBOX and Sent, in Gmail's All Mail and a
    label, or in two reps' mailboxes gets one link per copy, all pointing at
    the same chatter entries (one ``mail.message`` per record it belongs to).
    Propagation (delete/archive, both ways) works from these links.
    """

    _name = "mailsync.link"
    _description = "Synced Message Copy"
    _order = "id desc"
    _rec_name = "message_id"

    mailbox_id = fields.Many2one("mailsync.mailbox", required=True, ondelete="cascade", index=True)
    folder_id = fields.Many2one("mailsync.folder", required=True, ondelete="cascade", index=True)
    user_id = fields.Many2one(related="mailbox_id.user_id", store=True, index=True)
    company_id = fields.Many2one(related="mailbox_id.company_id", store=True)
    uid = fields.Integer(
        string="UID", index=True,
        help="IMAP UID of the copy in its folder (for the folder's current UIDVALIDITY); "
             "empty once the copy is no longer found on the server.")
    message_id = fields.Char(
        string="Message-ID", required=True, index=True,
        help="Normalized Message-ID (without angle brackets); a synthetic id for mail "
             "that has none.")
    mail_message_ids = fields.Many2many(
        "mail.message", "mailsync_link_mail_message_rel", "link_id", "mail_message_id",
        string="Chatter Entries")
    state = fields.Selection([
        ("pending", "To Import"),
        ("synced", "Synced"),
        ("archived", "Archived"),
        ("deleted", "Deleted"),
    ], required=True, default="synced", index=True)
    date = fields.Datetime(help="Date header of the email (arrival date when it has none).")
    size = fields.Integer(help="Size of the copy on the server (RFC822.SIZE), in bytes.")
    parent_ref = fields.Char(
        string="Replies To", index="btree_not_null",
        help="Message-ID this email answers (In-Reply-To, else the last References entry), "
             "so that its chatter entries get their parent when it is imported later.")
    # Backfill plan (state "pending"): the matched partners and the number of
    # records found by the header scan, and the mail.message ids reserved for
    # this email's chatter entries, so that entries imported newest first still
    # get ids in date order (the chatter sorts by id).
    planned = fields.Boolean(
        copy=False, help="Found by a backfill scan (rather than by polling); with create_date it "
                         "tells which emails the current backfill found.")
    partner_ids_json = fields.Json(string="Matched Contacts (plan)", copy=False)
    target_count = fields.Integer(string="Records (plan)", copy=False)
    reserved_ids = fields.Json(string="Reserved Message Ids", copy=False)

    _sql_constraints = [
        # NULL uids (copies gone from the server) are distinct for PostgreSQL.
        ("folder_uid_uniq", "unique(folder_id, uid)", "A server copy is linked once."),
    ]

    def init(self):
        # The importer looks links up by (mailbox, Message-ID) for every batch.
        self.env.cr.execute("""
            CREATE INDEX IF NOT EXISTS mailsync_link_mailbox_message_id_idx
                ON mailsync_link (mailbox_id, message_id)
        """)

    @api.depends("message_id", "folder_id")
    def _compute_display_name(self):
        for link in self:
            link.display_name = "%s (%s #%s)" % (link.message_id, link.folder_id.path or "", link.uid or "-")
