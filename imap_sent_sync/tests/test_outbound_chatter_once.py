"""A mail sent from the chatter shows once on the contact, also after the inbound
sync reads the Sent folder that now holds its copy (same Message-ID).

Sends for real: Odoo's test-mode SMTP guard (``odoo.modules.module.current_test``)
is lifted only inside ``real_smtp()`` and restored after.
"""
from odoo.tests import tagged

from .outbound_common import OutboundCase, real_smtp


@tagged("post_install", "-at_install")
class TestOutboundChatterOnce(OutboundCase):

    def _messages(self, record, message_id):
        return self.env["mail.message"].search([
            ("model", "=", record._name), ("res_id", "=", record.id),
            ("message_id", "=", message_id)])

    def _link(self, mailbox, message):
        return self.env["mailsync.link"].search([
            ("mailbox_id", "=", mailbox.id), ("message_id", "=", message.message_id.strip("<>"))])

    def test_sent_copy_is_recognised_by_the_inbound_sync(self):
        mailbox, rep_box = self._connected_mailbox()
        mailbox.action_test_connection()  # folder records: INBOX and Sent are synced
        self.assertEqual(mailbox.state, "connected", mailbox.last_error)
        sent = mailbox.folder_ids.filtered(lambda f: f.role == "sent")
        self.assertTrue(sent.sync_enabled)
        customer, _customer_box = self._customer()

        with real_smtp():
            first = self._post_as(self.user_rep, customer, "<p>First reply</p>", customer)
        self._run_cron()
        self.assertEqual(self._outbox(mailbox).state, "done")
        self.assertEqual(len(self.rig.folder_uids(rep_box, "Sent")), 1)

        # Backfill reads the Sent folder: the copy maps to the chatter message.
        mailbox.action_start_backfill()
        mailbox._sync_inbound(commit=False)
        self.assertEqual(self._messages(customer, first.message_id), first)
        # The sync did read the copy: its link maps the Sent UID to that message.
        link = self._link(mailbox, first)
        self.assertEqual(link.folder_id, sent)
        self.assertEqual(link.uid, self._outbox(mailbox).appended_uid)
        self.assertEqual(link.mail_message_ids, first)

        # Polling after a later send: still once.
        with real_smtp():
            second = self._post_as(self.user_rep, customer, "<p>Second reply</p>", customer)
        self._run_cron()
        self.assertEqual(len(self.rig.folder_uids(rep_box, "Sent")), 2)
        mailbox.action_sync_now()  # the poll the frequency would run later
        mailbox._sync_inbound(commit=False)
        self.assertEqual(self._messages(customer, second.message_id), second)
        self.assertEqual(self._link(mailbox, second).mail_message_ids, second)
        self.assertEqual(len(self._messages(customer, first.message_id)), 1)
