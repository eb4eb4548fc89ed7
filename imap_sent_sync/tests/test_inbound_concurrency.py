"""Two workers importing the same email at the same moment (two reps'
mailboxes) still leave one chatter entry per record.

Real transactions on the test database (committed, cleaned up at the end),
two threads with their own cursors as two cron workers would have. The race
is made certain, not hoped for: worker A pauses after creating its entry,
before committing; worker B then runs into A's uncommitted key and waits; A
commits; B must fail, roll back and redo its step.
"""
import threading
import time
import uuid

import odoo
from odoo.modules.registry import Registry
from odoo.tests import tagged
from odoo.tests.common import BaseCase, get_db_name

from mailrig import get_shared_rig

from .inbound_common import delete_committed_sync_data, make_mail, message_id_of


@tagged("post_install", "-at_install")
class TestInboundConcurrency(BaseCase):

    def _env(self, cr):
        return odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})

    def test_same_email_imported_by_two_workers_at_once(self):
        db = get_db_name()
        registry = Registry(db)
        rig = get_shared_rig()
        users = [rig.add_user(), rig.add_user()]
        email = "race-%s@example.com" % uuid.uuid4().hex[:8]
        with registry.cursor() as cr:
            env = self._env(cr)
            partner = env["res.partner"].create({"name": "Race Contact", "email": email})
            mailboxes = env["mailsync.mailbox"]
            for user in users:
                mailbox = env["mailsync.mailbox"].create({
                    "user_id": env.ref("base.user_admin").id, "email": user.address,
                    "login": user.login, "secret": user.password, "provider": "custom",
                    "imap_host": rig.host, "imap_port": rig.imaps_port, "imap_security": "ssl",
                    "ca_pem": rig.ca_pem, "sync_frequency": "manual"})
                mailbox.action_test_connection()
                self.assertEqual(mailbox.state, "connected", mailbox.last_error)
                mailboxes |= mailbox
            cr.commit()
            self.addCleanup(delete_committed_sync_data, db, mailboxes.ids, partner.ids)
            mailboxes.action_sync_now()
            mailboxes._sync_inbound(commit=True)   # first poll: cursors
            cr.commit()
        raw = make_mail(email, ", ".join(u.address for u in users), "to both reps at once")
        for user in users:
            rig.append(user, "INBOX", raw)

        importer_cls = registry["mailsync.importer"]
        original = importer_cls._write_links
        created, release = threading.Event(), threading.Event()
        names = {}

        def paused_write_links(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            if threading.current_thread().name == "worker-A":
                created.set()           # A's entry exists, uncommitted
                release.wait(30)
            return result

        results, errors = {}, {}

        def worker(name, mailbox_id):
            try:
                with registry.cursor() as cr:
                    names[name] = cr._cnx.get_backend_pid()
                    mailbox = self._env(cr)["mailsync.mailbox"].browse(mailbox_id)
                    mailbox.action_sync_now()   # as the UI does: committed first
                    cr.commit()
                    results[name] = mailbox._sync_inbound(commit=True)
                    cr.commit()
            except Exception as error:  # noqa: BLE001 - reported by the main thread
                errors[name] = error

        importer_cls._write_links = paused_write_links
        try:
            thread_a = threading.Thread(target=worker, name="worker-A", args=("A", mailboxes[0].id))
            thread_b = threading.Thread(target=worker, name="worker-B", args=("B", mailboxes[1].id))
            thread_a.start()
            self.assertTrue(created.wait(60), "worker A never created its entry")
            thread_b.start()
            # Wait until B is blocked on A's uncommitted key.
            deadline = time.monotonic() + 30
            blocked = False
            with registry.cursor() as cr:
                while time.monotonic() < deadline and not blocked:
                    if "B" in names:
                        cr.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                   (names["B"],))
                        row = cr.fetchone()
                        blocked = bool(row and row[0] == "Lock")
                    if not blocked:
                        time.sleep(0.05)
                        cr.rollback()
            release.set()
            thread_a.join(60)
            thread_b.join(60)
        finally:
            importer_cls._write_links = original
            release.set()
        self.assertFalse(errors, errors)
        self.assertTrue(blocked, "worker B never waited on worker A: no race happened")
        self.assertEqual(results["B"].clashes, 1, "B rolled back and redid its step once")

        with registry.cursor() as cr:
            cr.execute("""
                SELECT id FROM mail_message
                 WHERE model = 'res.partner' AND res_id = %s AND message_id = %s
            """, (partner.id, message_id_of(raw)))
            entries = [row[0] for row in cr.fetchall()]
            self.assertEqual(len(entries), 1, "one chatter entry despite two simultaneous imports")
            cr.execute("""
                SELECT l.mailbox_id, r.mail_message_id FROM mailsync_link l
                  JOIN mailsync_link_mail_message_rel r ON r.link_id = l.id
                 WHERE l.mailbox_id = ANY(%s)
            """, (mailboxes.ids,))
            self.assertEqual(sorted(cr.fetchall()),
                             sorted((mailbox_id, entries[0]) for mailbox_id in mailboxes.ids),
                             "each mailbox links its copy to the one entry")

    def test_two_workers_share_one_backfill(self):
        """The mailbox's worker and a helper import one backfill together:
        each email once, every one of them, and the helper did its share."""
        from unittest.mock import patch
        from odoo.addons.imap_sent_sync.models import mailsync_sync

        db = get_db_name()
        registry = Registry(db)
        rig = get_shared_rig()
        user = rig.add_user()
        tag = uuid.uuid4().hex[:8]
        contacts = ["share-%s-%d@example.com" % (tag, i) for i in range(5)]
        raws = [make_mail(contacts[i % 5], user.address, "shared %d" % i) for i in range(120)]
        raws += [make_mail("nobody-%s-%d@else.test" % (tag, i), user.address, "x") for i in range(40)]
        rig.append_many(user, "INBOX", raws)
        with registry.cursor() as cr:
            env = self._env(cr)
            partners = env["res.partner"].create([{"name": email, "email": email} for email in contacts])
            mailbox = env["mailsync.mailbox"].create({
                "user_id": env.ref("base.user_admin").id, "email": user.address,
                "login": user.login, "secret": user.password, "provider": "custom",
                "imap_host": rig.host, "imap_port": rig.imaps_port, "imap_security": "ssl",
                "ca_pem": rig.ca_pem, "sync_frequency": "manual"})
            mailbox.action_test_connection()
            cr.commit()
            self.addCleanup(delete_committed_sync_data, db, mailbox.ids, partners.ids)
            mailbox.action_start_backfill()
            cr.commit()
            while mailbox.backfill_state == "scanning":
                mailbox._sync_inbound(max_steps=1, commit=True)
                mailbox.invalidate_recordset()
            self.assertEqual(mailbox.backfill_state, "importing")

        results, errors = {}, {}

        def worker(name, delay):
            time.sleep(delay)
            try:
                with registry.cursor() as cr:
                    box = self._env(cr)["mailsync.mailbox"].browse(mailbox.id)
                    results[name] = box._sync_inbound(commit=True)
            except Exception as error:  # noqa: BLE001
                errors[name] = error

        with patch.object(mailsync_sync, "IMPORT_BATCH", 8):
            threads = [threading.Thread(target=worker, args=("owner", 0)),
                       threading.Thread(target=worker, args=("helper", 0.2))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        self.assertFalse(errors, errors)
        self.assertGreater(results["helper"].imported, 0, "the helper imported its share")
        self.assertGreater(results["owner"].imported, 0)
        with registry.cursor() as cr:
            env = self._env(cr)
            box = env["mailsync.mailbox"].browse(mailbox.id)
            if box.backfill_state != "done":   # the last batch may have been the helper's
                box._sync_inbound(commit=True)
                box.invalidate_recordset()
            self.assertEqual(box.backfill_state, "done")
            cr.execute("""
                SELECT COUNT(*), COUNT(DISTINCT message_id) FROM mail_message
                 WHERE model = 'res.partner' AND res_id = ANY(%s) AND message_type = 'email'
            """, (partners.ids,))
            self.assertEqual(cr.fetchone(), (120, 120), "every email once")
            cr.execute("""
                SELECT COUNT(*) FILTER (WHERE state = 'synced'), COUNT(*) FROM mailsync_link
                 WHERE mailbox_id = %s
            """, (mailbox.id,))
            self.assertEqual(cr.fetchone(), (120, 120))
