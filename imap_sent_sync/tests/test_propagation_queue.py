"""The queue of mailbox changes (issue 5, acceptance 5 and 7): retried while the
server is down, idempotent, visible to the owner and managers, never blocking
the user; Pause/Resume re-syncs without duplicates and without replaying
old deletes."""
from datetime import timedelta
from unittest.mock import patch

import psycopg2.errors

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .propagation_common import DELETED, PropagationCase


@tagged("post_install", "-at_install")
class TestServerActionQueue(PropagationCase):

    def test_server_down_retried_then_done(self):
        mailbox, rig_user = self._mailbox("standard")
        mid, entry = self._receive(mailbox, rig_user, "while the server is down")
        port = mailbox.imap_port
        mailbox.imap_port = self.rig.closed_port()
        entry.unlink()                                   # the user is never blocked
        action = self._actions(mailbox)
        self._process()
        self.assertEqual(action.state, "queued")
        self.assertEqual(action.attempts, 1)
        self.assertIn("refused the connection", action.last_error)
        self.assertGreater(action.next_try, fields.Datetime.now())
        self.assertFalse(self._process(), "not due again before its retry time")
        self.assertTrue(mailbox.log_ids.filtered(
            lambda l: l.operation == "move" and l.outcome == "failure"))
        # The server is back and the retry time has come.
        mailbox.imap_port = port
        action.next_try = fields.Datetime.now() - timedelta(seconds=1)
        self._process()
        self.assertEqual((action.state, action.result), ("done", "moved"))
        self.assertEqual(self._where(rig_user, mid), {"Trash": 1})

    def test_a_database_error_is_not_taken_for_a_server_failure(self):
        # Recording it as a connection failure would write in an aborted
        # transaction and hide the real error behind "transaction is aborted".
        mailbox, rig_user = self._mailbox("standard")
        _mid, entry = self._receive(mailbox, rig_user, "database trouble")
        entry.unlink()
        action = self._actions(mailbox)
        Action = type(self.env["mailsync.server.action"])

        def broken_database(self_, *args, **kwargs):
            self_.env.cr.execute("SELECT 1 / 0")

        claimed = self.env["mailsync.server.action"]._claim_batch()
        with patch.object(Action, "_run_group", broken_database), \
                self.assertRaises(psycopg2.errors.DivisionByZero), \
                self.env.cr.savepoint():
            claimed._process_claimed()
        action.invalidate_recordset()
        self.assertEqual((action.state, action.attempts), ("queued", 0))

    def test_gives_up_after_max_attempts_and_tells_the_owner(self):
        mailbox, rig_user = self._mailbox("standard")
        _mid, entry = self._receive(mailbox, rig_user, "never reachable")
        mailbox.imap_port = self.rig.closed_port()
        entry.unlink()
        action = self._actions(mailbox)
        action.attempts = 7
        self._process()
        self.assertEqual(action.state, "failed")
        activity = self.env["mail.activity"].search([
            ("res_model", "=", "mailsync.mailbox"), ("res_id", "=", mailbox.id)])
        self.assertEqual(activity.user_id, self.user_rep)
        self.assertIn("could not be made", activity.note)
        action.with_user(self.user_rep).action_retry()
        self.assertEqual((action.state, action.attempts), ("queued", 0))

    def test_already_gone_and_twice_are_not_errors(self):
        mailbox, rig_user = self._mailbox("standard")
        seeded = self._bystanders(rig_user, ["INBOX", "Trash"])
        gone_mid, gone = self._receive(mailbox, rig_user, "deleted on the phone first")
        twice_mid, twice = self._receive(mailbox, rig_user, "archived then deleted")
        # The phone expunges one before the queue runs.
        with self._phone(rig_user) as phone:
            phone.select_folder("INBOX")
            uid = self._uid(rig_user, "INBOX", gone_mid)
            phone.add_flags([uid], [DELETED], silent=True)
            phone.uid_expunge([uid])
        gone.unlink()
        twice.action_mailsync_archive()
        twice.action_mailsync_archive()                  # archiving twice queues once
        self.assertEqual(len(self._actions(mailbox)), 2)
        self._process()
        results = {a.message_id: (a.state, a.result) for a in self._actions(mailbox)}
        self.assertEqual(results[gone_mid.strip("<>")], ("done", "gone"))
        self.assertEqual(results[twice_mid.strip("<>")], ("done", "moved"))
        # A retried row after it already happened: done again, no second copy.
        self._actions(mailbox).action_retry()
        self._process()
        self.assertEqual(set(self._actions(mailbox).mapped("state")), {"done"})
        self.assertEqual(self._where(rig_user, twice_mid), {"Archive": 1})
        self._assert_bystanders(rig_user, seeded)

    def test_folder_reset_waits_for_the_sync_to_find_the_copy(self):
        """UIDVALIDITY changed: the stored UID means nothing; no guess, wait
        for the inbound resync to re-map the copy by Message-ID, then move it."""
        mailbox, rig_user = self._mailbox("standard")
        mid, entry = self._receive(mailbox, rig_user, "in a folder recreated", folders=("Sent",))
        raw = self.rig.fetch_messages(rig_user, "Sent")[self._uid(rig_user, "Sent", mid)]
        with self._phone(rig_user) as phone:
            phone.delete_folder("Sent")
            phone.create_folder("Sent")
        self.rig.append(rig_user, "Sent", raw)
        seeded = self._bystanders(rig_user, ["Sent"])
        entry.unlink()
        action = self._actions(mailbox)
        self._process()
        self.assertEqual((action.state, action.attempts), ("queued", 1))
        self.assertIn("UIDVALIDITY", action.last_error)
        self.assertEqual(self._where(rig_user, mid), {"Sent": 1}, "nothing touched")
        self._poll(mailbox)                              # the inbound resync re-maps the link
        action.next_try = fields.Datetime.now() - timedelta(seconds=1)
        self._process()
        self.assertEqual((action.state, action.result), ("done", "moved"))
        self.assertEqual(self._where(rig_user, mid), {"Trash": 1})
        self._assert_bystanders(rig_user, seeded)

    def test_visible_to_owner_and_managers_only(self):
        mailbox, rig_user = self._mailbox("standard")
        _mid, entry = self._receive(mailbox, rig_user, "whose change")
        entry.unlink()
        action = self._actions(mailbox)
        Action = self.env["mailsync.server.action"]
        self.assertEqual(Action.with_user(self.user_rep).search([("id", "=", action.id)]), action)
        self.assertEqual(Action.with_user(self.user_manager).search([("id", "=", action.id)]),
                         action)
        self.assertFalse(Action.with_user(self.user_rep2).search([("id", "=", action.id)]))
        with self.assertRaises(AccessError):
            action.with_user(self.user_rep2).action_cancel()
        with self.assertRaises(AccessError):
            action.with_user(self.user_rep).write({"state": "done"})
        self.assertEqual(mailbox.server_action_queued_count, 1)
        self.assertEqual(mailbox.with_user(self.user_rep).action_view_server_actions()["domain"],
                         [("mailbox_id", "=", mailbox.id)])
        action.with_user(self.user_rep).action_cancel()
        self.assertEqual(action.state, "cancelled")
        self._process()
        self.assertEqual(action.state, "cancelled", "a cancelled change never runs")

    def test_unlink_queues_and_triggers_the_cron(self):
        mailbox, rig_user = self._mailbox("standard")
        _mid, entry = self._receive(mailbox, rig_user, "trigger")
        cron = self.env.ref("imap_sent_sync.ir_cron_mailsync_server_action")
        before = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        entry.unlink()
        self.assertGreater(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]),
                           before)
        done = self.env["mailsync.server.action"]._cron_process_server_actions()
        self.assertEqual(done, 1)

    def test_disconnect_cancels_and_never_touches_the_server(self):
        mailbox, rig_user = self._mailbox("standard")
        mid, entry = self._receive(mailbox, rig_user, "disconnect first")
        entry.unlink()
        mailbox.action_disconnect()
        self.assertEqual(self._actions(mailbox).state, "cancelled")
        self._process()
        self.assertEqual(self._where(rig_user, mid), {"INBOX": 1})


