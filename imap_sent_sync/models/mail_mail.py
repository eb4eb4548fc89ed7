from odoo import models

# Key in the cursor's cache naming the mail.mail whose emails are being sent.
SENDING_MAIL_KEY = "imap_sent_sync.sending_mail"


class MailMail(models.Model):
    _inherit = "mail.mail"

    def _prepare_outgoing_list(self, mail_server=False, recipients_follower_status=None):
        # mail.mail._send() builds the emails of one mail.mail here and then
        # hands them one by one to ir.mail_server.send_email(), which only
        # sees an email.message. Remember which mail.mail they come from, so
        # the Sent copy knows its author, record and kind (mass mailing,
        # internal notification, reply) without guessing from headers.
        self.env.cr.cache[SENDING_MAIL_KEY] = (self.id, self.message_id)
        return super()._prepare_outgoing_list(
            mail_server=mail_server, recipients_follower_status=recipients_follower_status)
