from odoo import models


class MailMessage(models.Model):
    """Lets the inbound backfill give chatter entries ids from a reserved block.

    The chatter orders messages by id. A backfill imports newest first, so
    plain sequence ids would show a contact's older mail above the newer. The
    backfill therefore reserves ids from the sequence once it knows every
    message of the window (see ``mailsync.sync._reserve_id_slots``), hands
    them out by date, and passes, through the context key
    ``mailsync_forced_ids`` (one entry per created record, None for "use the
    sequence"), the id each entry gets, so ids follow the mail's dates.
    """

    _inherit = "mail.message"

    def _create(self, data_list):
        forced = self.env.context.get("mailsync_forced_ids")
        if forced and len(forced) == len(data_list):
            for data, forced_id in zip(data_list, forced):
                if forced_id:
                    data["stored"]["id"] = forced_id
        return super()._create(data_list)
