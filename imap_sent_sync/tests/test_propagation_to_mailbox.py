"""Odoo -> mailbox: deleting or archiving a synced email in Odoo (issue 5,
acceptance 1, 2, 5, 6), on the standard, Gmail-like and Outlook-like layouts."""
import time

from odoo.addons.mail.tools.discuss import Store
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .propagation_common import ARCHIVE, TRASH, PropagationCase


@tagged("post_install", "-at_install")
class TestDeleteInOdoo(PropagationCase):

    def _delete_and_process(self, layout, use_move=None):
        mailbox, rig_user = self._mailbox(layout)
        trash = TRASH[layout]
        folders = ["INBOX", rig_user.sent_folder]
        seeded = self._bystanders(rig_user, folders + [trash])
        # One email filed in INBOX and in Sent: two server copies, one entry.
        mid, entry = self._receive(mailbox, rig_user, "two copies", folders=folders)
        keep_mid, keep = self._receive(mailbox, rig_user, "stays")
        self.assertEqual(len(self._links(mailbox, mid)), 2)

        started = time.monotonic()
        entry.with_user(self.user_rep).unlink()
        self.assertLess(time.monotonic() - started, 2.0)
        actions = self._actions(mailbox)
        self.assertEqual(len(actions), 2, "one move per linked server copy")
        self.assertEqual(set(actions.mapped("state")), {"queued"}, "nothing done in the request")
        self.assertEqual(self._where(rig_user, mid), {"INBOX": 1, rig_user.sent_folder: 1})

        self.assertEqual(self._process(use_move=use_move), 2)
        self.assertEqual(set(actions.mapped("state")), {"done"})
        self.assertEqual(sorted(actions.mapped("result")), ["already_there", "moved"])
        self.assertEqual(set(actions.mapped("target_path")), {trash})
        self.assertEqual(self._where(rig_user, mid), {trash: 1},
                         "every copy left its folder; the Trash holds it once")
        self.assertEqual(set(self._links(mailbox, mid).mapped("state")), {"deleted"})
        self.assertTrue(all(self._links(mailbox, mid).mapped("deleted_in_odoo")))
        self.assertEqual(self._where(rig_user, keep_mid), {"INBOX": 1})
        self.assertTrue(keep.exists())
        self._assert_bystanders(rig_user, seeded)
        log = mailbox.log_ids.filtered(lambda l: l.operation == "delete")
        self.assertTrue(log, "the move is in the mailbox's audit log")
        return mailbox, rig_user, mid

    def test_delete_standard_layout(self):
        self._delete_and_process("standard")

    def test_delete_gmail_layout_goes_to_gmail_trash(self):
        mailbox, rig_user = self._mailbox("gmail")
        seeded = self._bystanders(rig_user, ["INBOX", "[Gmail]/Trash", "[Gmail]/All Mail"])
        mid, entry = self._receive(mailbox, rig_user, "gmail delete", deliver=True)
        self.assertEqual(self._where(rig_user, mid), {"INBOX": 1, "[Gmail]/All Mail": 1})
        entry.with_user(self.user_rep).unlink()
        self._process()
        self.assertEqual(self._actions(mailbox).target_path, "[Gmail]/Trash")
        where = self._where(rig_user, mid)
        self.assertEqual(where.get("[Gmail]/Trash"), 1)
        self.assertNotIn("INBOX", where)
        self._assert_bystanders(rig_user, seeded)

    def test_delete_outlook_layout_goes_to_deleted_items(self):
        self._delete_and_process("outlook")

    def test_delete_without_move_uses_uid_expunge_of_our_uids_only(self):
        # Dovecot offers MOVE; the UID COPY + STORE + UID EXPUNGE path is the
        # same code a server without MOVE gets, chosen explicitly here.
        mailbox, rig_user, mid = self._delete_and_process("standard", use_move=False)
        self.assertIn("moved", self._actions(mailbox).mapped("result"))

    def test_chatter_delete_action(self):
        mailbox, rig_user = self._mailbox("standard")
        mid, entry = self._receive(mailbox, rig_user, "from the chatter")
        # The chatter learns which messages are synced emails (its actions show on those).
        data = Store(entry.with_user(self.user_rep), for_current_user=True).get_result()
        [message] = [m for m in data["mail.message"] if m["id"] == entry.id]
        self.assertTrue(message["mailsync_synced"])
        self.assertFalse(message["mailsync_archived"])
        entry.with_user(self.user_rep).action_mailsync_delete()
        self.assertFalse(entry.exists())
        self._process()
        self.assertEqual(self._where(rig_user, mid), {"Trash": 1})

    def test_delete_with_rule_off_keeps_the_server_copy_and_never_reimports(self):
        mailbox, rig_user = self._mailbox("standard", propagate_delete_to_mailbox=False)
        mid, entry = self._receive(mailbox, rig_user, "rule off")
        entry.unlink()
        self.assertFalse(self._actions(mailbox))
        self._process()
        self.assertEqual(self._where(rig_user, mid), {"INBOX": 1})
        link = self._links(mailbox, mid)
        self.assertTrue(link.deleted_in_odoo)
        self.assertEqual(link.state, "synced", "the server copy is still there")
        # The same email filed again (restored from a backup, another folder...):
        # deleted in Odoo means never imported again.
        self.rig.append(rig_user, "INBOX", self.rig.fetch_messages(rig_user, "INBOX")[link.uid])
        self._poll(mailbox)
        self.assertFalse(self._entries(self.contact, mid))

    def test_deleting_a_record_is_not_deleting_its_emails_in_the_mailbox(self):
        mailbox, rig_user = self._mailbox("standard")
        mid, _entry = self._receive(mailbox, rig_user, "contact removed")
        self.contact.unlink()
        self.assertFalse(self._actions(mailbox))
        self.assertEqual(self._where(rig_user, mid), {"INBOX": 1})

    def test_delete_is_refused_without_access(self):
        mailbox, rig_user = self._mailbox("standard")
        _mid, entry = self._receive(mailbox, rig_user, "not yours")
        portal = self.env["res.users"].create({
            "name": "Portal Pat", "login": self._uniq("portal"),
            "groups_id": [(6, 0, [self.env.ref("base.group_portal").id])]})
        with self.assertRaises(AccessError):
            entry.with_user(portal).unlink()
        self.assertFalse(self._actions(mailbox))
        with self.assertRaises(UserError):
            self.env["mail.message"].create({
                "body": "a note", "model": "res.partner", "res_id": self.contact.id,
            }).action_mailsync_delete()


