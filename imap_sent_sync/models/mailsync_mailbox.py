import html
import logging
import time
from datetime import timedelta

from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..mailsync import presets, vault
from ..mailsync.errors import explain
from ..mailsync.endpoint import Endpoint
from ..mailsync.redact import redact
from .mailsync_log import capture_protocol_log
from .mailsync_outbox import (  # Outbound
    CONTENT_SELECTION, ERROR_POLICY_SELECTION, FREQUENCY_SELECTION)
from .mailsync_sync import FREQUENCY_MINUTES

_logger = logging.getLogger(__name__)


SECURITY_SELECTION = [
    ("ssl", "SSL/TLS"),
    ("starttls", "STARTTLS"),
    ("none", "None (unencrypted)"),
]

# Roles whose folders are synced by default when first discovered: the mail a
# rep exchanges with customers lives there; Trash, Junk, Drafts and Gmail's
# All Mail would only import noise or duplicates.
DEFAULT_SYNC_ROLES = ("inbox", "sent")

# Odoo's own default for network operations is too long for an interactive
# button; 20 s still covers slow providers (see Settings to change it).
DEFAULT_TIMEOUT = 20.0

# Failed connections in a row (inbound or Sent copies) after which a mailbox
# shows as failing rather than retrying.
HEALTH_FAILING_AFTER = 3


