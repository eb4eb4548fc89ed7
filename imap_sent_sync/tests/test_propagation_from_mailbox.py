"""Mailbox -> Odoo: mail deleted, archived or expunged in another mail app
(issue 5, acceptance 3, 4, 6), on the standard, Gmail-like and Outlook-like layouts."""
from odoo.addons.imap_sent_sync.models import mailsync_sync
from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged

from .propagation_common import ARCHIVE, DELETED, TRASH, PropagationCase


@tagged("post_install", "-at_install")
class TestChangesInTheMailbox(PropagationCase):

    def _phone_changes(self, mailbox, rig_user, layout):
        """Four synced emails; on the phone: one to the Trash, one archived,
        one expunged for good, one left alone. Returns {name: (mid, entry)}."""
        deliver = layout == "gmail"
        mails = {name: self._receive(mailbox, rig_user, name, deliver=deliver)
                 for name in ("trashed", "archived", "expunged", "kept")}
        self.seeded = self._bystanders(rig_user, ["INBOX", TRASH[layout], ARCHIVE[layout]])
        uid = {name: self._uid(rig_user, "INBOX", mid) for name, (mid, _e) in mails.items()}
        with self._phone(rig_user) as phone:
            phone.select_folder("INBOX")
            phone.move([uid["trashed"]], TRASH[layout])
            if layout == "gmail":
                # Gmail: trash and delete-forever take the message out of All
                # Mail too; archiving only drops the INBOX label.
                phone.select_folder("[Gmail]/All Mail")
                gone = [self._uid(rig_user, "[Gmail]/All Mail", mails[n][0])
                        for n in ("trashed", "expunged")]
                phone.add_flags(gone, [DELETED], silent=True)
                phone.uid_expunge(gone)
                phone.select_folder("INBOX")
                phone.add_flags([uid["archived"]], [DELETED], silent=True)
                phone.uid_expunge([uid["archived"]])
            else:
                phone.move([uid["archived"]], ARCHIVE[layout])
            phone.add_flags([uid["expunged"]], [DELETED], silent=True)
            phone.uid_expunge([uid["expunged"]])
        return mails

    def _rules_off(self, layout):
        mailbox, rig_user = self._mailbox(layout)   # defaults: (a) and (c) off
        self.assertFalse(mailbox.propagate_delete_to_odoo or mailbox.propagate_archive_to_odoo)
        mails = self._phone_changes(mailbox, rig_user, layout)
        self._poll(mailbox)
        for name, (mid, entry) in mails.items():
            self.assertTrue(entry.exists(), "%s: history kept" % name)
            self.assertFalse(entry.mailsync_archived, "%s: still in the chatter" % name)
        states = {name: self._links(mailbox, mid).state for name, (mid, _e) in mails.items()}
        self.assertEqual(states, {"trashed": "deleted", "archived": "archived",
                                  "expunged": "deleted", "kept": "synced"},
                         "the link records the server state")
        self.assertFalse(self._actions(mailbox), "nothing is sent back to the server")
        log = mailbox.log_ids.filtered(lambda l: "left INBOX" in (l.message or ""))
        self.assertIn("(vanished)", log.message, "found with QRESYNC VANISHED")
        self._assert_bystanders(rig_user, self.seeded)

    def _rules_on(self, layout):
        mailbox, rig_user = self._mailbox(layout, propagate_delete_to_odoo=True,
                                          propagate_archive_to_odoo=True)
        mails = self._phone_changes(mailbox, rig_user, layout)
        self._poll(mailbox)
        self.assertFalse(mails["trashed"][1].exists())
        self.assertFalse(mails["expunged"][1].exists())
        archived = mails["archived"][1]
        self.assertTrue(archived.exists() and archived.mailsync_archived)
        kept = mails["kept"][1]
        self.assertTrue(kept.exists() and not kept.mailsync_archived)
        chatter = self.env["mail.message"]._message_fetch(
            [("model", "=", "res.partner"), ("res_id", "=", self.contact.id)])["messages"]
        self.assertEqual(chatter.filtered(lambda m: m.message_type == "email"), kept,
                         "archived: hidden from the chatter")
        found = self.env["mail.message"]._message_fetch(
            [("model", "=", "res.partner"), ("res_id", "=", self.contact.id)],
            search_term="archived")["messages"]
        self.assertIn(archived, found, "archived: kept and searchable")
        self.assertFalse(self._actions(mailbox), "a server-side delete is not sent back")
        self._assert_bystanders(rig_user, self.seeded)
        # Nothing replays: the next polls change nothing more.
        self._poll(mailbox)
        self.assertTrue(archived.exists() and kept.exists())

    def test_rules_off_keep_history_standard(self):
        self._rules_off("standard")

    def test_rules_off_keep_history_gmail(self):
        self._rules_off("gmail")

    def test_rules_off_keep_history_outlook(self):
        self._rules_off("outlook")

    def test_rules_on_reflect_in_odoo_standard(self):
        self._rules_on("standard")

    def test_rules_on_reflect_in_odoo_gmail(self):
        self._rules_on("gmail")

    def test_rules_on_reflect_in_odoo_outlook(self):
        self._rules_on("outlook")

    def test_uid_comparison_without_qresync(self):
        """A server without CONDSTORE/QRESYNC: the linked UIDs are compared."""
        mailbox, rig_user = self._mailbox("standard", propagate_delete_to_odoo=True)
        mid, entry = self._receive(mailbox, rig_user, "expunged, no qresync")
        keep_mid, keep = self._receive(mailbox, rig_user, "kept, no qresync")
        with self._phone(rig_user) as phone:
            phone.select_folder("INBOX")
            uid = self._uid(rig_user, "INBOX", mid)
            phone.add_flags([uid], [DELETED], silent=True)
            phone.uid_expunge([uid])
        session = mailsync_sync._Session(mailbox)
        try:
            session.condstore = False
            inbox = mailbox.folder_ids.filtered(lambda f: f.path == "INBOX")
            inbox.removal_checked_at = False
            self.env["mailsync.sync"]._poll(mailbox, session, mailsync_sync.RunStats())
        finally:
            session.close()
        self.assertFalse(entry.exists())
        self.assertTrue(keep.exists())
        self.assertTrue(inbox.removal_checked_at)
        log = mailbox.log_ids.filtered(lambda l: "left INBOX" in (l.message or ""))
        self.assertIn("(uid-search)", log.message)

    def test_a_copy_left_elsewhere_keeps_the_entry(self):
        """The same email in INBOX and Sent: deleting one copy keeps it in Odoo."""
        mailbox, rig_user = self._mailbox("standard", propagate_delete_to_odoo=True,
                                          propagate_archive_to_odoo=True)
        mid, entry = self._receive(mailbox, rig_user, "two copies", folders=("INBOX", "Sent"))
        with self._phone(rig_user) as phone:
            phone.select_folder("INBOX")
            phone.move([self._uid(rig_user, "INBOX", mid)], "Trash")
        self._poll(mailbox)
        self.assertTrue(entry.exists())
        links = self._links(mailbox, mid)
        self.assertEqual(sorted(links.mapped("state")), ["deleted", "synced"])
        with self._phone(rig_user) as phone:
            phone.select_folder("Sent")
            phone.move([self._uid(rig_user, "Sent", mid)], "Trash")
        self._poll(mailbox)
        self.assertFalse(entry.exists(), "the last copy is gone: deleted in Odoo")

    def test_another_reps_copy_keeps_the_entry(self):
        mailbox, rig_user = self._mailbox("standard", propagate_delete_to_odoo=True)
        other_box, other_rig = self._connected_mailbox(user=self.user_rep2)
        self._poll(other_box)
        raw_mid, entry = self._receive(mailbox, rig_user, "to both reps")
        raw = self.rig.fetch_messages(rig_user, "INBOX")[self._uid(rig_user, "INBOX", raw_mid)]
        self.rig.append(other_rig, "INBOX", raw)
        self._poll(other_box)
        self.assertEqual(self._links(other_box, raw_mid).mail_message_ids, entry)
        with self._phone(rig_user) as phone:
            phone.select_folder("INBOX")
            phone.move([self._uid(rig_user, "INBOX", raw_mid)], "Trash")
        self._poll(mailbox)
        self.assertTrue(entry.exists(), "still in the other rep's mailbox")


