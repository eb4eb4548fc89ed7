from odoo import fields, models

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
