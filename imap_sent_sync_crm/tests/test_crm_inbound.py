"""Imported mail also lands on the matched contacts' open opportunities."""
from odoo.tests import tagged

from odoo.addons.imap_sent_sync.tests.inbound_common import InboundCase, make_mail


@tagged("post_install", "-at_install")
class TestCrmInbound(InboundCase):

    def _opportunity(self, partner, name, **values):
        return self.env["crm.lead"].create(dict(
            name=name, partner_id=partner.id, type="opportunity", user_id=self.user_rep2.id,
            **values))

    def test_mail_goes_to_open_opportunities_of_the_contact(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"), "Jane")
        bob = self._contact("%s@example.com" % self._uniq("bob"), "Bob")
        open_opp = self._opportunity(jane, "Open deal")
        shared_opp = self._opportunity(jane, "Deal with both")
        shared_opp.message_subscribe(partner_ids=[bob.id, self.user_rep2.partner_id.id])
        won_stage = self.env["crm.stage"].search([("is_won", "=", True)], limit=1)
        won = self._opportunity(jane, "Won deal", stage_id=won_stage.id)
        lost = self._opportunity(jane, "Lost deal")
        lost.action_set_lost()
        lead = self.env["crm.lead"].create({"name": "Just a lead", "partner_id": jane.id,
                                            "type": "lead"})
        other = self._opportunity(bob, "Bob's deal")
        notifications = self.env["mail.notification"].sudo().search_count([])
        mails = self.env["mail.mail"].sudo().search_count([])

        raw = make_mail(jane.email, "%s, %s" % (rig_user.address, bob.email), "about the deals")
        self.rig.append(rig_user, "INBOX", raw)
        self.rig.append(rig_user, "INBOX", make_mail(
            "%s@nowhere.test" % self._uniq(), rig_user.address, "private"))
        self._backfill(mailbox)

        for record in (jane, bob, open_opp, shared_opp, other):
            entries = self._entries(record)
            self.assertEqual(entries.mapped("subject"), ["about the deals"], record.display_name)
            self.assertEqual(entries.author_id, jane)
        for record in (won, lost, lead):
            self.assertFalse(self._entries(record), record.name)
        self.assertEqual(self.env["mail.notification"].sudo().search_count([]), notifications)
        self.assertEqual(self.env["mail.mail"].sudo().search_count([]), mails,
                         "the salesperson following the opportunity is not emailed")
        link = self.env["mailsync.link"].search([("mailbox_id", "=", mailbox.id)])
        self.assertEqual(len(link.mail_message_ids), 5, "one entry per record, one link per copy")

        # Imported again (another rep's copy): nothing is posted twice.
        box2, rig2 = self._connected_mailbox(user=self.user_rep2)
        self.rig.append(rig2, "INBOX", raw)
        self._backfill(box2)
        self.assertEqual(len(self._entries(shared_opp)), 1)
        self.assertEqual(
            self.env["mailsync.link"].search([("mailbox_id", "=", box2.id)]).mail_message_ids,
            link.mail_message_ids)

    def test_polled_mail_reaches_a_new_opportunity(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        mailbox.action_sync_now()
        self._sync(mailbox)
        opp = self._opportunity(jane, "Fresh deal")
        self.rig.append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "news"))
        mailbox.action_sync_now()
        self._sync(mailbox)
        self.assertEqual(self._entries(opp).mapped("subject"), ["news"])