@tagged("post_install", "-at_install")
class TestRetainHistory(PropagationCase):

    def test_retain_history_forbids_rule_a(self):
        company = self.env.company
        mailbox, rig_user = self._mailbox("standard", propagate_delete_to_odoo=True)
        company.mailsync_retain_history = True
        self.assertFalse(mailbox.propagate_delete_to_odoo, "switched off with compliance on")
        self.assertFalse(company.mailsync_delete_to_odoo)
        with self.assertRaises(ValidationError):
            mailbox.propagate_delete_to_odoo = True
        with self.assertRaises(ValidationError):
            company.mailsync_delete_to_odoo = True
        # And the history stays when mail is deleted in the mailbox.
        mid, entry = self._receive(mailbox, rig_user, "compliance")
        with self._phone(rig_user) as phone:
            phone.select_folder("INBOX")
            phone.move([self._uid(rig_user, "INBOX", mid)], "Trash")
        self._poll(mailbox)
        self.assertTrue(entry.exists())
        self.assertEqual(self._links(mailbox, mid).state, "deleted")

    def test_settings_defaults_and_compliance_switch(self):
        settings = Form(self.env["res.config.settings"])
        self.assertFalse(settings.mailsync_delete_to_odoo)
        self.assertTrue(settings.mailsync_delete_to_mailbox)
        self.assertFalse(settings.mailsync_archive_to_odoo)
        self.assertTrue(settings.mailsync_archive_to_mailbox)
        settings.mailsync_delete_to_odoo = True
        settings.mailsync_archive_to_mailbox = False
        settings.save().execute()
        mailbox, _rig_user = self._mailbox("standard")
        self.assertTrue(mailbox.propagate_delete_to_odoo, "company default applied")
        self.assertFalse(mailbox.propagate_archive_to_mailbox)
        settings = Form(self.env["res.config.settings"])
        settings.mailsync_retain_history = True
        self.assertFalse(settings.mailsync_delete_to_odoo, "compliance switches rule (a) off")
        settings.save().execute()
        self.assertTrue(self.env.company.mailsync_retain_history)
        self.assertFalse(mailbox.propagate_delete_to_odoo)
        form = Form(mailbox)
        self.assertTrue(form._view["fields"]["retain_history"])
        with self.assertRaises(AssertionError):  # read-only in the form
            form.propagate_delete_to_odoo = True
