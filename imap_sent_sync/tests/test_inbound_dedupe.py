"""One chatter entry per record and Message-ID, one link per server copy."""
from odoo.tests import tagged

from .inbound_common import InboundCase, make_mail, message_id_of


@tagged("post_install", "-at_install")
class TestInboundDedupe(InboundCase):

    def _links(self, mailbox):
        return self.env["mailsync.link"].search([("mailbox_id", "=", mailbox.id)])

    def test_same_message_in_several_folders(self):
        mailbox, rig_user = self._connected_mailbox()
        mailbox.folder_ids.filtered(lambda f: f.path == "Archive").sync_enabled = True
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        raw = make_mail(jane.email, rig_user.address, "filed twice")
        self.rig.append(rig_user, "INBOX", raw)
        self.rig.append(rig_user, "Archive", raw)
        self._backfill(mailbox)
        entry = self._entries(jane)
        self.assertEqual(len(entry), 1)
        links = self._links(mailbox)
        self.assertEqual(sorted(links.folder_id.mapped("path")), ["Archive", "INBOX"])
        self.assertEqual(links.mail_message_ids, entry)
        self.assertEqual(set(links.mapped("state")), {"synced"})

    def test_gmail_all_mail_and_label_copies(self):
        mailbox, rig_user = self._connected_mailbox(layout="gmail")
        for folder in mailbox.folder_ids:
            folder.sync_enabled = folder.path in ("INBOX", "[Gmail]/Sent Mail", "[Gmail]/All Mail",
                                                  "[Gmail]/Important")
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        bob = self._contact("%s@example.com" % self._uniq("bob"))
        incoming = make_mail(jane.email, rig_user.address, "in", cc=bob.email)
        outgoing = make_mail(rig_user.address, jane.email, "out")
        for folder in ("INBOX", "[Gmail]/All Mail", "[Gmail]/Important"):
            self.rig.append(rig_user, folder, incoming)
        for folder in ("[Gmail]/Sent Mail", "[Gmail]/All Mail"):
            self.rig.append(rig_user, folder, outgoing)
        self._backfill(mailbox)
        self.assertEqual(sorted(self._entries(jane).mapped("subject")), ["in", "out"])
        self.assertEqual(self._entries(bob).mapped("subject"), ["in"])
        links = self._links(mailbox)
        self.assertEqual(len(links), 5, "one link per server copy")
        incoming_links = links.filtered(lambda l: l.message_id in message_id_of(incoming))
        self.assertEqual(len(incoming_links), 3)
        self.assertEqual(len(incoming_links.mail_message_ids), 2, "jane's and bob's entries")

    def test_two_reps_mailboxes_share_the_entries(self):
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        box_a, rig_a = self._connected_mailbox(user=self.user_rep)
        box_b, rig_b = self._connected_mailbox(user=self.user_rep2)
        raw = make_mail(jane.email, "%s, %s" % (rig_a.address, rig_b.address), "to both reps")
        self.rig.append(rig_a, "INBOX", raw)
        self.rig.append(rig_b, "INBOX", raw)
        self._backfill(box_a)
        self._backfill(box_b)
        entry = self._entries(jane)
        self.assertEqual(len(entry), 1)
        self.assertEqual(self._links(box_a).mail_message_ids, entry)
        self.assertEqual(self._links(box_b).mail_message_ids, entry)

    def test_mail_sent_from_odoo_is_recognised(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        posted = jane.message_post(body="Sent from the chatter", subject="from odoo",
                                   message_type="comment", subtype_xmlid="mail.mt_comment")
        raw = make_mail(rig_user.address, jane.email, "from odoo", msgid=posted.message_id)
        self.rig.append(rig_user, "Sent", raw)
        self._backfill(mailbox)
        self.assertFalse(self._entries(jane), "no second (email) entry next to the posted one")
        self.assertEqual(self.Message.search_count([("model", "=", "res.partner"),
                                                    ("res_id", "=", jane.id),
                                                    ("message_id", "=", posted.message_id)]), 1)
        self.assertEqual(self._links(mailbox).mail_message_ids, posted,
                         "the Sent copy links to the message Odoo sent")

    def test_message_without_message_id_gets_a_stable_identity(self):
        mailbox, rig_user = self._connected_mailbox()
        mailbox.folder_ids.filtered(lambda f: f.path == "Archive").sync_enabled = True
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        raw = make_mail(jane.email, rig_user.address, "anonymous", msgid=False, body="no id here")
        self.rig.append(rig_user, "INBOX", raw)
        self.rig.append(rig_user, "Archive", raw)
        self._backfill(mailbox)
        entry = self._entries(jane)
        self.assertEqual(len(entry), 1)
        self.assertTrue(entry.message_id.endswith("@imap-sent-sync.invalid>"), entry.message_id)
        self.assertEqual(len(self._links(mailbox)), 2)
        # Restart from scratch: the same synthetic id, nothing imported twice.
        self._backfill(mailbox)
        self.assertEqual(self._entries(jane), entry)
        self.assertEqual(len(self._links(mailbox)), 2)

    def test_rerunning_backfill_and_polls_imports_nothing_twice(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        self.rig.append_many(rig_user, "INBOX", [
            make_mail(jane.email, rig_user.address, "old %d" % i) for i in range(4)])
        self._backfill(mailbox)
        self.rig.append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "new"))
        for _round in range(2):
            mailbox.action_sync_now()
            self._sync(mailbox)
            self._backfill(mailbox)
        self.assertEqual(len(self._entries(jane)), 5)
        self.assertEqual(len(self._links(mailbox)), 5)
        self.assertFalse(self.env["mailsync.link"].search(
            [("mailbox_id", "=", mailbox.id), ("state", "=", "pending")]))