class MailsyncMailbox(models.Model):
    """One user's IMAP/SMTP mailbox connected to Odoo.

    The mailbox holds the endpoints and the (encrypted) credential; the
    protocol work itself lives in the pure-Python ``mailsync`` package.
    """

    _name = "mailsync.mailbox"
    _description = "Synced Mailbox"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "name, id"

    # Identity
    name = fields.Char(
        string="Mailbox Name", required=True, tracking=True,
        compute="_compute_name", store=True, readonly=False, precompute=True,
        help="How this mailbox is shown in Odoo. Defaults to the email address.")
    email = fields.Char(string="Email Address", required=True, tracking=True)
    user_id = fields.Many2one(
        "res.users", string="Owner", required=True, index=True, tracking=True,
        default=lambda self: self.env.user, ondelete="cascade",
        help="The user whose mail this is. A shared mailbox still has one owner.")
    is_shared = fields.Boolean(string="Shared Mailbox")
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True)
    active = fields.Boolean(default=True)
    provider = fields.Selection(
        selection="_selection_provider", string="Provider", default="custom", required=True,
        help="Choosing a provider fills in its servers. The email address suggests one.")
    provider_hint = fields.Text(
        compute="_compute_provider_hint",
        help="How to get an app password and what to know about this provider.")

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
    login = fields.Char(
        compute="_compute_login", store=True, readonly=False, precompute=True,
        help="User name for IMAP and SMTP. Defaults to the email address.")
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

    # Last connection test, one entry per step (see mailsync.diagnostics). Kept
    # as JSON on the mailbox rather than as child records: it is replaced as a
    # whole by every test and only ever shown, never searched.
    connection_report = fields.Json(copy=False, readonly=True)
    connection_report_html = fields.Html(
        string="Connection Test Report", compute="_compute_connection_report_html",
        sanitize=True)
    connection_tested_at = fields.Datetime(string="Last Tested", copy=False, readonly=True)

    folder_ids = fields.One2many("mailsync.folder", "mailbox_id", string="Folders")
    folder_sync_count = fields.Integer(
        string="Synced Folders", compute="_compute_folder_sync_count")
    log_ids = fields.One2many("mailsync.log", "mailbox_id", string="Log")

    # Inbound sync: mail with contacts into the chatter (see mailsync.sync).
    # Options default to the Settings values when the mailbox is created.
    sync_frequency = fields.Selection([
        ("5min", "Every 5 minutes"),
        ("15min", "Every 15 minutes"),
        ("60min", "Hourly"),
        ("manual", "Manual (Sync Now only)"),
    ], string="Check for New Mail", required=True,
        default=lambda self: self._inbound_default("sync_frequency", "15min"))
    backfill_days = fields.Integer(
        string="Backfill Window (days)",
        default=lambda self: int(self._inbound_default("backfill_days", 60) or 0),
        help="How far back the first import goes: mail received in the last N days.")
    import_content = fields.Selection(
        [("full", "Full content"), ("text", "Text only"), ("headers", "Headers only")],
        string="Imported Content", required=True,
        default=lambda self: self._inbound_default("import_content", "full"))
    import_attachments = fields.Boolean(
        string="Import Attachments",
        default=lambda self: self._inbound_default("import_attachments", "keep") != "drop")
    import_max_attachment_mb = fields.Integer(
        string="Max Attachment Size (MB)",
        default=lambda self: int(self._inbound_default("import_max_attachment_mb", 25) or 0),
        help="Larger attachments are left out; the chatter entry lists them. 0 = no limit.")
    import_internal = fields.Boolean(
        string="Include Internal Mail",
        default=lambda self: bool(self._inbound_default("import_internal", False)),
        help="Also import mail exchanged with internal users (colleagues), on their contact.")
    sync_requested = fields.Boolean(copy=False, readonly=True)
    last_poll_at = fields.Datetime(string="Last Checked", copy=False, readonly=True)
    sync_failures = fields.Integer(copy=False, readonly=True)
    sync_retry_at = fields.Datetime(string="Retry At", copy=False, readonly=True)
    sync_error = fields.Text(string="Last Sync Error", copy=False, readonly=True)
    backfill_state = fields.Selection([
        ("none", "Not Started"),
        ("scanning", "Checking Messages"),
        ("importing", "Importing"),
        ("done", "Done"),
    ], string="Backfill", default="none", required=True, copy=False, readonly=True)
    backfill_since = fields.Date(copy=False, readonly=True)
    backfill_total = fields.Integer(string="Messages in Window", copy=False, readonly=True)
    backfill_scanned = fields.Integer(string="Messages Checked", copy=False, readonly=True)
    # Counted from the links, not stored: several workers import one mailbox at
    # once and none of them writes the mailbox row while doing so.
    backfill_matched = fields.Integer(string="Messages With Contacts",
                                      compute="_compute_backfill_counts")
    backfill_imported = fields.Integer(string="Messages Imported",
                                       compute="_compute_backfill_counts")
    backfill_progress = fields.Float(compute="_compute_backfill_progress")
    backfill_started_at = fields.Datetime(copy=False, readonly=True)
    backfill_finished_at = fields.Datetime(copy=False, readonly=True)
    preview_total = fields.Integer(string="Preview: Messages in Window", copy=False, readonly=True)
    preview_matched = fields.Integer(string="Preview: With Contacts", copy=False, readonly=True)
    preview_complete = fields.Boolean(copy=False, readonly=True)
    preview_date = fields.Datetime(string="Previewed On", copy=False, readonly=True)
    link_count = fields.Integer(string="Synced Emails", compute="_compute_link_count")

    # Outbound: mail sent from Odoo goes out through this mailbox's SMTP (a
    # linked ir.mail_server) and a copy is filed in its Sent folder (see
    # mailsync.outbox). Defaults come from Settings.
    mail_server_id = fields.Many2one(
        "ir.mail_server", string="Outgoing Mail Server", readonly=True, copy=False,
        help="Created when the mailbox is connected: Odoo sends mail from this address "
             "through the mailbox's SMTP server. Its password stays encrypted in the mailbox.")
    sent_copy_enabled = fields.Boolean(
        string="Save Sent Copies", default=True,
        help="File a copy of every email sent from Odoo through this mailbox in its Sent "
             "folder, so phone and desktop clients show it too.")
    sent_copy_frequency = fields.Selection(
        FREQUENCY_SELECTION, string="Save Copies", required=True,
        default=lambda self: self.env["mailsync.outbox"]._global_option("frequency"))
    sent_copy_content = fields.Selection(
        CONTENT_SELECTION, string="Copy Content", required=True,
        default=lambda self: self.env["mailsync.outbox"]._global_option("content"))
    sent_copy_attachments = fields.Boolean(
        string="Keep Attachments",
        default=lambda self: self.env["mailsync.outbox"]._global_option("attachments"))
    sent_copy_max_attachment_mb = fields.Float(
        string="Largest Attachment Kept (MB)",
        default=lambda self: self.env["mailsync.outbox"]._global_option("max_attachment_mb"),
        help="Larger attachments are replaced by a short note in the copy. 0: no limit.")
    sent_copy_internal = fields.Boolean(
        string="Copy Internal Notifications",
        default=lambda self: self.env["mailsync.outbox"]._global_option("internal"),
        help="Also file the notifications Odoo emails to colleagues (followers).")
    sent_copy_mass_mailing = fields.Boolean(
        string="Copy Mass Mailings",
        default=lambda self: self.env["mailsync.outbox"]._global_option("mass_mailing"))
    sent_copy_error_policy = fields.Selection(
        [("default", "Global Setting")] + ERROR_POLICY_SELECTION, string="When Saving Fails",
        default="default", required=True,
        help="Retry: try again with growing delays, then notify you. Skip: give up on that "
             "copy at once (logged). Either way sending is never blocked, and copies wait "
             "while the server is unreachable.")
    sent_copy_max_attempts = fields.Integer(
        string="Max Attempts", help="Attempts per copy before giving up. 0: global setting.")
    sent_copy_failures = fields.Integer(
        string="Consecutive Connection Failures", readonly=True, copy=False)
    sent_folder_id = fields.Many2one(
        "mailsync.folder", string="Sent Copies Folder", copy=False,
        domain="[('mailbox_id', '=', id)]",
        help="Empty: the mailbox's Sent folder (a top-level \"Sent\" is created when the "
             "server has none).")
    sent_folder_reply_id = fields.Many2one(
        "mailsync.folder", string="Folder for Replies", copy=False,
        domain="[('mailbox_id', '=', id)]")
    sent_folder_new_id = fields.Many2one(
        "mailsync.folder", string="Folder for New Conversations", copy=False,
        domain="[('mailbox_id', '=', id)]")
    sent_folder_internal_id = fields.Many2one(
        "mailsync.folder", string="Folder for Internal Notifications", copy=False,
        domain="[('mailbox_id', '=', id)]")
    outbox_ids = fields.One2many("mailsync.outbox", "mailbox_id", string="Sent Copies")
    outbox_queued_count = fields.Integer(compute="_compute_outbox_counts")
    outbox_failed_count = fields.Integer(compute="_compute_outbox_counts")

    # Propagation: the four delete/archive rules (defaults: the company's, see
    # res.company) and the queue of changes made on the server (see
    # mailsync.server.action and models/mailsync_propagation.py).
    propagate_delete_to_odoo = fields.Boolean(
        string="Delete in Odoo when deleted in the mailbox", tracking=True,
        default=lambda self: self.env.company.mailsync_delete_to_odoo,
        help="Mail deleted in this mailbox (from any mail app) is deleted from Odoo too. Off: "
             "Odoo keeps the history and only records that the server copy is gone.")
    propagate_delete_to_mailbox = fields.Boolean(
        string="Delete in the mailbox when deleted in Odoo", tracking=True,
        default=lambda self: self.env.company.mailsync_delete_to_mailbox,
        help="An email deleted in Odoo is moved to this mailbox's Trash (never erased).")
    propagate_archive_to_odoo = fields.Boolean(
        string="Archive in Odoo when archived in the mailbox", tracking=True,
        default=lambda self: self.env.company.mailsync_archive_to_odoo,
        help="Mail archived in this mailbox is hidden from the chatter (kept and searchable).")
    propagate_archive_to_mailbox = fields.Boolean(
        string="Archive in the mailbox when archived in Odoo", tracking=True,
        default=lambda self: self.env.company.mailsync_archive_to_mailbox,
        help="An email archived in Odoo is moved from the Inbox to the Archive folder "
             "(Gmail: out of the Inbox, still in All Mail).")
    retain_history = fields.Boolean(related="company_id.mailsync_retain_history")
    server_action_ids = fields.One2many("mailsync.server.action", "mailbox_id",
                                        string="Mailbox Changes")
    server_action_queued_count = fields.Integer(compute="_compute_server_action_counts")
    server_action_failed_count = fields.Integer(compute="_compute_server_action_counts")

    # Health: what an admin watching Email Sync > Mailboxes needs at a glance,
    # from the state, the failures in a row and the two queues.
    health = fields.Selection([
        ("ok", "OK"),
        ("warning", "Warning"),
        ("failing", "Failing"),
        ("off", "Not Syncing"),
    ], compute="_compute_health")
    health_summary = fields.Char(string="Health Details", compute="_compute_health")

    @api.constrains("propagate_delete_to_odoo", "company_id")
    def _check_propagate_delete_to_odoo(self):
        for mailbox in self:
            if mailbox.propagate_delete_to_odoo and mailbox.company_id.mailsync_retain_history:
                raise ValidationError(_(
                    "%(company)s retains email history: \"Delete in Odoo when deleted in the "
                    "mailbox\" cannot be switched on for %(mailbox)s.",
                    company=mailbox.company_id.name, mailbox=mailbox.display_name))

    # ------------------------------------------------------------
    # Compute and onchange
    # ------------------------------------------------------------

    @api.model
    def _selection_provider(self):
        return [(key, preset.label) for key, preset in presets.PRESETS.items()]

    @api.depends("email")
    def _compute_name(self):
        # Follow the address while the name is empty or still an address (the
        # one filled in before); a name the user chose ("Sales inbox") stays.
        for mailbox in self:
            email = (mailbox.email or "").strip()
            if email and (not mailbox.name or "@" in mailbox.name):
                mailbox.name = email

    @api.depends("email")
    def _compute_login(self):
        # Nearly every provider logs in with the address. A login that is not
        # an address (self-hosted "jdoe") is the user's choice and stays.
        for mailbox in self:
            email = (mailbox.email or "").strip()
            if email and (not mailbox.login or "@" in mailbox.login):
                mailbox.login = email

    @api.depends("provider")
    def _compute_provider_hint(self):
        for mailbox in self:
            preset = presets.PRESETS.get(mailbox.provider or "custom")
            parts = [getattr(preset, "app_password_hint", None), getattr(preset, "notes", None)]
            mailbox.provider_hint = "\n\n".join(part for part in parts if part) or False

    @api.depends("connection_report")
    def _compute_connection_report_html(self):
        for mailbox in self:
            mailbox.connection_report_html = self._render_connection_report(mailbox.connection_report)

    @api.depends("folder_ids.sync_enabled")
    def _compute_folder_sync_count(self):
        counts = dict(self.env["mailsync.folder"]._read_group(
            [("mailbox_id", "in", self.ids), ("sync_enabled", "=", True)],
            ["mailbox_id"], ["__count"]))
        for mailbox in self:
            mailbox.folder_sync_count = counts.get(mailbox._origin, 0)

    @api.onchange("provider")
    def _onchange_provider(self):
        # "Custom" keeps whatever was typed: switching to it must not wipe a
        # configuration the user is adapting from a preset.
        if self.provider and self.provider != "custom":
            self._apply_preset(presets.PRESETS[self.provider])

    @api.onchange("email")
    def _onchange_email_suggest_provider(self):
        email = (self.email or "").strip()
        key = email and presets.suggest_preset(email)
        if not key or key == "custom" or key == self.provider:
            return
        # Suggest only over a configuration the user has not made their own:
        # Custom (or nothing) chosen, or a preset left exactly as it filled the form.
        current = presets.PRESETS.get(self.provider) if self.provider not in (False, "custom") else None
        if current is None or self._matches_preset(current):
            self.provider = key
            self._apply_preset(presets.PRESETS[key])

    def _apply_preset(self, preset):
        self.update({
            "imap_host": preset.imap_host,
            "imap_port": preset.imap_port,
            "imap_security": preset.imap_security,
            "smtp_host": preset.smtp_host,
            "smtp_port": preset.smtp_port,
            "smtp_security": preset.smtp_security,
        })

    def _matches_preset(self, preset):
        return (self.imap_host, self.imap_port, self.imap_security,
                self.smtp_host, self.smtp_port, self.smtp_security) == (
            preset.imap_host, preset.imap_port, preset.imap_security,
            preset.smtp_host, preset.smtp_port, preset.smtp_security)

    # ------------------------------------------------------------
    # Constraints
    # ------------------------------------------------------------

    @api.constrains("imap_security", "smtp_security", "allow_unencrypted")
    def _check_unencrypted(self):
        for mailbox in self:
            if "none" in (mailbox.imap_security, mailbox.smtp_security) and not mailbox.allow_unencrypted:
                raise ValidationError(_(
                    "%(mailbox)s: security \"None\" sends the password and every message "
                    "unencrypted over the network. Choose SSL/TLS or STARTTLS; only if the "
                    "server really offers neither, tick \"I understand the password travels "
                    "unencrypted\".", mailbox=mailbox.display_name))

    @api.constrains("imap_port", "smtp_port")
    def _check_ports(self):
        for mailbox in self:
            for protocol, port in (("IMAP", mailbox.imap_port), ("SMTP", mailbox.smtp_port)):
                if not 1 <= port <= 65535:
                    raise ValidationError(_(
                        "%(mailbox)s: the %(protocol)s port must be between 1 and 65535 "
                        "(usual: IMAP 993 or 143, SMTP 465 or 587).",
                        mailbox=mailbox.display_name, protocol=protocol))

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    def write(self, vals):
        # The record rules let a user edit their own mailboxes; without this, a
        # rep could hand a mailbox (and its credential) over to a colleague.
        if "user_id" in vals and not self.env.su and not self.env.user.has_group(
                "imap_sent_sync.group_mailsync_manager"):
            if any(mailbox.user_id.id != vals["user_id"] for mailbox in self):
                raise AccessError(_("Only an Email Sync manager can change the owner of a mailbox."))
        result = super().write(vals)
        # Outbound: keep the linked outgoing mail server in step with the mailbox.
        if self._outbound_server_fields.intersection(vals):
            self._outbound_sync_mail_server()
        return result

    # ------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------

    def action_test_connection(self):
        """Run every connection-test step, store the report, update state and folders."""
        self.ensure_one()
        report = self._run_connection_test()
        if report.ok:
            selected = self.folder_ids.filtered("sync_enabled").mapped("name")
            return self._notification(
                "success", _("Connection OK"),
                _("Every step passed. %(count)s folders found; selected for sync: %(selected)s.",
                  count=len(self.folder_ids.filtered("exists_on_server")),
                  selected=", ".join(selected) or _("none")))
        failed = self._first_failed_step(self.connection_report)
        return self._notification(
            "danger", _("Connection test failed"),
            "%s: %s" % (failed["label"], failed["message"]) if failed else self.last_error,
            sticky=True)

    def action_refresh_folders(self):
        """List the server's folders again and update the folder records."""
        self.ensure_one()
        self.check_access("write")
        from ..mailsync import folders as mailsync_folders
        from ..mailsync import imap as mailsync_imap
        from ..mailsync.errors import MailsyncError

        endpoint = self._get_imap_endpoint()
        started = time.monotonic()
        with capture_protocol_log(self.debug_logging, [endpoint.secret]) as protocol_lines:
            try:
                with mailsync_imap.imap_session(endpoint) as client:
                    folder_infos = mailsync_folders.list_folders(client)
            except MailsyncError as error:
                folder_infos, failure = None, error
        duration_ms = int((time.monotonic() - started) * 1000)
        if folder_infos is None:
            message = explain(failure)
            self.env["mailsync.log"]._record(
                self, "folders", "failure", message, duration_ms=duration_ms,
                detail=protocol_lines, secrets=[endpoint.secret])
            return self._notification("danger", _("Could not list the folders"), message, sticky=True)
        created, vanished = self._update_folders(folder_infos)
        message = _("%(count)s folders listed: %(created)s new, %(vanished)s no longer on the server.",
                    count=len(folder_infos), created=created, vanished=vanished)
        self.env["mailsync.log"]._record(
            self, "folders", "success", message, duration_ms=duration_ms,
            detail=protocol_lines, secrets=[endpoint.secret])
        return self._notification("success", _("Folders refreshed"), message)

    # ------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------

    def _get_network_timeout(self):
        value = self.env["ir.config_parameter"].sudo().get_param("imap_sent_sync.network_timeout")
        try:
            return float(value) if value else DEFAULT_TIMEOUT
        except ValueError:
            return DEFAULT_TIMEOUT

    def _get_login(self):
        return (self.login or self.email or "").strip()

    def _get_endpoint(self, protocol):
        from ..mailsync.errors import MailsyncError

        self.ensure_one()
        host = self[f"{protocol}_host"]
        if not (host or "").strip():
            raise UserError(_(
                "%(mailbox)s: enter the %(protocol)s server first (or choose your provider).",
                mailbox=self.display_name, protocol=protocol.upper()))
        if not self.has_secret:
            raise UserError(_(
                "%(mailbox)s: enter the password first. For most providers (Gmail, Outlook, "
                "Yahoo, iCloud...) this is an app password, not your normal password.",
                mailbox=self.display_name))
        try:
            return Endpoint(
                host=host,
                port=self[f"{protocol}_port"],
                security=self[f"{protocol}_security"],
                login=self._get_login(),
                secret=self._get_secret(),
                ca_pem=self.ca_pem or None,
                timeout=self._get_network_timeout(),
                allow_unencrypted=self.allow_unencrypted,
            )
        except MailsyncError as error:
            raise UserError("%s: %s" % (self.display_name, explain(error))) from None

    def _get_imap_endpoint(self):
        """The mailbox's IMAP server as a ``mailsync`` Endpoint, secret included.

        Raises UserError when the mailbox is not configured enough to connect.
        The Endpoint holds the clear secret: keep it in local variables only.
        """
        return self._get_endpoint("imap")

    def _get_smtp_endpoint(self):
        """The mailbox's SMTP submission server as a ``mailsync`` Endpoint (see above)."""
        return self._get_endpoint("smtp")

    def _run_connection_test(self):
        """Run ``mailsync.diagnostics`` and record everything it found.

        Never raises on a failed step: the report, the state and the log line
        must be committed so the user sees why it failed.
        """
        self.ensure_one()
        self.check_access("write")
        from ..mailsync import diagnostics

        imap = self._get_imap_endpoint()
        # SMTP is optional: a mailbox can be used for inbound sync only; its
        # steps then show as skipped.
        smtp = self._get_smtp_endpoint() if (self.smtp_host or "").strip() else None
        secrets = [imap.secret]
        preset_key = self.provider if self.provider != "custom" else None
        started = time.monotonic()
        with capture_protocol_log(self.debug_logging, secrets) as protocol_lines:
            report = diagnostics.run_connection_test(imap, smtp, preset_key=preset_key)
        duration_ms = int((time.monotonic() - started) * 1000)

        steps = [{
            "key": step.key,
            "label": step.label,
            "ok": step.ok,
            "message": redact(step.message or "", secrets),
            "hint": redact(step.hint or "", secrets),
            "duration_ms": int(step.duration_ms or 0),
            "reason": getattr(step, "reason", None),
        } for step in report.steps]
        folders_listed = any(step.key == "imap_folders" and step.ok for step in report.steps)
        if folders_listed:
            # Only a successful listing says anything about which folders exist;
            # an earlier failure must not mark every known folder as vanished.
            self._update_folders(report.folders)

        failed = self._first_failed_step({"steps": steps})
        vals = {
            "connection_report": {"ok": report.ok, "steps": steps},
            "connection_tested_at": fields.Datetime.now(),
            "last_error": False if report.ok else " ".join(
                filter(None, [failed and failed["message"], failed and failed["hint"]])),
        }
        # A paused mailbox stays paused: testing it must not restart its sync.
        if self.state != "paused":
            vals["state"] = "connected" if report.ok else "error"
        self.write(vals)

        if report.ok:
            message = _("All steps passed (%(count)s folders).", count=len(report.folders))
        else:
            message = _("Failed at \"%(step)s\": %(error)s",
                        step=failed["label"] if failed else "?", error=vals["last_error"])
        detail = None
        if self.debug_logging:
            detail = [
                "%s %s (%s ms): %s %s" % (
                    {True: "OK  ", False: "FAIL", None: "SKIP"}[step["ok"]], step["key"],
                    step["duration_ms"], step["message"], step["hint"])
                for step in steps
            ] + [
                "IMAP capabilities: %s" % " ".join(getattr(report, "capabilities", ()) or ()),
                "SMTP features: %s" % " ".join(getattr(report, "smtp_features", ()) or ()),
                "",
            ] + protocol_lines
        self.env["mailsync.log"]._record(
            self, "connection_test", "success" if report.ok else "failure", message,
            duration_ms=duration_ms, detail=detail, secrets=secrets)
        return report

    def _update_folders(self, folder_infos):
        """Mirror the server's folder list (``mailsync.folders.FolderInfo``) into folder records.

        New folders are created, known ones get their detected role and flags
        refreshed, folders no longer listed are flagged, not deleted: their
        sync state must survive a rename back or a temporary glitch. The sync
        state and the user's choices (sync flag, a role they corrected) are
        never reset. Returns (number created, number newly vanished).
        """
        self.ensure_one()
        self.check_access("write")
        # Users may not create or flag folders themselves (see ir.model.access):
        # folders come from the server only.
        Folder = self.env["mailsync.folder"].sudo()
        existing = {folder.path: folder for folder in Folder.search([("mailbox_id", "=", self.id)])}
        seen = set()
        to_create = []
        for info in folder_infos:
            # \Noselect folders (e.g. Gmail's "[Gmail]" parent) hold no mail.
            if not info.selectable or info.path in seen:
                continue
            seen.add(info.path)
            vals = {
                "delimiter": info.delimiter or False,
                "flags": " ".join(info.flags) or False,
                "role_detected": info.role,
                "exists_on_server": True,
            }
            folder = existing.get(info.path)
            if folder is None:
                to_create.append(dict(
                    vals, mailbox_id=self.id, path=info.path, role=info.role,
                    sync_enabled=info.role in DEFAULT_SYNC_ROLES))
                continue
            if folder.role == folder.role_detected or not folder.role_detected:
                vals["role"] = info.role
            changed = {name: value for name, value in vals.items() if folder[name] != value}
            if changed:
                folder.write(changed)
        if to_create:
            Folder.create(to_create)
        vanished = Folder.browse(
            folder.id for path, folder in existing.items()
            if path not in seen and folder.exists_on_server)
        vanished.write({"exists_on_server": False})
        return len(to_create), len(vanished)

    @api.model
    def _first_failed_step(self, report):
        return next((step for step in (report or {}).get("steps", []) if step.get("ok") is False), None)

    @api.model
    def _render_connection_report(self, report):
        if not report or not report.get("steps"):
            return False
        rows = []
        for step in report["steps"]:
            icon, css = {True: ("\u2713", "text-success"), False: ("\u2717", "text-danger")}.get(
                step.get("ok"), ("\u2013", "text-muted"))
            status = {True: _("passed"), False: _("failed")}.get(step.get("ok"), _("skipped"))
            hint = step.get("hint") or ""
            rows.append(
                '<tr><td class="%(css)s fw-bold" title="%(status)s">%(icon)s</td>'
                '<td class="text-nowrap">%(label)s</td>'
                '<td>%(message)s%(hint)s</td>'
                '<td class="text-muted text-end text-nowrap">%(duration)s</td></tr>' % {
                    "css": css, "icon": icon, "status": html.escape(status),
                    "label": html.escape(step.get("label") or step.get("key") or ""),
                    "message": html.escape(step.get("message") or ""),
                    "hint": ('<div class="text-muted small">%s</div>' % html.escape(hint)) if hint else "",
                    "duration": ("%s ms" % step["duration_ms"]) if step.get("ok") is not None else "",
                })
        return Markup(
            '<table class="table table-sm o_mailsync_report mb-0"><tbody>%s</tbody></table>'
            % "".join(rows))

    def _notification(self, kind, title, message, sticky=False):
        # soft_reload so the form shows the new state, report and folders.
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": kind,
                "title": title,
                "message": message,
                "sticky": sticky,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

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

    # ------------------------------------------------------------
    # Outbound
    # ------------------------------------------------------------

    # Changes to these fields update the linked ir.mail_server.
    _outbound_server_fields = {
        "state", "active", "email", "name", "login", "smtp_host", "smtp_port", "smtp_security"}

    @api.model_create_multi
    def create(self, vals_list):
        mailboxes = super().create(vals_list)
        mailboxes.filtered(lambda m: m.state != "draft")._outbound_sync_mail_server()
        return mailboxes

    @api.depends("state", "sync_failures", "sent_copy_failures", "sync_error", "last_error",
                 "last_poll_at", "sync_frequency")
    def _compute_health(self):
        for mailbox in self:
            mailbox.health, mailbox.health_summary = mailbox._health()

    def _health(self):
        """(health, summary) of one mailbox; see the health field."""
        if self.state in ("draft", "disconnected"):
            return "off", _("Not connected")
        if self.state == "paused":
            return "off", _("Paused")
        if self.state == "error":
            return "failing", self.last_error or _("The server refused the connection.")
        failures = max(self.sync_failures, self.sent_copy_failures)
        if failures >= HEALTH_FAILING_AFTER:
            return "failing", _("%(count)s failed attempts in a row: %(error)s",
                                count=failures, error=self.sync_error or _("see the log"))
        problems = []
        if failures:
            problems.append(_("retrying after a failure: %s", self.sync_error or _("see the log")))
        if self.outbox_failed_count:
            problems.append(_("%s sent copies could not be filed", self.outbox_failed_count))
        if self.server_action_failed_count:
            problems.append(_("%s mailbox changes failed", self.server_action_failed_count))
        minutes = FREQUENCY_MINUTES.get(self.sync_frequency)
        if minutes and self.last_poll_at and self.last_poll_at < fields.Datetime.now() - timedelta(
                minutes=3 * minutes + 5):
            # Three polls missed: the cron is not running (or not keeping up).
            problems.append(_("no mail checked since %s",
                              fields.Datetime.to_string(self.last_poll_at)))
        if problems:
            return "warning", "; ".join(problems)
        return "ok", _("OK")

    def _compute_outbox_counts(self):
        counts = {(mailbox.id, state): count for mailbox, state, count in
                  self.env["mailsync.outbox"]._read_group(
                      [("mailbox_id", "in", self.ids), ("state", "in", ("queued", "failed"))],
                      ["mailbox_id", "state"], ["__count"])}
        for mailbox in self:
            mailbox.outbox_queued_count = counts.get((mailbox.id, "queued"), 0)
            mailbox.outbox_failed_count = counts.get((mailbox.id, "failed"), 0)

    def action_view_outbox(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "imap_sent_sync.action_mailsync_outbox")
        action["domain"] = [("mailbox_id", "=", self.id)]
        action["context"] = {"default_mailbox_id": self.id, "search_default_not_done": 1}
        return action

    def _outbound_sync_mail_server(self):
        """Create, update or archive the ir.mail_server that sends as this mailbox.

        Active while the mailbox is usable (connected, paused or in error: a
        sync problem is not a reason to send from another address). The
        password is not copied: ir.mail_server keeps it in clear, so the
        connection takes it from the vault (see ir.mail_server.connect).
        """
        Server = self.env["ir.mail_server"].sudo().with_context(active_test=False)
        for mailbox in self.sudo():
            server = mailbox.mail_server_id.with_context(active_test=False) or Server.search(
                [("mailsync_mailbox_id", "=", mailbox.id)], limit=1)
            usable = (mailbox.active and mailbox.state in ("connected", "paused", "error")
                      and (mailbox.smtp_host or "").strip() and mailbox.email)
            if not usable:
                if server.active:
                    server.active = False
                continue
            vals = {
                "name": _("%s (Email Sync)", mailbox.email),
                "smtp_host": mailbox.smtp_host.strip(),
                "smtp_port": mailbox.smtp_port,
                "smtp_encryption": mailbox.smtp_security,
                "smtp_authentication": "login",
                "smtp_user": mailbox._get_login(),
                "smtp_pass": False,
                "from_filter": mailbox.email.strip(),
                "sequence": 5,
                "active": True,
                "mailsync_mailbox_id": mailbox.id,
            }
            if server:
                current = server.read(list(vals), load=None)[0]
                changed = {key: value for key, value in vals.items() if current[key] != value}
                if changed:
                    server.write(changed)
            else:
                server = Server.create(vals)
            if mailbox.mail_server_id != server:
                mailbox.mail_server_id = server

    # ------------------------------------------------------------
    # Inbound sync (engine: mailsync.sync, mailsync.importer)
    # ------------------------------------------------------------

    @api.model
    def _inbound_default(self, key, default):
        """Global default from Settings (ir.config_parameter), else ``default``."""
        value = self.env["ir.config_parameter"].sudo().get_param("imap_sent_sync.%s" % key)
        if value in (None, False, ""):
            return default
        if value in ("True", "False"):
            return value == "True"
        return value

    @api.depends("backfill_state", "backfill_total", "backfill_scanned",
                 "backfill_matched", "backfill_imported")
    def _compute_backfill_progress(self):
        # Checking headers is ~10x cheaper than importing: weight them so the
        # bar moves steadily over the whole run.
        for mailbox in self:
            if mailbox.backfill_state == "done":
                mailbox.backfill_progress = 100.0
            elif mailbox.backfill_state == "none":
                mailbox.backfill_progress = 0.0
            else:
                scan = (min(mailbox.backfill_scanned / mailbox.backfill_total, 1.0)
                        if mailbox.backfill_total else float(mailbox.backfill_state == "importing"))
                imported = (min(mailbox.backfill_imported / mailbox.backfill_matched, 1.0)
                            if mailbox.backfill_matched else 0.0)
                mailbox.backfill_progress = round(100 * (0.2 * scan + 0.8 * imported), 1)

    def _compute_backfill_counts(self):
        self.env["mailsync.link"].flush_model()
        self.env.cr.execute("""
            SELECT m.id,
                   (SELECT COUNT(DISTINCT l.message_id) FROM mailsync_link l
                     WHERE l.mailbox_id = m.id AND l.planned
                       AND l.create_date >= m.backfill_started_at),
                   (SELECT COUNT(DISTINCT l.message_id) FROM mailsync_link l
                     WHERE l.mailbox_id = m.id AND l.state = 'pending')
              FROM mailsync_mailbox m WHERE m.id = ANY(%s)
        """, ([mailbox.id for mailbox in self if mailbox.id],))
        counts = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        for mailbox in self:
            matched, pending = counts.get(mailbox.id, (0, 0))
            mailbox.backfill_matched = matched or 0
            mailbox.backfill_imported = max((matched or 0) - (pending or 0), 0)

    def _compute_link_count(self):
        groups = self.env["mailsync.link"].sudo()._read_group(
            [("mailbox_id", "in", self.ids), ("state", "!=", "pending")], ["mailbox_id"], ["__count"])
        counts = {mailbox.id: count for mailbox, count in groups}
        for mailbox in self:
            mailbox.link_count = counts.get(mailbox.id, 0)

    def _check_inbound_ready(self):
        for mailbox in self:
            if mailbox.state not in ("connected", "paused"):
                raise UserError(_("Connect the mailbox %s first: run Test Connection until it "
                                  "succeeds.", mailbox.display_name))
            if not mailbox.has_secret:
                raise UserError(_("No password is saved for the mailbox %s.", mailbox.display_name))
            if not mailbox.folder_ids.filtered(lambda f: f.sync_enabled and f.exists_on_server):
                raise UserError(_("Choose at least one folder to sync in the Folders tab of %s.",
                                  mailbox.display_name))

    def _trigger_inbound(self):
        # Every job running the inbound sync (two are shipped; admins may add
        # copies): the idle ones help with a big backfill.
        crons = self.env["ir.cron"].sudo().search([("code", "=", "model._cron_sync_inbound()")])
        for cron in crons:
            cron._trigger()

    def action_preview_backfill(self):
        """Count the backfill window and how much of it involves contacts,
        reading headers only; nothing of the mail is stored."""
        from ..mailsync.errors import MailsyncError
        self.ensure_one()
        self.check_access("write")
        self._check_inbound_ready()
        try:
            result = self.env["mailsync.sync"]._preview(self.sudo())
        except MailsyncError as error:
            raise UserError(explain(error)) from None
        self.sudo().write({
            "preview_total": result["total"],
            "preview_matched": result["matched"],
            "preview_complete": result["complete"],
            "preview_date": fields.Datetime.now(),
        })
        return True

    def action_start_backfill(self):
        """Import the window's mail with contacts, newest first, in the background."""
        self.check_access("write")
        self._check_inbound_ready()
        for mailbox in self.sudo():
            self.env["mailsync.sync"]._start_backfill(mailbox)
            self.env["mailsync.log"]._record(
                mailbox, "fetch", "info",
                _("Backfill of the last %(days)s days started by %(user)s.",
                  days=mailbox.backfill_days, user=self.env.user.name))
        self._trigger_inbound()
        return True

    def action_sync_now(self):
        self.check_access("write")
        self._check_inbound_ready()
        self.sudo().write({"sync_requested": True, "sync_retry_at": False})
        self._trigger_inbound()
        return True

    def action_pause(self):
        """Stop every connection of the sync; all state is kept for Resume."""
        self.check_access("write")
        for mailbox in self.sudo().filtered(lambda m: m.state in ("connected", "error")):
            mailbox.state = "paused"
            self.env["mailsync.log"]._record(mailbox, "fetch", "info",
                                             _("Sync paused by %s.", self.env.user.name))
        return True

    def action_resume(self):
        """Continue where the sync stopped: the poll catches up from each
        folder's last UID, an unfinished backfill continues from its cursor."""
        self.check_access("write")
        for mailbox in self.sudo().filtered(lambda m: m.state == "paused"):
            if not mailbox.has_secret:
                raise UserError(_("No password is saved for the mailbox %s.", mailbox.display_name))
            mailbox.write({"state": "connected", "sync_requested": True, "sync_retry_at": False})
            self.env["mailsync.log"]._record(mailbox, "fetch", "info",
                                             _("Sync resumed by %s.", self.env.user.name))
        self._trigger_inbound()
        return True

    def action_disconnect(self):
        """Forget the password and stop syncing. The chatter history stays in
        Odoo; nothing on the server is touched (no connection is even made)."""
        self.check_access("write")
        for mailbox in self.sudo():
            mailbox._clear_secret()
            mailbox.write({"state": "disconnected", "sync_requested": False})
            # Find Past Emails waiting for this mailbox would never run now.
            self.env["mailsync.contact.search"].sudo().search(
                [("mailbox_id", "=", mailbox.id), ("state", "=", "pending")]).write(
                {"state": "failed", "error": _("The mailbox was disconnected.")})
            self.env["mailsync.log"]._record(
                mailbox, "credentials", "info",
                _("Disconnected by %s: password removed, sync stopped, history kept.",
                  self.env.user.name))
        return True

    def action_view_synced_emails(self):
        self.ensure_one()
        self.check_access("read")
        links = self.env["mailsync.link"].sudo().search(
            [("mailbox_id", "=", self.id), ("state", "!=", "pending")])
        return {
            "type": "ir.actions.act_window",
            "name": _("Synced Emails"),
            "res_model": "mail.message",
            "view_mode": "list,form",
            "domain": [("id", "in", links.mail_message_ids.ids)],
            "context": {"create": False},
        }

    def _sync_inbound(self, max_seconds=None, max_steps=None, commit=True):
        """Run the inbound sync of these mailboxes now, in this process, until
        nothing is due, ``max_seconds`` passed or ``max_steps`` batches ran
        (the cron does the same for every mailbox). ``commit``: commit after
        each batch. Returns a RunStats."""
        return self.env["mailsync.sync"]._run(self.sudo(), max_seconds=max_seconds,
                                              max_steps=max_steps, commit=commit)
