"""Two cron workers filing sent copies at the same moment (two Odoo servers on
one database): each mailbox is filed by one worker at a time, every copy once.

Real transactions on the test database (committed, cleaned up at the end), two
threads with their own cursors as two cron workers would have. The overlap is
made certain: worker A pauses in the middle of its first batch (rows claimed,
mailbox locked, nothing committed yet) while worker B runs.
"""
import threading
import uuid
from email.message import EmailMessage
from email.utils import make_msgid

import odoo
from odoo.modules.registry import Registry
from odoo.tests import tagged
from odoo.tests.common import BaseCase, get_db_name

from mailrig import get_shared_rig


def _raw(sender, n):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "someone@example.com", "Copy %d" % n
    msg["Message-ID"] = make_msgid(domain="race.odoo.test")
    msg.set_content("Message %d\n" % n)
    return msg.as_bytes()


BATCH_PARAM = "imap_sent_sync.sent_copy_batch_size"


@tagged("post_install", "-at_install")
class TestOutboundConcurrency(BaseCase):

    ROWS = 40
    BATCH = 10   # several batches per mailbox: row locks alone would let B take the rest

    def _env(self, cr):
        return odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})

    def _cleanup(self, db, mailbox_ids):
        with Registry(db).cursor() as cr:
            cr.execute("DELETE FROM mailsync_outbox WHERE mailbox_id = ANY(%s)", (mailbox_ids,))
            cr.execute("DELETE FROM ir_mail_server WHERE mailsync_mailbox_id = ANY(%s)",
                       (mailbox_ids,))
            cr.execute("DELETE FROM mail_message WHERE model = 'mailsync.mailbox' AND res_id = ANY(%s)",
                       (mailbox_ids,))
            cr.execute("DELETE FROM mail_activity WHERE res_model = 'mailsync.mailbox' "
                       "AND res_id = ANY(%s)", (mailbox_ids,))
            cr.execute("DELETE FROM mailsync_mailbox WHERE id = ANY(%s)", (mailbox_ids,))
            cr.execute("DELETE FROM ir_config_parameter WHERE key = %s", (BATCH_PARAM,))
            cr.commit()

    def test_two_workers_never_file_one_mailbox_together(self):
        db = get_db_name()
        registry = Registry(db)
        rig = get_shared_rig()
        rig_users = [rig.add_user(), rig.add_user()]
        with registry.cursor() as cr:
            env = self._env(cr)
            mailboxes = env["mailsync.mailbox"]
            for rig_user in rig_users:
                mailboxes |= env["mailsync.mailbox"].create({
                    "user_id": env.ref("base.user_admin").id, "email": rig_user.address,
                    "login": rig_user.login, "secret": rig_user.password, "provider": "custom",
                    "name": "race-%s" % uuid.uuid4().hex[:6],
                    "imap_host": rig.host, "imap_port": rig.imaps_port, "imap_security": "ssl",
                    "smtp_host": rig.host, "smtp_port": rig.smtps_port, "smtp_security": "ssl",
                    "ca_pem": rig.ca_pem, "state": "connected"})
            env["ir.config_parameter"].set_param(BATCH_PARAM, self.BATCH)
            cr.commit()
            self.addCleanup(self._cleanup, db, mailboxes.ids)
            Outbox = env["mailsync.outbox"]
            for mailbox, rig_user in zip(mailboxes, rig_users):
                for n in range(self.ROWS):
                    Outbox._enqueue_sent(mailbox, _raw(rig_user.address, n),
                                         recipients=["someone@example.com"])
            cr.commit()
            mailbox_ids = mailboxes.ids

        outbox_cls = registry["mailsync.outbox"]
        original = outbox_cls._append_group
        paused, release = threading.Event(), threading.Event()
        first_claim = {}

        def paused_append_group(self, client, folder):
            if threading.current_thread().name == "worker-A" and not paused.is_set():
                first_claim["mailbox"] = self.mailbox_id.id
                paused.set()            # rows claimed and mailbox locked, uncommitted
                release.wait(60)
            return original(self, client, folder)

        results, errors = {}, {}

        def worker(name):
            try:
                with registry.cursor() as cr:
                    results[name] = self._env(cr)["mailsync.outbox"]._cron_process_outbox()
            except Exception as exc:  # surfaced by the assertions below
                errors[name] = exc

        outbox_cls._append_group = paused_append_group
        try:
            worker_a = threading.Thread(target=worker, args=("A",), name="worker-A")
            worker_a.start()
            self.assertTrue(paused.wait(60), "worker A never reached its first batch")
            worker_b = threading.Thread(target=worker, args=("B",), name="worker-B")
            worker_b.start()
            worker_b.join(120)
            # B filed the other mailbox only: A holds the first one (its first
            # batch claimed, the rest of its rows unlocked but not B's to take).
            self.assertEqual(results.get("B"), self.ROWS, errors)
            release.set()
            worker_a.join(120)
        finally:
            release.set()
            outbox_cls._append_group = original
        self.assertFalse(errors)
        self.assertEqual(results["A"], self.ROWS)

        with registry.cursor() as cr:
            cr.execute("SELECT mailbox_id, state, count(*) FROM mailsync_outbox "
                       "WHERE mailbox_id = ANY(%s) GROUP BY 1, 2", (mailbox_ids,))
            self.assertEqual(sorted(cr.fetchall()),
                             sorted((mailbox_id, "done", self.ROWS) for mailbox_id in mailbox_ids))
        for rig_user in rig_users:
            stored = rig.fetch_messages(rig_user, "Sent")
            ids = [line for raw in stored.values() for line in raw.split(b"\r\n")
                   if line.lower().startswith(b"message-id:")]
            self.assertEqual(len(ids), self.ROWS)
            self.assertEqual(len(set(ids)), self.ROWS, "each copy exactly once")
        self.assertIn(first_claim["mailbox"], mailbox_ids)
