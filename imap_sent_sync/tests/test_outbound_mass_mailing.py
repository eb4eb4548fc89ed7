"""Mass mailings sent as the rep are not copied to the Sent folder unless asked.

Needs the Email Marketing app (mass_mailing), which imap_sent_sync does not
depend on: the test is skipped in databases without it. Run it in a database
where both are installed, e.g.::

    odoo-bin -d DB -i imap_sent_sync,mass_mailing --stop-after-init
    pytest --odoo-database=DB imap_sent_sync/tests/test_outbound_mass_mailing.py

Sends for real: Odoo's test-mode SMTP guard (``odoo.modules.module.current_test``)
is lifted only inside ``real_smtp()`` and restored after.
"""
import unittest

from odoo.tests import tagged

from .outbound_common import OutboundCase, real_smtp


@tagged("post_install", "-at_install")
class TestOutboundMassMailing(OutboundCase):

    def setUp(self):
        super().setUp()
        if "mailing.mailing" not in self.env:
            raise unittest.SkipTest("mass_mailing is not installed in this database")

    def _send_mailing(self, mailbox, customer):
        mailing = self.env["mailing.mailing"].create({
            "subject": "Spring offer", "body_html": "<p>Our spring offer</p>",
            "email_from": mailbox.email, "mailing_model_id": self.env.ref("base.model_res_partner").id,
            "mailing_domain": repr([("id", "=", customer.id)]),
        })
        with real_smtp():
            mailing.action_send_mail()
            mails = self.env["mail.mail"].sudo().search([("mailing_id", "=", mailing.id)])
            mails.send()
        return mailing

    def test_mass_mailing_excluded_by_default(self):
        mailbox, rep_box = self._connected_mailbox()
        customer, customer_box = self._customer()
        self._send_mailing(mailbox, customer)
        deliveries = self.rig.deliveries_to(customer_box.address)
        self.assertEqual(len(deliveries), 1)
        self.assertEqual(deliveries[0].login, rep_box.login, "sent through the rep's mailbox")
        self.assertFalse(self._outbox(mailbox))

        mailbox.sent_copy_mass_mailing = True
        self._send_mailing(mailbox, customer)
        self.assertEqual(self._outbox(mailbox).subject, "Spring offer")