@tagged("post_install", "-at_install")
class TestArchiveInOdoo(PropagationCase):

    def _archive(self, layout, **kwargs):
        mailbox, rig_user = self._mailbox(layout)
        archive = ARCHIVE[layout]
        seeded = self._bystanders(rig_user, ["INBOX", archive])
        mid, entry = self._receive(mailbox, rig_user, "archive me", **kwargs)
        other_mid, other = self._receive(mailbox, rig_user, "stay in the inbox")
        entry.with_user(self.user_rep).action_mailsync_archive()
        # Hidden from the chatter, kept and searchable.
        self.assertTrue(entry.mailsync_archived)
        fetch = self.env["mail.message"]._message_fetch(
            [("model", "=", "res.partner"), ("res_id", "=", self.contact.id)])["messages"]
        self.assertNotIn(entry, fetch)
        self.assertIn(other, fetch)
        found = self.env["mail.message"]._message_fetch(
            [("model", "=", "res.partner"), ("res_id", "=", self.contact.id)],
            search_term="archive me")["messages"]
        self.assertIn(entry, found)
        self.assertIn(entry, self.env["mail.message"].search([("mailsync_archived", "=", True)]))

        self._process()
        action = self._actions(mailbox)
        self.assertEqual((action.kind, action.state, action.target_path),
                         ("archive", "done", archive))
        self.assertEqual(self._where(rig_user, mid).get(archive), 1, "in the Archive, once")
        self.assertNotIn("INBOX", self._where(rig_user, mid))
        self.assertEqual(self._where(rig_user, other_mid), {"INBOX": 1})
        self.assertEqual(self._links(mailbox, mid).state, "archived")
        self._assert_bystanders(rig_user, seeded)
        # Unarchive shows it again; the mailbox is left as it is.
        entry.with_user(self.user_rep).action_mailsync_unarchive()
        self.assertIn(entry, self.env["mail.message"]._message_fetch(
            [("model", "=", "res.partner"), ("res_id", "=", self.contact.id)])["messages"])
        return mailbox, rig_user, mid

    def test_archive_standard_layout(self):
        self._archive("standard")

    def test_archive_outlook_layout(self):
        self._archive("outlook")

    def test_archive_gmail_layout_leaves_inbox_stays_in_all_mail(self):
        self._archive("gmail", deliver=True)

    def test_archive_folder_created_when_missing(self):
        rig_user = self.rig.add_user()
        with self._phone(rig_user) as phone:
            phone.delete_folder("Archive")
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user)
        mailbox.action_test_connection()
        self.assertFalse(mailbox.folder_ids.filtered(lambda f: f.role == "archive"))
        self._poll(mailbox)
        self.contact = self._contact("%s@example.com" % self._uniq("jane"))
        mid, entry = self._receive(mailbox, rig_user, "first archive ever")
        entry.action_mailsync_archive()
        self._process()
        self.assertIn("Archive", self.rig.list_folders(rig_user))
        self.assertEqual(self._where(rig_user, mid), {"Archive": 1})
        folder = mailbox.folder_ids.filtered(lambda f: f.path == "Archive")
        self.assertEqual(folder.role, "archive")
        self.assertTrue(mailbox.log_ids.filtered(lambda l: "created" in (l.message or "")))

    def test_archive_with_rule_off_only_hides_in_odoo(self):
        mailbox, rig_user = self._mailbox("standard", propagate_archive_to_mailbox=False)
        mid, entry = self._receive(mailbox, rig_user, "odoo only")
        entry.action_mailsync_archive()
        self.assertTrue(entry.mailsync_archived)
        self.assertFalse(self._actions(mailbox))
        self.assertEqual(self._where(rig_user, mid), {"INBOX": 1})

    def test_only_inbox_copies_are_archived(self):
        mailbox, rig_user = self._mailbox("standard")
        mid, entry = self._receive(mailbox, rig_user, "in sent only", folders=("Sent",))
        entry.action_mailsync_archive()
        self.assertFalse(self._actions(mailbox), "archiving means leaving the Inbox")
        self.assertEqual(self._where(rig_user, mid), {"Sent": 1})

    def test_delete_after_archive_finds_the_archived_copy(self):
        mailbox, rig_user, mid = self._archive("standard")
        entry = self._entries(self.contact, mid)
        entry.unlink()
        self._process()
        delete = self._actions(mailbox).filtered(lambda a: a.kind == "delete")
        self.assertEqual((delete.state, delete.result), ("done", "moved"))
        self.assertEqual(self._where(rig_user, mid), {"Trash": 1})
