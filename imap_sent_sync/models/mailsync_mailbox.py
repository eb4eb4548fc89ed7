import logging

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from ..mailsync import vault

_logger = logging.getLogger(__name__)


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
    # Credentials
    # Like res.users.password: `secret` can be written but always reads empty.
    # The Fernet ciphertext lives in the column secret_encrypted, created by
    # init() and deliberately not an ORM field, so no read, export, onchange or
    # ir.model.fields path can reach it; only _get_secret() decrypts it. Never
    # tracked: the chatter must not carry it.
    secret = fields.Char(
        string="Password", compute="_compute_secret", inverse="_inverse_secret", copy=False,
        help="The (app) password for IMAP and SMTP. It is stored encrypted and never shown "
             "again; leave empty to keep the saved one.")
    has_secret = fields.Boolean(string="Password Saved", readonly=True, copy=False)
    secret_set_date = fields.Datetime(string="Password Saved On", readonly=True, copy=False)

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

    # ------------------------------------------------------------
    # Credentials
    # ------------------------------------------------------------

    def init(self):
        super().init()
        # The ciphertext column is not an ORM field (see the `secret` field):
        # the ORM neither creates nor drops it, so it is made here.
        self.env.cr.execute(
            "ALTER TABLE mailsync_mailbox ADD COLUMN IF NOT EXISTS secret_encrypted VARCHAR")

    def _compute_secret(self):
        # Write-only for everyone, owner and managers included.
        for mailbox in self:
            mailbox.secret = False

    def _inverse_secret(self):
        # Read every value first: _set_secret() drops them from the cache.
        to_set = [(mailbox, mailbox.secret) for mailbox in self]
        for mailbox, secret in to_set:
            # Empty means "keep": the web client sends False for an untouched
            # password field. Removing the secret is what Disconnect does.
            if secret:
                mailbox._set_secret(secret)
        self.invalidate_recordset(["secret"])

    @api.model
    def action_rotate_secrets(self):
        """Re-encrypt every stored mailbox secret with the primary key.

        For key rotation: configure the new key first and the old one after it,
        run this, then remove the old key. Covers archived mailboxes and every
        company (raw SQL on purpose: a secret left on the old key would become
        undecryptable once that key is removed). Each re-encrypted or failing
        mailbox gets a "credentials" line in its sync log; no secret is logged.
        """
        if not self.env.su and not self.env.user.has_group("imap_sent_sync.group_mailsync_manager"):
            raise AccessError(_("Only Email Sync managers can re-encrypt the mailbox passwords."))
        box = self.env["mailsync.vault"]._get_vault()
        self.flush_model(["has_secret", "secret_set_date"])
        cr = self.env.cr
        # Lock the rows so a password saved meanwhile is not overwritten by
        # the re-encryption of its predecessor.
        cr.execute("""
            SELECT id, secret_encrypted FROM mailsync_mailbox
             WHERE secret_encrypted IS NOT NULL
             ORDER BY id
               FOR UPDATE
        """)
        rotated, failed, current = self.browse(), self.browse(), 0
        for mailbox_id, token in cr.fetchall():
            if box.is_current(token):
                current += 1
                continue
            try:
                new_token = box.rotate(token)
            except vault.VaultDecryptError:
                failed += self.browse(mailbox_id)
                continue
            cr.execute("UPDATE mailsync_mailbox SET secret_encrypted = %s WHERE id = %s",
                       (new_token, mailbox_id))
            rotated += self.browse(mailbox_id)
        for mailbox in rotated:
            mailbox._log_credentials("success", _(
                "Password re-encrypted with the primary key (key id %(key_id)s) by %(user)s.",
                key_id=box.primary_key_id, user=self.env.user.name))
        for mailbox in failed:
            mailbox._log_credentials("failure", _(
                "Password could not be re-encrypted: none of the configured keys decrypts it. "
                "Configure the key that saved it (after the primary key), or enter the password "
                "again."))
        _logger.info("Mailbox secrets re-encrypted with key id %s by uid %s: %d re-encrypted, "
                     "%d already current, %d undecryptable (mailbox ids %s)",
                     box.primary_key_id, self.env.uid, len(rotated), current, len(failed), failed.ids)
        message = _("%(rotated)s password(s) re-encrypted with the primary key (key id %(key_id)s), "
                    "%(current)s already up to date.",
                    rotated=len(rotated), current=current, key_id=box.primary_key_id)
        if failed:
            message += " " + _(
                "%(count)s could not be decrypted with any configured key: %(names)s. Keep the old "
                "key configured and run this again, or enter those passwords again.",
                count=len(failed), names=", ".join(failed.sudo().mapped("display_name")))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Re-encrypt mailbox passwords"),
                "message": message,
                "type": "warning" if failed else "success",
                "sticky": bool(failed),
            },
        }

    def _get_secret(self):
        """Return the clear secret of this mailbox, for the protocol code only
        (building mailsync Endpoints). The only way to obtain it: never return
        it to a client, never log it, never put it in an exception message.

        Raises UserError when no secret is saved, or when no configured key can
        decrypt it (the message tells the admin how to fix the keys).
        """
        self.ensure_one()
        # Raw SQL reads past access rules by design (internal sudo): the
        # callers are the sync and the connection test acting for the owner.
        self.env.cr.execute("SELECT secret_encrypted FROM mailsync_mailbox WHERE id = %s", (self.id,))
        row = self.env.cr.fetchone()
        name = self.sudo().display_name
        if not row or not row[0]:
            raise UserError(_(
                "No password is saved for the mailbox %s. Enter it in the mailbox form.", name))
        return self.env["mailsync.vault"]._decrypt(row[0], label=_("the mailbox %s", name))

    def _set_secret(self, secret):
        """Encrypt and store ``secret`` (non-empty str) on these mailboxes.

        Callers have checked write access (the `secret` inverse runs inside
        create/write). Each mailbox gets its own token (Fernet IVs are random).
        """
        if not secret or not isinstance(secret, str):
            raise UserError(_("The mailbox password cannot be empty."))
        encrypt = self.env["mailsync.vault"]._encrypt
        self.flush_recordset(["has_secret", "secret_set_date"])
        replaced = self.sudo().filtered("has_secret")
        for mailbox in self:
            self.env.cr.execute("""
                UPDATE mailsync_mailbox
                   SET secret_encrypted = %s, has_secret = TRUE,
                       secret_set_date = NOW() AT TIME ZONE 'UTC'
                 WHERE id = %s
            """, (encrypt(secret), mailbox.id))
        self.invalidate_recordset(["secret", "has_secret", "secret_set_date"])
        for mailbox in self:
            message = (_("Password replaced by %s.", self.env.user.name) if mailbox in replaced
                       else _("Password saved by %s.", self.env.user.name))
            mailbox._log_credentials("info", message)

    def _clear_secret(self):
        """Forget the stored secret (Disconnect). Server mail is untouched."""
        if not self:
            return
        self.flush_recordset(["has_secret", "secret_set_date"])
        self.env.cr.execute("""
            UPDATE mailsync_mailbox
               SET secret_encrypted = NULL, has_secret = FALSE, secret_set_date = NULL
             WHERE id IN %s AND secret_encrypted IS NOT NULL
         RETURNING id
        """, (tuple(self.ids),))
        cleared = self.browse([row[0] for row in self.env.cr.fetchall()])
        self.invalidate_recordset(["secret", "has_secret", "secret_set_date"])
        for mailbox in cleared:
            mailbox._log_credentials("info", _("Password removed by %s.", self.env.user.name))

    def _log_credentials(self, outcome, message):
        # A "credentials" line in the sync log (audit trail): who did what,
        # never the secret itself.
        self.ensure_one()
        self.env["mailsync.log"]._record(self, "credentials", outcome, message)
