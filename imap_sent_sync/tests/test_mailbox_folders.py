"""Folder discovery into folder records, and the user's folder selection."""
from odoo.tests import Form, tagged

from .common import MailsyncCase


@tagged("post_install", "-at_install")
class TestMailboxFolders(MailsyncCase):

    def _connected_mailbox(self, layout="standard"):
        rig_user = self.rig.add_user(layout=layout)
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user)
        mailbox.action_test_connection()
        self.assertEqual(mailbox.state, "connected", mailbox.last_error)
        return mailbox, rig_user

    def _folder(self, mailbox, path):
        folder = mailbox.folder_ids.filtered(lambda f: f.path == path)
        self.assertEqual(len(folder), 1, path)
        return folder

    def test_default_selection_is_inbox_and_sent(self):
        for layout, sent in (("standard", "Sent"), ("gmail", "[Gmail]/Sent Mail"),
                             ("outlook", "Sent Items")):
            mailbox, _rig_user = self._connected_mailbox(layout)
            self.assertEqual(sorted(mailbox.folder_ids.filtered("sync_enabled").mapped("path")),
                             sorted(["INBOX", sent]), layout)
            self.assertEqual(mailbox.folder_sync_count, 2)
            # Inbox and Sent are listed first.
            self.assertEqual(mailbox.folder_ids[:2].mapped("role"), ["inbox", "sent"])

    def test_selection_and_corrected_role_survive_rediscovery(self):
        mailbox, rig_user = self._connected_mailbox()
        archive = self._folder(mailbox, "Archive")
        sent = self._folder(mailbox, "Sent")
        junk = self._folder(mailbox, "Junk")
        # The rep toggles folders and corrects a role, through the form as in the UI.
        with Form(mailbox.with_user(self.user_rep)) as form:
            for index in range(len(form.folder_ids)):
                with form.folder_ids.edit(index) as line:
                    if line.path == "Archive":
                        line.sync_enabled = True
                    elif line.path == "Sent":
                        line.sync_enabled = False
                    elif line.path == "Junk":
                        line.role = "other"
        sent.write({"uidvalidity": "1234", "last_uid": 42, "highestmodseq": "99"})

        mailbox.action_test_connection()
        mailbox.action_refresh_folders()

        self.assertTrue(archive.sync_enabled)
        self.assertFalse(sent.sync_enabled)
        self.assertEqual(junk.role, "other", "the user's role is kept")
        self.assertEqual(junk.role_detected, "junk")
        self.assertEqual((sent.uidvalidity, sent.last_uid, sent.highestmodseq), ("1234", 42, "99"),
                         "rediscovery never resets the sync state")
        self.assertEqual(len(mailbox.folder_ids), 6, "no duplicate folder records")

    def test_new_and_vanished_folders(self):
        mailbox, rig_user = self._connected_mailbox()
        archive = self._folder(mailbox, "Archive")
        archive.write({"sync_enabled": True, "uidvalidity": "77", "last_uid": 5})
        with self.rig.imap_client(rig_user) as client:
            client.create_folder("Projects")
            client.delete_folder("Archive")

        action = mailbox.action_refresh_folders()
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn("1 new", action["params"]["message"])
        projects = self._folder(mailbox, "Projects")
        self.assertEqual(projects.role, "other")
        self.assertFalse(projects.sync_enabled, "only Inbox and Sent are selected by default")
        self.assertFalse(archive.exists_on_server)
        self.assertEqual((archive.uidvalidity, archive.last_uid, archive.sync_enabled), ("77", 5, True),
                         "a vanished folder keeps its state in case it comes back")
        log = mailbox.log_ids.filtered(lambda line: line.operation == "folders")
        self.assertEqual(log.outcome, "success")

        with self.rig.imap_client(rig_user) as client:
            client.create_folder("Archive")
        mailbox.action_refresh_folders()
        self.assertTrue(archive.exists_on_server)
        self.assertEqual(self._folder(mailbox, "Archive"), archive)

    def test_failed_test_keeps_folders(self):
        mailbox, rig_user = self._connected_mailbox()
        mailbox.secret = "wrong password"
        mailbox.action_test_connection()
        self.assertEqual(mailbox.state, "error")
        self.assertTrue(all(mailbox.folder_ids.mapped("exists_on_server")),
                        "a test that could not list folders says nothing about them")

    def test_refresh_failure_is_logged_and_reported(self):
        mailbox, rig_user = self._connected_mailbox()
        mailbox.imap_port = self.rig.closed_port()
        action = mailbox.action_refresh_folders()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("refused", action["params"]["message"])
        log = mailbox.log_ids.filtered(lambda line: line.operation == "folders")
        self.assertEqual(log.outcome, "failure")
        self.assertTrue(all(mailbox.folder_ids.mapped("exists_on_server")))

    def test_non_ascii_folder_round_trip(self):
        rig_user = self.rig.add_user()
        path = "Clients/Soci\u00e9t\u00e9 G\u00e9n\u00e9rale \u2013 \u65e5\u672c & Co"
        with self.rig.imap_client(rig_user) as client:
            client.create_folder("Clients")
            client.create_folder(path)  # imapclient encodes to modified UTF-7
            raw_names = [name for _flags, _delim, name in client.list_folders()]
            client.folder_encode = False
            encoded = [name for _flags, _delim, name in client.list_folders()]
        self.assertIn(path, raw_names)
        self.assertNotIn(path.encode(), encoded, "the server stores modified UTF-7, not UTF-8")

        mailbox = self._create_rig_mailbox(self.user_rep, rig_user)
        mailbox.action_test_connection()
        folder = self._folder(mailbox, path)
        self.assertEqual(folder.name, "Soci\u00e9t\u00e9 G\u00e9n\u00e9rale \u2013 \u65e5\u672c & Co")
        self.assertEqual(folder.delimiter, "/")
        self.assertEqual(folder.role, "other")
        folder.with_user(self.user_rep).sync_enabled = True

        # The stored path addresses the same server folder again.
        uid = self.rig.append(rig_user, folder.path, b"Subject: hi\r\n\r\nbody\r\n")
        self.assertEqual(self.rig.folder_uids(rig_user, folder.path), [uid])
        mailbox.action_refresh_folders()
        self.assertEqual(self._folder(mailbox, path), folder)
        self.assertTrue(folder.sync_enabled and folder.exists_on_server)
