"""Pause, Resume, Disconnect."""
from odoo.exceptions import UserError
from odoo.tests import tagged

from .inbound_common import InboundCase, make_mail


@tagged("post_install", "-at_install")
class TestInboundLifecycle(InboundCase):

    def _logins(self, rig_user, at_least=0):
        return len(self.rig.imap_logins(rig_user, min_count=at_least))

    def _assert_no_new_login(self, rig_user, count, msg):
        # Dovecot logs asynchronously: give a late login line a second to show.
        self.assertEqual(len(self.rig.imap_logins(rig_user, min_count=count + 1, timeout=1.0)),
                         count, msg)

    def test_pause_makes_no_connection_and_resume_catches_up(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        self.rig.append_many(rig_user, "INBOX", [
            make_mail(jane.email, rig_user.address, "old %d" % i, date=self._days_ago(i + 1))
            for i in range(4)])
        mailbox.action_start_backfill()
        with self._batch_sizes(import_=2):
            while mailbox.backfill_state != "importing":
                self._sync(mailbox, max_steps=1)
            self._sync(mailbox, max_steps=1)
        self.assertEqual(len(self._entries(jane)), 2, "half of the backfill done")

        mailbox.with_user(self.user_rep).action_pause()
        self.assertEqual(mailbox.state, "paused")
        self.rig.append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "while paused"))
        logins = self._logins(rig_user, at_least=1)
        stats = self._sync(mailbox)
        self.assertEqual(stats.steps, 0)
        self.assertFalse(stats.mailboxes)
        self.assertFalse(self.env["mailsync.sync"]._claim([mailbox.id]))
        self._assert_no_new_login(rig_user, logins, "no connection while paused")
        self.assertEqual(len(self._entries(jane)), 2)
        self.assertEqual((mailbox.backfill_state, mailbox.backfill_imported), ("importing", 2),
                         "state kept")

        mailbox.with_user(self.user_rep).action_resume()
        self.assertEqual(mailbox.state, "connected")
        self._sync(mailbox)
        self.assertEqual(mailbox.backfill_state, "done")
        self.assertEqual(sorted(self._entries(jane).mapped("subject")),
                         ["old 0", "old 1", "old 2", "old 3", "while paused"])

    def test_disconnect_wipes_the_secret_keeps_history_and_server_mail(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        self.rig.append_many(rig_user, "INBOX", [
            make_mail(jane.email, rig_user.address, "m%d" % i) for i in range(3)])
        self.rig.append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "seen"),
                        flags=(b"\\Seen",))
        self._backfill(mailbox)
        entries = self._entries(jane)
        self.assertEqual(len(entries), 4)
        server_before = (self.rig.fetch_messages(rig_user, "INBOX"), self.rig.fetch_flags(rig_user, "INBOX"))

        logins = self._logins(rig_user, at_least=1)
        mailbox.with_user(self.user_rep).action_disconnect()
        self.assertEqual(mailbox.state, "disconnected")
        self.assertFalse(mailbox.has_secret)
        self.env.cr.execute("SELECT secret_encrypted FROM mailsync_mailbox WHERE id = %s", (mailbox.id,))
        self.assertIsNone(self.env.cr.fetchone()[0], "the ciphertext is gone")
        self._assert_no_new_login(rig_user, logins, "disconnecting made no connection")
        self.rig.append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "after"))
        logins = self._logins(rig_user, at_least=logins + 1)
        stats = self._sync(mailbox)
        self.assertEqual(stats.steps, 0)
        with self.assertRaises(UserError):
            mailbox.with_user(self.user_rep).action_sync_now()
        self._assert_no_new_login(rig_user, logins, "no sync connection after Disconnect")
        self.assertEqual(self._entries(jane), entries, "history kept")
        self.assertTrue(self.env["mailsync.link"].search([("mailbox_id", "=", mailbox.id)]))
        server_after = (self.rig.fetch_messages(rig_user, "INBOX"), self.rig.fetch_flags(rig_user, "INBOX"))
        self.assertEqual(len(server_after[0]), len(server_before[0]) + 1)
        self.assertEqual({uid: raw for uid, raw in server_after[0].items() if uid in server_before[0]},
                         server_before[0], "server mail untouched")
        self.assertEqual({uid: f for uid, f in server_after[1].items() if uid in server_before[1]},
                         server_before[1])
        log = mailbox.log_ids.filtered(lambda l: "Disconnected" in (l.message or ""))
        self.assertTrue(log)

    def test_only_the_owner_or_a_manager_acts_on_a_mailbox(self):
        from odoo.exceptions import AccessError
        mailbox, _rig_user = self._connected_mailbox(user=self.user_rep)
        other = mailbox.with_user(self.user_rep2)
        for action in ("action_pause", "action_resume", "action_disconnect", "action_sync_now",
                       "action_start_backfill", "action_preview_backfill"):
            with self.assertRaises(AccessError, msg=action):
                getattr(other, action)()
        self.assertEqual(mailbox.state, "connected")
        mailbox.with_user(self.user_manager).action_pause()
        self.assertEqual(mailbox.state, "paused")
        mailbox.with_user(self.user_rep).action_resume()
        self.assertEqual(mailbox.state, "connected")
