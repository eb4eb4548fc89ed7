"""Who sees and does what: reps their own mailboxes, managers all of them."""
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import MailsyncCase


@tagged("post_install", "-at_install")
class TestSecurity(MailsyncCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rig_user = cls.rig.add_user()
        cls.rig_user2 = cls.rig.add_user()

    def setUp(self):
        super().setUp()
        self.mailbox = self._create_rig_mailbox(self.user_rep, self.rig_user)
        self.mailbox2 = self._create_rig_mailbox(self.user_rep2, self.rig_user2)
        for mailbox in self.mailbox | self.mailbox2:
            mailbox.action_test_connection()
            self.assertEqual(mailbox.state, "connected", mailbox.last_error)

    # ------------------------------------------------------------------ rep

    def test_rep_sees_only_own_records(self):
        env = self.env(user=self.user_rep)
        self.assertEqual(env["mailsync.mailbox"].search([]), self.mailbox)
        self.assertEqual(env["mailsync.folder"].search([]), self.mailbox.folder_ids)
        self.assertEqual(env["mailsync.log"].search([]), self.mailbox.log_ids)
        self.assertTrue(self.mailbox.folder_ids and self.mailbox.log_ids)
        self.assertEqual(env["mailsync.mailbox"].search_count([("user_id", "=", self.user_rep2.id)]), 0)
        # The mailbox form's data loads for the owner.
        self.mailbox.with_user(self.user_rep).web_read({
            "name": {}, "state": {}, "connection_report_html": {},
            "folder_ids": {"fields": {"path": {}, "role": {}, "sync_enabled": {}}},
            "log_ids": {"fields": {"message": {}, "outcome": {}}},
        })

    def test_rep_cannot_read_or_write_others(self):
        mailbox2 = self.mailbox2.with_user(self.user_rep)
        with self.assertRaises(AccessError):
            mailbox2.read(["name"])
        with self.assertRaises(AccessError):
            mailbox2.write({"name": "mine now"})
        with self.assertRaises(AccessError):
            mailbox2.unlink()
        with self.assertRaises(AccessError):
            mailbox2.action_test_connection()
        with self.assertRaises(AccessError):
            mailbox2.action_refresh_folders()
        folder2 = self.mailbox2.folder_ids[0].with_user(self.user_rep)
        with self.assertRaises(AccessError):
            folder2.read(["path"])
        with self.assertRaises(AccessError):
            folder2.write({"sync_enabled": True})
        with self.assertRaises(AccessError):
            self.mailbox2.log_ids[0].with_user(self.user_rep).read(["message"])

    def test_rep_cannot_create_for_someone_else_nor_give_away(self):
        Mailbox = self.env["mailsync.mailbox"].with_user(self.user_rep)
        with self.assertRaises(AccessError):
            Mailbox.create({"email": "x@rig.test", "user_id": self.user_rep2.id})
        own = Mailbox.create({"email": "own@rig.test"})
        self.assertEqual(own.user_id, self.user_rep, "the owner defaults to the current user")
        with self.assertRaises(AccessError):
            own.write({"user_id": self.user_rep2.id})

    def test_rep_manages_own_mailbox(self):
        mailbox = self.mailbox.with_user(self.user_rep)
        mailbox.write({"name": "My box", "debug_logging": True})
        mailbox.action_test_connection()
        mailbox.action_refresh_folders()
        self.assertEqual(mailbox.state, "connected")
        mailbox.folder_ids.filtered(lambda f: f.role == "archive").sync_enabled = True
        # Folders come from the server and the log is written by the sync only.
        with self.assertRaises(AccessError):
            self.env["mailsync.folder"].with_user(self.user_rep).create(
                {"mailbox_id": self.mailbox.id, "path": "Invented"})
        with self.assertRaises(AccessError):
            mailbox.folder_ids[0].unlink()
        with self.assertRaises(AccessError):
            self.env["mailsync.log"].with_user(self.user_rep).create(
                {"mailbox_id": self.mailbox.id, "operation": "fetch", "message": "forged"})
        with self.assertRaises(AccessError):
            mailbox.log_ids[0].write({"message": "rewritten"})
        with self.assertRaises(AccessError):
            mailbox.log_ids[0].unlink()
        mailbox.unlink()

    # ------------------------------------------------------------------ manager

    def test_manager_sees_and_edits_all(self):
        env = self.env(user=self.user_manager)
        mailboxes = env["mailsync.mailbox"].search([])
        self.assertIn(self.mailbox, mailboxes)
        self.assertIn(self.mailbox2, mailboxes)
        folders = env["mailsync.folder"].search([])
        self.assertLessEqual(self.mailbox.folder_ids | self.mailbox2.folder_ids, folders)
        logs = env["mailsync.log"].search([])
        self.assertLessEqual(self.mailbox.log_ids | self.mailbox2.log_ids, logs)

        mailbox2 = self.mailbox2.with_user(self.user_manager)
        mailbox2.write({"name": "Edited by manager", "user_id": self.user_rep.id})
        self.assertEqual(self.mailbox2.user_id, self.user_rep)
        mailbox2.action_test_connection()
        self.assertEqual(mailbox2.state, "connected")
        mailbox2.folder_ids[0].sync_enabled = False
        self.assertEqual(env["mailsync.folder"].search([("mailbox_id", "=", mailbox2.id)]).mapped("user_id"),
                         self.user_rep, "folders follow their mailbox's new owner")

    # ------------------------------------------------------------------ menus and settings

    def test_menus(self):
        root = self.env.ref("imap_sent_sync.menu_mailsync_root")
        manager_only = [self.env.ref(f"imap_sent_sync.{xmlid}") for xmlid in (
            "menu_mailsync_mailbox_all", "menu_mailsync_folder", "menu_mailsync_log")]
        rep_menus = self.env["ir.ui.menu"].with_user(self.user_rep)._visible_menu_ids()
        manager_menus = self.env["ir.ui.menu"].with_user(self.user_manager)._visible_menu_ids()
        self.assertIn(root.id, rep_menus)
        self.assertIn(self.env.ref("imap_sent_sync.menu_mailsync_mailbox_my").id, rep_menus)
        for menu in manager_only:
            self.assertNotIn(menu.id, rep_menus)
            self.assertIn(menu.id, manager_menus)

    def test_my_mailboxes_action_shows_own_even_to_manager(self):
        action = self.env.ref("imap_sent_sync.action_mailsync_mailbox_my")
        own = self._create_rig_mailbox(self.user_manager, self.rig_user)
        domain = [("user_id", "=", self.user_manager.id)]  # the action's domain with uid evaluated
        self.assertIn("uid", action.domain)
        self.assertEqual(self.env["mailsync.mailbox"].with_user(self.user_manager).search(domain), own)

    def test_every_internal_user_setting(self):
        group_user = self.env.ref("base.group_user")
        group_mailsync = self.env.ref("imap_sent_sync.group_mailsync_user")
        settings = self.env["res.config.settings"].create({})
        self.assertTrue(settings.group_mailsync_all_users, "on by default after install")
        self.assertIn(group_mailsync, group_user.implied_ids)

        settings.group_mailsync_all_users = False
        settings.execute()
        plain = self.env["res.users"].create({
            "name": "Plain Employee", "login": "plain_employee",
            "groups_id": [(6, 0, [group_user.id])],
        })
        self.assertFalse(plain.has_group("imap_sent_sync.group_mailsync_user"))
        with self.assertRaises(AccessError):
            self.env["mailsync.mailbox"].with_user(plain).search([])
        self.assertTrue(self.user_manager.has_group("imap_sent_sync.group_mailsync_manager"),
                        "managers keep their access")
        # As everywhere in Odoo Settings, users who had the group only as
        # internal users lose it too; a manager gives it back per user.

        settings = self.env["res.config.settings"].create({"group_mailsync_all_users": True})
        settings.execute()
        self.assertTrue(plain.has_group("imap_sent_sync.group_mailsync_user"))
