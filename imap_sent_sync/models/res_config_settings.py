from odoo import api, fields, models

from .mailsync_outbox import (  # Outbound
    CONTENT_SELECTION, ERROR_POLICY_SELECTION, FREQUENCY_SELECTION)


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    # Who may connect a mailbox. On at install (security/mailsync_security.xml), so a
    # rep finds "Email Sync > My Mailboxes" without an admin visiting every
    # user. Switched off, Odoo takes Email Sync / User away from every user
    # who is not a manager (as for any such option in Settings); from then on
    # only users given Email Sync / User or Manager in their user form can
    # connect a mailbox.
    group_mailsync_all_users = fields.Boolean(
        string="Every internal user can connect a mailbox",
        implied_group="imap_sent_sync.group_mailsync_user",
        group="base.group_user")
    mailsync_network_timeout = fields.Integer(
        string="Network timeout (seconds)",
        config_parameter="imap_sent_sync.network_timeout", default=20,
        help="Longest wait for any single answer of an IMAP or SMTP server.")

    # Outbound: global defaults of the Sent-copy options (see mailsync.outbox).
    # Booleans that default to True cannot be config_parameter Booleans (Odoo
    # deletes the parameter for False and then shows the default), hence the
    # selection for attachments.
    mailsync_sent_copy_frequency = fields.Selection(
        FREQUENCY_SELECTION, string="Save sent copies",
        config_parameter="imap_sent_sync.sent_copy_frequency", default="immediate")
    mailsync_sent_copy_content = fields.Selection(
        CONTENT_SELECTION, string="Copy content",
        config_parameter="imap_sent_sync.sent_copy_content", default="full")
    mailsync_sent_copy_attachments = fields.Selection(
        [("keep", "Keep attachments"), ("drop", "Leave attachments out")],
        string="Attachments", config_parameter="imap_sent_sync.sent_copy_attachments",
        default="keep")
    mailsync_sent_copy_max_attachment_mb = fields.Float(
        string="Largest attachment kept (MB, 0: no limit)",
        config_parameter="imap_sent_sync.sent_copy_max_attachment_mb", default=0.0)
    mailsync_sent_copy_internal = fields.Boolean(
        string="Copy internal notifications",
        config_parameter="imap_sent_sync.sent_copy_internal")
    mailsync_sent_copy_mass_mailing = fields.Boolean(
        string="Copy mass mailings",
        config_parameter="imap_sent_sync.sent_copy_mass_mailing")
    mailsync_sent_copy_error_policy = fields.Selection(
        ERROR_POLICY_SELECTION, string="When saving a copy fails",
        config_parameter="imap_sent_sync.sent_copy_error_policy", default="retry")
    mailsync_sent_copy_max_attempts = fields.Integer(
        string="Attempts per copy", config_parameter="imap_sent_sync.sent_copy_max_attempts",
        default=5)
    mailsync_sent_copy_retry_delay = fields.Integer(
        string="First retry after (seconds, doubling)",
        config_parameter="imap_sent_sync.sent_copy_retry_delay", default=60)

    # Inbound sync: global defaults, copied into each new mailbox (which may
    # override them), and the blocklist, which applies to every mailbox.
    mailsync_import_frequency = fields.Selection(
        [("5min", "Every 5 minutes"), ("15min", "Every 15 minutes"), ("60min", "Hourly"),
         ("manual", "Manual (Sync Now only)")],
        string="Check for new mail", config_parameter="imap_sent_sync.sync_frequency",
        default="15min")
    mailsync_backfill_days = fields.Integer(
        string="Backfill window (days)", config_parameter="imap_sent_sync.backfill_days",
        default=60)
    mailsync_import_content = fields.Selection(
        [("full", "Full content"), ("text", "Text only"), ("headers", "Headers only")],
        string="Imported content", config_parameter="imap_sent_sync.import_content",
        default="full")
    mailsync_import_attachments = fields.Selection(
        [("keep", "Import attachments"), ("drop", "Leave attachments out")],
        string="Imported attachments", config_parameter="imap_sent_sync.import_attachments",
        default="keep")
    mailsync_import_max_attachment_mb = fields.Integer(
        string="Largest attachment imported (MB, 0: no limit)",
        config_parameter="imap_sent_sync.import_max_attachment_mb", default=25)
    mailsync_import_internal = fields.Boolean(
        string="Include internal mail", config_parameter="imap_sent_sync.import_internal")
    mailsync_blocklist = fields.Char(
        string="Never import mail with", config_parameter="imap_sent_sync.blocklist",
        help="Addresses or domains, separated by commas or spaces: jane@example.com, "
             "example.com (that domain), *.example.com (the domain and its subdomains). "
             "A message with any of them among its participants is never imported.")

    # Propagation: company-wide defaults of new mailboxes (res.company).
    mailsync_delete_to_odoo = fields.Boolean(
        related="company_id.mailsync_delete_to_odoo", readonly=False)
    mailsync_delete_to_mailbox = fields.Boolean(
        related="company_id.mailsync_delete_to_mailbox", readonly=False)
    mailsync_archive_to_odoo = fields.Boolean(
        related="company_id.mailsync_archive_to_odoo", readonly=False)
    mailsync_archive_to_mailbox = fields.Boolean(
        related="company_id.mailsync_archive_to_mailbox", readonly=False)
    mailsync_retain_history = fields.Boolean(
        related="company_id.mailsync_retain_history", readonly=False)

    @api.onchange("mailsync_retain_history")
    def _onchange_mailsync_retain_history(self):
        # Compliance forbids deleting history because of a mailbox delete.
        if self.mailsync_retain_history:
            self.mailsync_delete_to_odoo = False
