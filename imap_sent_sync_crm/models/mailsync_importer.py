from odoo import api, models


class MailsyncImporter(models.AbstractModel):
    """Also post imported mail on the matched contacts' open opportunities.

    "Open" as the CRM pipeline shows it: an opportunity (not a lead), active
    (lost ones are archived) and not in a won stage. Only the contact's own
    opportunities: mail from one employee of a customer does not land on
    every deal of that customer. The usual dedupe applies per record, so a
    message matching two contacts of the same opportunity is posted on it once.
    """

    _inherit = "mailsync.importer"

    @api.model
    def _targets_for_partners(self, partner_ids):
        targets = super()._targets_for_partners(partner_ids)
        if not partner_ids:
            return targets
        self.env["crm.lead"].flush_model(["partner_id", "type", "active", "stage_id"])
        self.env.cr.execute("""
            SELECT lead.partner_id, lead.id
              FROM crm_lead lead
              LEFT JOIN crm_stage stage ON stage.id = lead.stage_id
             WHERE lead.partner_id = ANY(%s)
               AND lead.type = 'opportunity'
               AND lead.active
               AND stage.is_won IS NOT TRUE
             ORDER BY lead.id
        """, (list(partner_ids),))
        for partner_id, lead_id in self.env.cr.fetchall():
            targets.setdefault(partner_id, []).append(("crm.lead", lead_id))
        return targets
