from odoo import fields, models


class MailsyncEntry(models.Model):
    """The chatter entry imported for one email on one record.

    Its only job is the unique key (record, Message-ID): two workers
    importing the same email at the same moment (two reps' mailboxes, or two
    cron workers) cannot both create an entry for the same record, whatever
    their transaction snapshots saw; the second one fails, rolls back and
    retries, and then finds the first one's entry. Rows go with their
    mail.message (ondelete cascade), so an email deleted from the chatter can
    be imported again if the user wants it back.
    """

    _name = "mailsync.entry"
    _description = "Imported Chatter Entry"
    _log_access = False

    model = fields.Char(required=True)
    res_id = fields.Many2oneReference(required=True, model_field="model")
    message_id = fields.Char(string="Message-ID", required=True)
    mail_message_id = fields.Many2one("mail.message", required=True, ondelete="cascade", index=True)

    _sql_constraints = [
        ("record_message_uniq", "unique(model, res_id, message_id)",
         "An email is imported once per record."),
    ]
