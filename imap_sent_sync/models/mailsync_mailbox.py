from odoo import api, fields, models


SECURITY_SELECTION = [
    ("ssl", "SSL/TLS"),
    ("starttls", "STARTTLS"),
    ("none", "None (unencrypted)"),
]


class MailsyncMailbox(models.Model):
    """One user's IMAP/SMTP mailbox connected to Odoo.

    The mailbox holds the endpoints and the (encrypted) credential; the
    protocol work itself lives in the pure-Python ``mailsync`` package.
    """

    _name = "mailsync.mailbox"
    _description = "Synced Mailbox"
    _inherit = ["mail.thread"]
    _order = "name, id"

    # Identity
    name = fields.Char(string="Mailbox Name", required=True, tracking=True)
    email = fields.Char(string="Email Address", required=True, tracking=True)
    user_id = fields.Many2one(
        "res.users", string="Owner", required=True, index=True, tracking=True,
        default=lambda self: self.env.user, ondelete="cascade",
        help="The user whose mail this is. A shared mailbox still has one owner.")
    is_shared = fields.Boolean(string="Shared Mailbox")
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True)
    active = fields.Boolean(default=True)
    provider = fields.Selection(selection="_selection_provider", default="custom", required=True)

    # IMAP endpoint
    imap_host = fields.Char(string="IMAP Server")
    imap_port = fields.Integer(string="IMAP Port", default=993)
    imap_security = fields.Selection(SECURITY_SELECTION, string="IMAP Security", default="ssl", required=True)
    # SMTP endpoint
    smtp_host = fields.Char(string="SMTP Server")
    smtp_port = fields.Integer(string="SMTP Port", default=465)
    smtp_security = fields.Selection(SECURITY_SELECTION, string="SMTP Security", default="ssl", required=True)
    allow_unencrypted = fields.Boolean(
        string="I understand the password travels unencrypted",
        help="Required before 'None' may be chosen as security for IMAP or SMTP.")
    ca_pem = fields.Text(
        string="Custom CA (PEM)",
        help="Trust this certificate authority in addition to the system ones, "
             "e.g. for a self-hosted server with a private CA. Certificates are always verified.")

    # Credentials: the secret itself is write-only, see the vault.
    login = fields.Char(help="Defaults to the email address.")
    auth_method = fields.Selection(
        [("password", "Password"), ("app_password", "App Password")],
        default="app_password", required=True)

    # Status
    state = fields.Selection([
        ("draft", "Draft"),
        ("connected", "Connected"),
        ("paused", "Paused"),
        ("error", "Error"),
        ("disconnected", "Disconnected"),
    ], default="draft", required=True, tracking=True, copy=False)
    last_error = fields.Text(copy=False, readonly=True)
    debug_logging = fields.Boolean(
        string="Debug Log",
        help="Record protocol detail in the sync log (secrets are always redacted).")

    folder_ids = fields.One2many("mailsync.folder", "mailbox_id", string="Folders")
    log_ids = fields.One2many("mailsync.log", "mailbox_id", string="Log")

    @api.model
    def _selection_provider(self):
        from ..mailsync import presets
        return [(key, preset.label) for key, preset in presets.PRESETS.items()]
