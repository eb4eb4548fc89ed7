"""Incremental polling: cursors per folder, new mail from UIDNEXT, one STATUS per
folder when nothing changed, UIDVALIDITY resync, frequencies and Sync Now."""
from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from .inbound_common import InboundCase, make_mail


@tagged("post_install", "-at_install")
class TestInboundPoll(InboundCase):

    def _poll(self, mailbox):
        mailbox.action_sync_now()
        return self._sync(mailbox)

    def _folder(self, mailbox, path):
        return mailbox.folder_ids.filtered(lambda f: f.path == path)

    def test_first_poll_sets_cursors_then_new_mail_is_imported(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        self.rig.append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "before"))
        self._poll(mailbox)
        inbox = self._folder(mailbox, "INBOX")
        status = self.rig.imap_client(rig_user)
        with status as client:
            info = client.folder_status("INBOX", ["UIDVALIDITY", "UIDNEXT", "HIGHESTMODSEQ"])
        self.assertEqual(inbox.uidvalidity, str(info[b"UIDVALIDITY"]))
        self.assertEqual(inbox.last_uid, info[b"UIDNEXT"] - 1)
        self.assertEqual(inbox.highestmodseq, str(info[b"HIGHESTMODSEQ"]))
        self.assertFalse(self._entries(jane), "older mail is the backfill's job")
        self.assertTrue(mailbox.last_poll_at)

        uids = self.rig.append_many(rig_user, "INBOX", [
            make_mail(jane.email, rig_user.address, "new 1"),
            make_mail("%s@nowhere.test" % self._uniq(), rig_user.address, "private"),
        ])
        sent_uid = self.rig.append(rig_user, "Sent", make_mail(rig_user.address, jane.email, "new 2"))
        stats = self._poll(mailbox)
        self.assertEqual(sorted(self._entries(jane).mapped("subject")), ["new 1", "new 2"])
        self.assertEqual(inbox.last_uid, uids[-1], "the cursor moved past the private message")
        self.assertEqual(self._folder(mailbox, "Sent").last_uid, sent_uid)
        self.assertEqual(stats.scanned, 3)
        self.assertFalse(mailbox.sync_requested)

    def test_no_change_poll_is_one_status_per_folder_and_no_fetch(self):
        mailbox, rig_user = self._connected_mailbox(layout="gmail")
        for folder in mailbox.folder_ids:
            folder.sync_enabled = folder.path in ("INBOX", "[Gmail]/Sent Mail", "[Gmail]/All Mail",
                                                  "[Gmail]/Important")
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        self.rig.append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "one"))
        self._poll(mailbox)   # cursors
        self.rig.append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "two"))
        stats = self._poll(mailbox)
        self.assertIn("UID FETCH", stats.commands)
        self.assertEqual(len(self._entries(jane)), 1)
        stats = self._poll(mailbox)
        self.assertEqual(stats.commands, {"STATUS": 4}, "one STATUS per synced folder, nothing else")
        # Flags changed elsewhere: HIGHESTMODSEQ moved, the cursor follows it,
        # and the next poll without change is back to one STATUS per folder.
        with self.rig.imap_client(rig_user) as client:
            client.select_folder("INBOX")
            client.add_flags(client.search("ALL"), [b"\\Flagged"])
        self._poll(mailbox)
        with self.rig.imap_client(rig_user) as client:
            modseq = client.folder_status("INBOX", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
        self.assertEqual(self._folder(mailbox, "INBOX").highestmodseq, str(modseq))
        stats = self._poll(mailbox)
        self.assertEqual(stats.commands, {"STATUS": 4})

    def test_uidvalidity_change_remaps_links_and_imports_nothing_twice(self):
        mailbox, rig_user = self._connected_mailbox()
        with self.rig.imap_client(rig_user) as client:
            client.create_folder("Projects")
        mailbox.action_refresh_folders()
        projects = self._folder(mailbox, "Projects")
        projects.sync_enabled = True
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        raws = [make_mail(jane.email, rig_user.address, "p%d" % i) for i in range(3)]
        self.rig.append_many(rig_user, "Projects", raws)
        self._backfill(mailbox)
        entries = self._entries(jane)
        self.assertEqual(len(entries), 3)
        old_validity = projects.uidvalidity
        links = self.env["mailsync.link"].search([("folder_id", "=", projects.id)])
        old_uids = dict(zip(links.mapped("message_id"), links.mapped("uid")))

        # The folder is deleted and recreated (a server migration does the same):
        # new UIDVALIDITY, the messages come back under new UIDs, plus a new one.
        with self.rig.imap_client(rig_user) as client:
            client.delete_folder("Projects")
            client.create_folder("Projects")
        self.rig.append(rig_user, "Projects", make_mail("%s@nowhere.test" % self._uniq(),
                                                        rig_user.address, "filler"))
        new_uids = self.rig.append_many(rig_user, "Projects", raws[::-1])
        self.rig.append(rig_user, "Projects", make_mail(jane.email, rig_user.address, "p-new"))
        self._poll(mailbox)
        self._sync(mailbox)   # the rescan of the window the resync planned

        self.assertNotEqual(projects.uidvalidity, old_validity)
        self.assertEqual(self._entries(jane)[:3], entries, "the old entries are kept")
        self.assertEqual(sorted(self._entries(jane).mapped("subject")), ["p-new", "p0", "p1", "p2"])
        links = self.env["mailsync.link"].search([("folder_id", "=", projects.id)])
        self.assertEqual(len(links), 4)
        remapped = {link.message_id: link.uid for link in links if link.message_id in old_uids}
        self.assertEqual(sorted(remapped.values()), sorted(new_uids))
        self.assertNotEqual(remapped, old_uids)
        log = mailbox.log_ids.filtered(lambda l: "UIDVALIDITY" in (l.message or ""))
        self.assertTrue(log)
        self.assertIn("3 of 3", log[0].message)

    def test_frequencies_and_sync_now(self):
        mailbox, _rig_user = self._connected_mailbox(sync_frequency="5min")
        sync = self.env["mailsync.sync"]
        self.assertEqual(sync._claim([mailbox.id]), mailbox, "never polled: due")
        self._sync(mailbox)
        self.assertFalse(sync._claim([mailbox.id]), "just polled")
        mailbox.last_poll_at = fields.Datetime.now() - timedelta(minutes=6)
        self.assertEqual(sync._claim([mailbox.id]), mailbox, "5 minutes later: due")
        mailbox.sync_frequency = "60min"
        self.assertFalse(sync._claim([mailbox.id]))
        mailbox.last_poll_at = fields.Datetime.now() - timedelta(minutes=61)
        self.assertEqual(sync._claim([mailbox.id]), mailbox)
        mailbox.sync_frequency = "manual"
        self.assertFalse(sync._claim([mailbox.id]), "manual: only Sync Now")
        cron = self.env.ref("imap_sent_sync.ir_cron_mailsync_inbound")
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        mailbox.with_user(self.user_rep).action_sync_now()
        self.assertEqual(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]),
                         triggers + 1)
        self.assertEqual(sync._claim([mailbox.id]), mailbox)
        self._sync(mailbox)
        self.assertFalse(mailbox.sync_requested)
        self.assertFalse(sync._claim([mailbox.id]))

    def test_many_new_messages_are_imported_in_batches(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        self._poll(mailbox)
        self.rig.append_many(rig_user, "INBOX", [
            make_mail(jane.email, rig_user.address, "b%d" % i) for i in range(7)])
        with self._batch_sizes(poll=3):
            stats = self._poll(mailbox)
        self.assertEqual(stats.steps, 3)
        self.assertEqual(len(self._entries(jane)), 7)
        self.assertFalse(mailbox.sync_requested)
