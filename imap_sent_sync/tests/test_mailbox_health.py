"""Mailbox health: what an admin sees at a glance in Email Sync > Mailboxes."""
from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from .common import MailsyncCase


@tagged("post_install", "-at_install")
class TestMailboxHealth(MailsyncCase):

    def _mailbox(self, **values):
        return self.env["mailsync.mailbox"].create({
            "email": "health-%s@example.com" % len(values), "user_id": self.user_rep.id,
            "imap_host": "imap.example.com", "state": "connected", "sync_frequency": "15min",
            "last_poll_at": fields.Datetime.now(), **values})

    def _health(self, mailbox):
        mailbox.invalidate_recordset()
        return mailbox.health, mailbox.health_summary

    def test_states_that_do_not_sync(self):
        for state, summary in (("draft", "Not connected"), ("disconnected", "Not connected"),
                               ("paused", "Paused")):
            self.assertEqual(self._health(self._mailbox(state=state)), ("off", summary))
        refused = self._mailbox(state="error", last_error="Login refused: wrong password.")
        self.assertEqual(self._health(refused), ("failing", "Login refused: wrong password."))

    def test_failures_in_a_row_warn_then_fail(self):
        mailbox = self._mailbox()
        self.assertEqual(self._health(mailbox), ("ok", "OK"))
        mailbox.write({"sync_failures": 1, "sync_error": "Timed out."})
        health, summary = self._health(mailbox)
        self.assertEqual(health, "warning")
        self.assertIn("Timed out.", summary)
        mailbox.write({"sync_failures": 3})
        self.assertEqual(self._health(mailbox), ("failing", "3 failed attempts in a row: Timed out."))
        mailbox.write({"sync_failures": 0, "sync_error": False, "sent_copy_failures": 4})
        self.assertEqual(self._health(mailbox)[0], "failing", "Sent copies count too")

    def test_failed_queue_rows_and_missed_polls_warn(self):
        mailbox = self._mailbox()
        self.env["mailsync.outbox"].create({"mailbox_id": mailbox.id, "state": "failed"})
        self.assertEqual(self._health(mailbox), ("warning", "1 sent copies could not be filed"))
        stale = self._mailbox(last_poll_at=fields.Datetime.now() - timedelta(hours=2))
        health, summary = self._health(stale)
        self.assertEqual(health, "warning")
        self.assertIn("no mail checked since", summary)
        manual = self._mailbox(sync_frequency="manual",
                               last_poll_at=fields.Datetime.now() - timedelta(days=9))
        self.assertEqual(self._health(manual), ("ok", "OK"), "manual mailboxes poll on demand")

    def test_list_shows_the_health(self):
        arch = self.env["mailsync.mailbox"].with_user(self.user_rep).get_views(
            [(False, "list")])["views"]["list"]["arch"]
        self.assertIn('name="health"', arch)
        self.assertIn('name="health_summary"', arch)
