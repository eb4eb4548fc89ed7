"""Filing sent copies: the cron, target folders, content, frequency, error policy.

Tests that send through SMTP lift Odoo's test-mode guard only inside
``real_smtp()`` (``odoo.modules.module.current_test``), restored after. The
others queue raw bytes directly, as ir.mail_server does after a send.
"""
import base64
from datetime import timedelta, timezone
from email.message import EmailMessage
from email.utils import make_msgid

import odoo
from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import tagged

from mailrig import MailRig

from ..models.mailsync_outbox import ADVISORY_CLASS
from .outbound_common import OutboundCase, real_smtp


def raw_message(sender, to="someone@example.com", subject="Quote", attachment=None,
                msgid=None):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = msgid or make_msgid(domain="odoo.test")
    msg["Date"] = "Tue, 05 Mar 2024 14:30:00 +0000"
    msg.set_content("Hello,\nthe quote is attached.\n")
    msg.add_alternative("<p>Hello,</p><p>the quote is attached.</p>", subtype="html")
    if attachment:
        msg.add_attachment(attachment, maintype="application", subtype="pdf",
                           filename="quote.pdf")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


@tagged("post_install", "-at_install")
class TestOutboundOutbox(OutboundCase):

    def _queue(self, mailbox, raw, recipients=("someone@example.com",)):
        return self.env["mailsync.outbox"]._enqueue_sent(mailbox, raw, recipients=list(recipients))

    def _make_due(self, rows):
        rows.write({"next_try": fields.Datetime.now() - timedelta(seconds=1)})

    # ------------------------------------------------------------------ the copy
    def test_sent_chatter_mail_is_filed_once_seen_with_the_send_time(self):
        mailbox, rep_box = self._connected_mailbox()
        customer, customer_box = self._customer()
        with real_smtp():
            message = self._post_as(self.user_rep, customer, "<p>The quote.</p>", customer)
        row = self._outbox(mailbox)
        self.assertEqual(self._run_cron(), 1)
        self.assertEqual(row.state, "done")
        self.assertEqual(row.result, "appended")
        self.assertEqual(row.folder_path, "Sent")
        self.assertEqual(row.folder_id.role, "sent")
        stored = self.rig.fetch_messages(rep_box, "Sent")
        self.assertEqual(list(stored), [row.appended_uid])
        delivered = self.rig.fetch_messages(customer_box, "INBOX")
        # Same bytes in the rep's Sent as in the customer's INBOX (Dovecot adds
        # its delivery headers on top of the INBOX copy).
        self.assertTrue(list(delivered.values())[0].endswith(stored[row.appended_uid]))
        self.assertEqual(self._parse(stored[row.appended_uid])["Message-ID"], message.message_id)
        self.assertEqual(self.rig.fetch_flags(rep_box, "Sent")[row.appended_uid], (b"\\Seen",))
        with self.rig.imap_client(rep_box) as client:
            client.select_folder("Sent", readonly=True)
            internal = client.fetch([row.appended_uid], ["INTERNALDATE"])[row.appended_uid]
        self.assertEqual(internal[b"INTERNALDATE"].astimezone(timezone.utc).replace(tzinfo=None),
                         row.sent_at)
        self.assertTrue(row.uidvalidity)
        log = self.env["mailsync.log"].search(
            [("mailbox_id", "=", mailbox.id), ("operation", "=", "append")])
        self.assertEqual(log.outcome, "success")
        # A second run finds nothing to do and never appends again.
        self.assertEqual(self._run_cron(), 0)
        self.assertEqual(len(self.rig.folder_uids(rep_box, "Sent")), 1)

    def test_provider_that_saves_sent_mail_gets_no_second_copy(self):
        """Rig mode in which the SMTP server files sent mail itself (Gmail, M365)."""
        with MailRig() as private:
            private.smtp_saves_sent = True
            mailbox, rep_box = self._connected_mailbox(layout="gmail", rig=private)
            customer, _ = self._customer(private.add_user())
            with real_smtp():
                self._post_as(self.user_rep, customer, "<p>Saved by Gmail</p>", customer)
            self.assertEqual(len(private.folder_uids(rep_box, "[Gmail]/Sent Mail")), 1)
            self._run_cron()
            row = self._outbox(mailbox)
            self.assertEqual((row.state, row.result), ("done", "found"))
            self.assertEqual(row.folder_path, "[Gmail]/Sent Mail")
            self.assertEqual(private.folder_uids(rep_box, "[Gmail]/Sent Mail"), [row.appended_uid])

    def test_retry_after_a_lost_append_reply_does_not_duplicate(self):
        mailbox, rep_box = self._connected_mailbox()
        raw = raw_message(rep_box.address)
        row = self._queue(mailbox, raw)
        # The APPEND reached the server but its answer was lost: the copy is
        # there, the row still queued.
        uid = self.rig.append(rep_box, "Sent", raw, flags=(b"\\Seen",))
        self._run_cron()
        self.assertEqual((row.state, row.result, row.appended_uid), ("done", "found", uid))
        self.assertEqual(self.rig.folder_uids(rep_box, "Sent"), [uid])

    def test_one_message_to_two_customers_is_filed_once(self):
        mailbox, rep_box = self._connected_mailbox()
        customer_a, _box_a = self._customer(name="Ann")
        customer_b, _box_b = self._customer(name="Bob")
        with real_smtp():
            self._post_as(self.user_rep, customer_a, "<p>Both of you</p>", customer_a | customer_b)
        rows = self._outbox(mailbox)
        self.assertEqual(len(rows), 2, "Odoo sends one email per recipient")
        self.assertEqual(len(set(rows.mapped("message_id"))), 1)
        self._run_cron()
        self.assertEqual(rows.mapped("state"), ["done", "done"])
        self.assertEqual(sorted(rows.mapped("result")), ["appended", "found"])
        self.assertEqual(len(set(rows.mapped("appended_uid"))), 1)
        self.assertEqual(len(self.rig.folder_uids(rep_box, "Sent")), 1)

    # ------------------------------------------------------------------ folders
    def test_custom_folder_and_folder_per_kind(self):
        mailbox, rep_box = self._connected_mailbox()
        mailbox.action_refresh_folders()
        archive = mailbox.folder_ids.filtered(lambda f: f.path == "Archive")
        drafts = mailbox.folder_ids.filtered(lambda f: f.path == "Drafts")
        mailbox.sent_folder_id = archive
        new = self._queue(mailbox, raw_message(rep_box.address, subject="new"))
        self._run_cron()
        self.assertEqual(new.folder_path, "Archive")
        # A folder for replies only; new conversations keep the mailbox's choice.
        mailbox.sent_folder_reply_id = drafts
        reply = self._queue(mailbox, raw_message(rep_box.address, subject="re"))
        reply.kind = "reply"
        new2 = self._queue(mailbox, raw_message(rep_box.address, subject="new2"))
        self._run_cron()
        self.assertEqual((reply.folder_path, new2.folder_path), ("Drafts", "Archive"))
        self.assertEqual(len(self.rig.folder_uids(rep_box, "Archive")), 2)
        self.assertEqual(len(self.rig.folder_uids(rep_box, "Drafts")), 1)
        self.assertEqual(self.rig.folder_uids(rep_box, "Sent"), [])

    def test_top_level_sent_created_when_the_server_has_none(self):
        mailbox, rep_box = self._connected_mailbox(layout="outlook")
        with self.rig.imap_client(rep_box) as client:
            client.delete_folder("Sent Items")
        row = self._queue(mailbox, raw_message(rep_box.address))
        self._run_cron()
        self.assertEqual((row.state, row.folder_path), ("done", "Sent"))
        self.assertIn("Sent", self.rig.list_folders(rep_box))
        with self.rig.imap_client(rep_box) as client:
            self.assertTrue(client.list_sub_folders(pattern="Sent"), "subscribed")
        folder = mailbox.folder_ids.filtered(lambda f: f.path == "Sent")
        self.assertEqual(folder.role, "sent")
        self.assertIn("created", " ".join(mailbox.log_ids.mapped("message")))

    # ------------------------------------------------------------------ content
    def test_content_options_shape_the_copy_only(self):
        mailbox, rep_box = self._connected_mailbox()
        mailbox.write({"sent_copy_content": "full", "sent_copy_max_attachment_mb": 0.01})
        big = raw_message(rep_box.address, subject="big", attachment=b"%PDF" * 5000)
        row = self._queue(mailbox, big)
        self._run_cron()
        copy = self._parse(self.rig.fetch_messages(rep_box, "Sent")[row.appended_uid])
        self.assertEqual(copy["Message-ID"], self._parse(big)["Message-ID"])
        self.assertFalse([p for p in copy.walk() if p.get_filename()])
        self.assertIn("'quote.pdf'", copy.as_string())
        self.assertEqual(base64.b64decode(row.raw_message), big, "the outbox keeps what was sent")

        mailbox.sent_copy_content = "headers"
        row = self._queue(mailbox, raw_message(rep_box.address, subject="headers"))
        self._run_cron()
        copy = self._parse(self.rig.fetch_messages(rep_box, "Sent")[row.appended_uid])
        self.assertEqual(copy["Subject"], "headers")
        self.assertIn("Only the headers", copy.get_content())

        mailbox.write({"sent_copy_content": "text", "sent_copy_attachments": False})
        row = self._queue(mailbox, raw_message(rep_box.address, subject="text", attachment=b"x"))
        self._run_cron()
        copy = self._parse(self.rig.fetch_messages(rep_box, "Sent")[row.appended_uid])
        self.assertEqual(copy.get_content_type(), "text/plain")
        self.assertIn("the quote is attached", copy.get_content())
        self.assertIn("not kept", copy.get_content())

    # ------------------------------------------------------------------ frequency
    def test_batch_frequency_waits_for_its_slot(self):
        mailbox, rep_box = self._connected_mailbox()
        mailbox.sent_copy_frequency = "batch_15"
        cron = self.env.ref("imap_sent_sync.ir_cron_mailsync_outbox")
        Trigger = self.env["ir.cron.trigger"]
        before = Trigger.search([("cron_id", "=", cron.id)])
        first = self._queue(mailbox, raw_message(rep_box.address, subject="1"))
        second = self._queue(mailbox, raw_message(rep_box.address, subject="2"))
        slot = first.next_try
        self.assertGreater(slot, first.sent_at)
        self.assertEqual(second.next_try, slot)
        self.assertEqual((slot.minute % 15, slot.second), (0, 0))
        self.assertLessEqual(slot - first.sent_at, timedelta(minutes=15))
        triggers = Trigger.search([("cron_id", "=", cron.id)]) - before
        self.assertEqual(triggers.mapped("call_at"), [slot], "one trigger per slot")
        self._run_cron()
        self.assertEqual((first | second).mapped("state"), ["queued", "queued"])
        self._make_due(first | second)
        self._run_cron()
        self.assertEqual((first | second).mapped("state"), ["done", "done"])

        mailbox.sent_copy_frequency = "hourly"
        hourly = self._queue(mailbox, raw_message(rep_box.address, subject="3"))
        self.assertEqual((hourly.next_try.minute, hourly.next_try.second), (0, 0))
        mailbox.sent_copy_frequency = "immediate"
        now = self._queue(mailbox, raw_message(rep_box.address, subject="4"))
        self.assertEqual(now.next_try, now.sent_at)

    # ------------------------------------------------------------------ errors
    def _activities(self, mailbox):
        return self.env["mail.activity"].search(
            [("res_model", "=", "mailsync.mailbox"), ("res_id", "=", mailbox.id)])

    def test_refused_copy_is_retried_with_backoff_then_failed_and_notified_once(self):
        mailbox, rep_box = self._connected_mailbox()
        mailbox.sent_copy_max_attempts = 3
        good = self._queue(mailbox, raw_message(rep_box.address))
        bad = self._queue(mailbox, b"")  # Dovecot refuses an empty message
        bad2 = self._queue(mailbox, b"")
        self._run_cron()
        self.assertEqual(good.state, "done", "one refused copy holds back no other")
        self.assertEqual((bad.state, bad.attempts), ("queued", 1))
        self.assertIn("refused", bad.last_error)
        delays = []
        for attempt in (2, 3):
            delays.append(bad.next_try - fields.Datetime.now())
            self._make_due(bad | bad2)
            self._run_cron()
            self.assertEqual(bad.attempts, attempt)
        self.assertGreater(delays[1], delays[0], "exponential backoff")
        self.assertEqual((bad | bad2).mapped("state"), ["failed", "failed"])
        activities = self._activities(mailbox)
        self.assertEqual(len(activities), 1, "one notification per problem, not per message")
        self.assertEqual(activities.user_id, self.user_rep)
        self.assertIn("2 sent copies", activities.note)
        # Later failures of the same kind update that activity.
        bad3 = self._queue(mailbox, b"")
        for _attempt in range(3):
            self._make_due(bad3)
            self._run_cron()
        self.assertEqual(bad3.state, "failed")
        self.assertEqual(len(self._activities(mailbox)), 1)
        failures = self.env["mailsync.log"].search([
            ("mailbox_id", "=", mailbox.id), ("operation", "=", "append"),
            ("outcome", "=", "failure")])
        self.assertTrue(failures)

    def test_skip_policy_global_default_and_mailbox_override(self):
        mailbox, rep_box = self._connected_mailbox()
        self.env["ir.config_parameter"].set_param("imap_sent_sync.sent_copy_error_policy", "skip")
        self.assertEqual(mailbox.sent_copy_error_policy, "default")
        bad = self._queue(mailbox, b"")
        self._run_cron()
        self.assertEqual((bad.state, bad.attempts), ("skipped", 1))
        self.assertEqual(len(self._activities(mailbox)), 1)
        mailbox.sent_copy_error_policy = "retry"
        bad2 = self._queue(mailbox, b"")
        self._run_cron()
        self.assertEqual(bad2.state, "queued")

    def test_copies_wait_while_the_server_is_unreachable_then_flush(self):
        mailbox, rep_box = self._connected_mailbox()
        mailbox.sent_copy_max_attempts = 2
        customer, customer_box = self._customer()
        good_port = mailbox.imap_port
        mailbox.imap_port = self.rig.closed_port()
        with real_smtp():
            self._post_as(self.user_rep, customer, "<p>IMAP is down</p>", customer)
        # The send itself went out.
        self.assertEqual(len(self.rig.deliveries_to(customer_box.address)), 1)
        row = self._outbox(mailbox)
        for failures in (1, 2, 3):
            self._make_due(row)
            self.assertEqual(self._run_cron(), 0)
            self.assertEqual((row.state, row.attempts), ("queued", 0), "connection errors never fail a copy")
            self.assertEqual(mailbox.sent_copy_failures, failures)
            self.assertIn("refused", row.last_error)
        waiting = self._activities(mailbox)
        self.assertEqual(len(waiting), 1)
        self.assertIn("waiting", waiting.summary)
        mailbox.imap_port = good_port
        # A copy sent now goes through, and takes the waiting one with it.
        later = self._queue(mailbox, raw_message(rep_box.address))
        self.assertGreater(row.next_try, later.next_try)
        self._run_cron()
        self.assertEqual((row.state, later.state), ("done", "done"))
        self.assertEqual(mailbox.sent_copy_failures, 0)
        self.assertFalse(self._activities(mailbox).exists(), "resolved once the server is back")
        self.assertEqual(len(self.rig.folder_uids(rep_box, "Sent")), 2)

    def test_stopped_dovecot_queues_and_the_queue_drains_when_it_is_back(self):
        """Dovecot's IMAP really stopped (private rig); SMTP keeps working."""
        with MailRig() as private:
            mailbox, rep_box = self._connected_mailbox(rig=private)
            customer = self.env["res.partner"].create(
                {"name": "External", "email": "external@example.com"})
            private.stop_imap()
            try:
                with real_smtp():
                    self._post_as(self.user_rep, customer, "<p>While IMAP is down</p>", customer)
                self.assertEqual(len(private.deliveries_to("external@example.com")), 1)
                row = self._outbox(mailbox)
                self._run_cron()
                self.assertEqual(row.state, "queued")
            finally:
                private.start_imap()
            self._make_due(row)
            self._run_cron()
            self.assertEqual(row.state, "done")
            self.assertEqual(private.folder_uids(rep_box, "Sent"), [row.appended_uid])

    def test_paused_mailbox_keeps_its_copies_queued_until_resumed(self):
        mailbox, rep_box = self._connected_mailbox()
        mailbox.state = "paused"
        row = self._queue(mailbox, raw_message(rep_box.address))
        self._run_cron()
        self.assertEqual((row.state, row.attempts), ("queued", 0))
        self.assertFalse(mailbox.log_ids.filtered(lambda l: l.operation == "append"))
        mailbox.state = "connected"
        self._run_cron()
        self.assertEqual(row.state, "done")

    # ------------------------------------------------------------------ workers
    def test_a_mailbox_busy_in_another_worker_is_skipped(self):
        mailbox, rep_box = self._connected_mailbox()
        row = self._queue(mailbox, raw_message(rep_box.address))
        other = odoo.sql_db.db_connect(self.env.cr.dbname).cursor()
        try:
            other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_CLASS, mailbox.id))
            self.assertFalse(self.env["mailsync.outbox"]._claim_batch())
            self._run_cron()
            self.assertEqual(row.state, "queued")
        finally:
            other.rollback()
            other.close()
        self._run_cron()
        self.assertEqual(row.state, "done")

    # ------------------------------------------------------------------ access
    def test_owner_and_managers_see_the_outbox_and_can_retry_or_skip(self):
        mailbox, rep_box = self._connected_mailbox()
        row = self._queue(mailbox, raw_message(rep_box.address))
        Outbox = self.env["mailsync.outbox"]
        self.assertEqual(Outbox.with_user(self.user_rep).search([]), row)
        self.assertFalse(Outbox.with_user(self.user_rep2).search([]))
        self.assertIn(row, Outbox.with_user(self.user_manager).search([]))
        with self.assertRaises(AccessError):
            row.with_user(self.user_rep).write({"raw_message": base64.b64encode(b"forged")})
        with self.assertRaises(AccessError):
            row.with_user(self.user_rep2).action_skip()
        row.with_user(self.user_rep).action_skip()
        self.assertEqual(row.state, "skipped")
        row.with_user(self.user_manager).action_retry()
        self.assertEqual((row.state, row.attempts), ("queued", 0))
        self.assertEqual(mailbox.with_user(self.user_rep).outbox_queued_count, 1)
        action = mailbox.with_user(self.user_rep).action_view_outbox()
        self.assertEqual(action["res_model"], "mailsync.outbox")

    def test_filed_bytes_are_purged_after_the_retention_period(self):
        mailbox, rep_box = self._connected_mailbox()
        row = self._queue(mailbox, raw_message(rep_box.address))
        self._run_cron()
        self.assertTrue(row.raw_message)
        row.done_at = fields.Datetime.now() - timedelta(days=31)
        self.env["mailsync.outbox"]._purge_old_bytes()
        self.assertFalse(row.raw_message)
        self.assertEqual(row.state, "done")

    def test_queueing_failure_never_fails_the_send(self):
        """A broken outbox insert is logged; the mail is still sent and marked so."""
        mailbox, _rep_box = self._connected_mailbox()
        customer, customer_box = self._customer()
        self.env.cr.execute("ALTER TABLE mailsync_outbox ADD CONSTRAINT test_no_rows CHECK (false)")
        with real_smtp(), self.assertLogs("odoo.addons.imap_sent_sync.models.ir_mail_server",
                                          "ERROR"):
            message = self._post_as(self.user_rep, customer, "<p>Still sent</p>", customer)
        self.assertEqual(message.notification_ids.notification_status, "sent")
        self.assertEqual(len(self.rig.deliveries_to(customer_box.address)), 1)
        self.assertFalse(self._outbox(mailbox))