@tagged("post_install", "-at_install")
class TestPauseResume(PropagationCase):

    def test_resume_resyncs_without_duplicates_or_replayed_deletes(self):
        mailbox, rig_user = self._mailbox("standard", propagate_delete_to_odoo=True)
        seeded = self._bystanders(rig_user, ["INBOX", "Trash"])
        old_mid, old = self._receive(mailbox, rig_user, "deleted in Odoo before the pause")
        paused_mid, paused = self._receive(mailbox, rig_user, "deleted in Odoo while paused")
        phone_mid, phone_entry = self._receive(mailbox, rig_user, "deleted on the phone while paused")
        old.unlink()
        self._process()
        self.assertEqual(self._where(rig_user, old_mid), {"Trash": 1})

        mailbox.action_pause()
        paused.unlink()                                  # queued, but nothing connects
        self.assertEqual(self._process(), 0)
        self.assertEqual(self._where(rig_user, paused_mid), {"INBOX": 1})
        with self._phone(rig_user) as phone:
            # The user restores the old one from the Trash (it gets a new UID)...
            phone.select_folder("Trash")
            phone.move([self._uid(rig_user, "Trash", old_mid)], "INBOX")
            # ...and deletes another one.
            phone.select_folder("INBOX")
            phone.move([self._uid(rig_user, "INBOX", phone_mid)], "Trash")
        new_mid = self._receive_raw(rig_user, "arrived while paused")
        self.assertFalse(self._sync(mailbox).processed, "a paused mailbox is not polled")

        mailbox.action_resume()
        self._poll(mailbox)
        self._process()
        # Arrived while paused: imported once.
        self.assertEqual(len(self._entries(self.contact, new_mid)), 1)
        # Deleted in Odoo while paused: moved now, once.
        self.assertEqual(self._where(rig_user, paused_mid), {"Trash": 1})
        # Deleted on the phone while paused: rule (a) deletes it in Odoo.
        self.assertFalse(phone_entry.exists())
        # Restored by the user: the old delete is not replayed (stays in INBOX)
        # and the email deleted in Odoo is not imported again.
        self.assertEqual(self._where(rig_user, old_mid), {"INBOX": 1})
        self.assertFalse(self._entries(self.contact, old_mid))
        self.assertEqual(len(self._actions(mailbox)), 2, "no new change was queued")
        # Re-syncing the whole window (backfill), or the folder from UID 1,
        # changes nothing: no duplicate, no deleted email back, no move replayed.
        self._backfill(mailbox)
        inbox = mailbox.folder_ids.filtered(lambda f: f.path == "INBOX")
        inbox.write({"last_uid": 0})
        self._poll(mailbox)
        self._process()
        entries = self._entries(self.contact)
        self.assertEqual(sorted(entries.mapped("subject")), ["arrived while paused"])
        self.assertEqual(self._where(rig_user, old_mid), {"INBOX": 1})
        self._assert_bystanders(rig_user, seeded)

    def _receive_raw(self, rig_user, subject):
        from .inbound_common import make_mail, message_id_of
        raw = make_mail(self.contact.email, rig_user.address, subject)
        self.rig.append(rig_user, "INBOX", raw)
        return message_id_of(raw)
