from odoo import fields, models


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
