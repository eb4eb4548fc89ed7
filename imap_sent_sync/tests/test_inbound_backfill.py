"""Backfill: window, newest first, batches, progress, preview, cron batching."""
from odoo.tests import tagged

from .inbound_common import InboundCase, make_mail


@tagged("post_install", "-at_install")
class TestInboundBackfill(InboundCase):

    def test_backfill_imports_window_mail_with_contacts(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"), "Jane")
        stranger = "%s@elsewhere.test" % self._uniq("x")
        raws = [
            make_mail(jane.email, rig_user.address, "recent from jane", date=self._days_ago(2)),
            make_mail(rig_user.address, jane.email, "sent to jane", date=self._days_ago(5)),
            make_mail(stranger, rig_user.address, "private", date=self._days_ago(3)),
            make_mail(jane.email, rig_user.address, "too old", date=self._days_ago(90)),
        ]
        self.rig.append(rig_user, "INBOX", raws[0], msg_time=self._days_ago(2))
        self.rig.append(rig_user, "Sent", raws[1], msg_time=self._days_ago(5))
        self.rig.append(rig_user, "INBOX", raws[2], msg_time=self._days_ago(3))
        self.rig.append(rig_user, "INBOX", raws[3], msg_time=self._days_ago(90))

        self._backfill(mailbox)

        entries = self._entries(jane)
        self.assertEqual(sorted(entries.mapped("subject")), ["recent from jane", "sent to jane"])
        self.assertEqual(mailbox.backfill_total, 3)
        self.assertEqual(mailbox.backfill_scanned, 3)
        self.assertEqual(mailbox.backfill_matched, 2)
        self.assertEqual(mailbox.backfill_imported, 2)
        self.assertEqual(mailbox.backfill_progress, 100.0)
        self.assertEqual(mailbox.link_count, 2)

    def test_newest_first_in_batches_with_chatter_in_date_order(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"), "Jane")
        days = [20, 3, 11, 7, 1, 15]   # INBOX and Sent interleaved in time
        for index, age in enumerate(days):
            folder = "INBOX" if index % 2 == 0 else "Sent"
            frm, to = ((jane.email, rig_user.address) if folder == "INBOX"
                       else (rig_user.address, jane.email))
            self.rig.append(rig_user, folder, make_mail(frm, to, "day-%02d" % age,
                                                        date=self._days_ago(age)),
                            msg_time=self._days_ago(age))
        mailbox.action_start_backfill()
        with self._batch_sizes(scan=2, import_=2):
            # first poll (cursors), count + 3 scan batches of 2 headers, end of scan
            crons = self.env["ir.cron"].search([("code", "=", "model._cron_sync_inbound()")])
            self.assertEqual(len(crons), 2)
            Trigger = self.env["ir.cron.trigger"]
            while mailbox.backfill_state == "scanning":
                triggers = {cron: Trigger.search_count([("cron_id", "=", cron.id)]) for cron in crons}
                self._sync(mailbox, max_steps=1)
            self.assertEqual(mailbox.backfill_state, "importing")
            self.assertEqual((mailbox.backfill_scanned, mailbox.backfill_matched), (6, 6))
            # The step that ended the scan called every inbound job to share the import.
            for cron in crons:
                self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), triggers[cron] + 1,
                                 cron.name)
            self.assertFalse(self._entries(jane), "the scan reads headers only")
            self._sync(mailbox, max_steps=1)
            # The first import batch holds the two most recent emails.
            self.assertEqual(sorted(self._entries(jane).mapped("subject")), ["day-01", "day-03"])
            self.assertEqual(mailbox.backfill_imported, 2)
            self.assertEqual(mailbox.backfill_progress, round(100 * (0.2 + 0.8 * 2 / 6), 1))
            stats = self._sync(mailbox)
        self.assertEqual(stats.steps, 3, "two more import batches, then the end")
        self.assertEqual(mailbox.backfill_state, "done")
        entries = self._entries(jane)
        self.assertEqual(len(entries), 6)
        # The chatter sorts by id: ids must follow the dates although the import
        # ran newest first.
        self.assertEqual(entries.sorted("id").mapped("subject"),
                         ["day-20", "day-15", "day-11", "day-07", "day-03", "day-01"])

    def test_window_days_global_default_and_per_mailbox_override(self):
        self.env["ir.config_parameter"].sudo().set_param("imap_sent_sync.backfill_days", "10")
        mailbox, rig_user = self._connected_mailbox()
        self.assertEqual(mailbox.backfill_days, 10)
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        for age in (5, 20, 45, 75):
            self.rig.append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "age %d" % age),
                            msg_time=self._days_ago(age))
        self._backfill(mailbox)
        self.assertEqual(self._entries(jane).mapped("subject"), ["age 5"])
        mailbox.backfill_days = 60
        self._backfill(mailbox)
        self.assertEqual(sorted(self._entries(jane).mapped("subject")), ["age 20", "age 45", "age 5"])
        other, _rig_user = self._connected_mailbox()
        self.env["ir.config_parameter"].sudo().set_param("imap_sent_sync.backfill_days", False)
        self.assertEqual(self._connected_mailbox()[0].backfill_days, 60, "global default is 60")
        self.assertEqual(other.backfill_days, 10)

    def test_preview_counts_without_importing(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        raws = [make_mail(jane.email, rig_user.address, "a"),
                make_mail("%s@nowhere.test" % self._uniq(), rig_user.address, "b"),
                make_mail(rig_user.address, jane.email, "c")]
        self.rig.append_many(rig_user, "INBOX", raws[:2])
        self.rig.append(rig_user, "Sent", raws[2])
        messages_before = self.Message.search_count([])
        mailbox.action_preview_backfill()
        self.assertEqual((mailbox.preview_total, mailbox.preview_matched), (3, 2))
        self.assertTrue(mailbox.preview_complete)
        self.assertEqual(self.Message.search_count([]), messages_before)
        self.assertFalse(self.env["mailsync.link"].search([("mailbox_id", "=", mailbox.id)]))
        self.assertEqual(mailbox.backfill_state, "none")

    def test_cron_reports_progress_and_start_triggers_it(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        self.rig.append_many(rig_user, "INBOX", [
            make_mail(jane.email, rig_user.address, "m%d" % i) for i in range(5)])
        cron = self.env.ref("imap_sent_sync.ir_cron_mailsync_inbound")
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        mailbox.action_start_backfill()
        self.assertEqual(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]),
                         triggers + 1)
        progress = self.env["ir.cron.progress"].create({"cron_id": cron.id})
        # Only this mailbox may be picked: others from other tests are not due here.
        self.env["mailsync.mailbox"].search([("id", "!=", mailbox.id)]).write({"active": False})
        self.env["mailsync.sync"].with_context(ir_cron_progress_id=progress.id)._run(commit=False)
        self.env["ir.cron"].with_context(ir_cron_progress_id=progress.id)._notify_progress(
            done=5, remaining=self.env["mailsync.sync"]._remaining_work())
        self.assertEqual(mailbox.backfill_state, "done")
        self.assertEqual(len(self._entries(jane)), 5)
        self.assertEqual(progress.remaining, 0)
