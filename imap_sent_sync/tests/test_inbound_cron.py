"""The backfill driven by Odoo 18's own cron runner: triggered by Start
Backfill, batched with _notify_progress, rescheduled while work remains.

Runs ir.cron._process_job for the inbound job on the test database with real
commits (a rolled-back test transaction cannot host a cron run); everything
committed is deleted at the end.
"""
import uuid
from unittest.mock import patch

import odoo
from odoo.modules.registry import Registry
from odoo.tests import tagged
from odoo.tests.common import BaseCase, get_db_name

from mailrig import get_shared_rig

from odoo.addons.imap_sent_sync.models import mailsync_sync

from .inbound_common import delete_committed_sync_data, make_mail


@tagged("post_install", "-at_install")
class TestInboundCron(BaseCase):

    def test_backfill_runs_as_batched_cron_work(self):
        db = get_db_name()
        registry = Registry(db)
        rig = get_shared_rig()
        user = rig.add_user()
        email = "cron-%s@example.com" % uuid.uuid4().hex[:8]
        rig.append_many(user, "INBOX", [make_mail(email, user.address, "c%d" % i) for i in range(30)])
        with registry.cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            partner = env["res.partner"].create({"name": "Cron Contact", "email": email})
            mailbox = env["mailsync.mailbox"].create({
                "user_id": env.ref("base.user_admin").id, "email": user.address,
                "login": user.login, "secret": user.password, "provider": "custom",
                "imap_host": rig.host, "imap_port": rig.imaps_port, "imap_security": "ssl",
                "ca_pem": rig.ca_pem, "sync_frequency": "manual"})
            mailbox.action_test_connection()
            self.assertEqual(mailbox.state, "connected", mailbox.last_error)
            cr.commit()
            self.addCleanup(delete_committed_sync_data, db, mailbox.ids, partner.ids)
            cron = env.ref("imap_sent_sync.ir_cron_mailsync_inbound")
            cr.execute("SELECT COALESCE(MAX(id), 0) FROM ir_cron_progress")
            progress_before = cr.fetchone()[0]
            cr.execute("SELECT COUNT(*) FROM ir_cron_trigger WHERE cron_id = %s", (cron.id,))
            triggers_before = cr.fetchone()[0]
            mailbox.action_start_backfill()
            cr.commit()
            cr.execute("SELECT COUNT(*) FROM ir_cron_trigger WHERE cron_id = %s", (cron.id,))
            self.assertEqual(cr.fetchone()[0], triggers_before + 1, "Start Backfill triggers the job")

        IrCron = registry["ir.cron"]
        connection = odoo.sql_db.db_connect(db)
        runs = 0
        # A tiny time budget and batches: every cron callback does one step and
        # reports its progress, so Odoo calls it again (up to 10 times per run,
        # then reschedules the job at once).
        with patch.object(mailsync_sync, "CRON_BUDGET_SECONDS", 0.001), \
                patch.object(mailsync_sync, "IMPORT_BATCH", 4), \
                patch.object(mailsync_sync, "SCAN_BATCH", 10):
            while runs < 10:
                runs += 1
                with connection.cursor() as cron_cr:
                    job = IrCron._acquire_one_job(cron_cr, cron.id)
                    if not job:
                        with registry.cursor() as cr:
                            cr.execute("SELECT backfill_state, sync_error FROM mailsync_mailbox WHERE id = %s",
                                       (mailbox.id,))
                            state = cr.fetchone()
                            cr.execute("SELECT message FROM mailsync_log WHERE mailbox_id = %s", (mailbox.id,))
                            logs = cr.fetchall()
                    self.assertTrue(job, "run %d: the job is not ready %s" % (runs, job or (state, logs)))
                    IrCron._process_job(connection, cron_cr, job)
                with registry.cursor() as cr:
                    cr.execute("SELECT backfill_state FROM mailsync_mailbox WHERE id = %s", (mailbox.id,))
                    if cr.fetchone()[0] == "done":
                        break

        with registry.cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            box = env["mailsync.mailbox"].browse(mailbox.id)
            self.assertEqual(box.backfill_state, "done")
            self.assertEqual(box.backfill_imported, 30)
            self.assertEqual(env["mail.message"].search_count(
                [("model", "=", "res.partner"), ("res_id", "=", partner.id),
                 ("message_type", "=", "email")]), 30)
            cr.execute("""
                SELECT done, remaining FROM ir_cron_progress
                 WHERE cron_id = %s AND id > %s ORDER BY id
            """, (cron.id, progress_before))
            progress = cr.fetchall()
            # 1 poll + count/scan steps of 10 + 8 import batches of 4 ... each one
            # callback reporting what it did and what is left.
            self.assertGreater(len(progress), 10, progress)
            self.assertTrue(all(done > 0 for done, _remaining in progress[:-1]), progress)
            self.assertTrue(any(remaining > 0 for _done, remaining in progress))
            self.assertEqual(progress[-1][1], 0, "the last callback reports nothing left")
            self.assertGreater(runs, 1, "the job came back by itself (partially done)")
