"""Private mail leaves no trace; the server's flags never change."""
import os
import time

from odoo.tests import tagged
from odoo.tools import config

from .common import columns_containing
from .inbound_common import InboundCase, make_mail


@tagged("post_install", "-at_install")
class TestInboundPrivacy(InboundCase):

    def _files_containing(self, token, since):
        root = os.path.join(config.filestore(self.env.cr.dbname))
        hits = []
        for folder, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                if os.path.getmtime(path) >= since:
                    with open(path, "rb") as fh:
                        if token.encode() in fh.read():
                            hits.append(path)
        return hits

    def test_unmatched_mail_leaves_no_trace(self):
        started = time.time() - 1
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        token = "PRIVATE%s" % self._uniq("tok").replace("-", "")
        stranger = "%s@private.test" % token.lower()
        private = [
            make_mail(stranger, rig_user.address, "Subject %s" % token, body="Body %s" % token,
                      html="<p>%s</p>" % token,
                      attachments=[("%s.txt" % token, ("attached %s" % token).encode(), "text/plain")]),
            make_mail(rig_user.address, stranger, "Re: %s" % token, body="reply %s" % token,
                      msgid="<%s@private.test>" % token),
            make_mail(stranger, rig_user.address, "no id %s" % token, msgid=False),
        ]
        self.rig.append_many(rig_user, "INBOX", [private[0], private[2]])
        self.rig.append(rig_user, "Sent", private[1])
        # A matched message in the same batch: the sync really ran over them.
        self.rig.append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "public"))
        mailbox.action_preview_backfill()
        self._backfill(mailbox)
        # and the poll path
        self.rig.append(rig_user, "INBOX", make_mail(stranger, rig_user.address, "later %s" % token))
        mailbox.action_sync_now()
        self._sync(mailbox)
        self.assertEqual(self._entries(jane).mapped("subject"), ["public"])
        self.assertEqual(mailbox.backfill_total, 4)
        self.assertEqual(columns_containing(self.env, token), [])
        self.assertEqual(columns_containing(self.env, token.lower()), [])
        self.assertEqual(self._files_containing(token, started), [])
        self.assertEqual(len(self.env["mailsync.link"].search([("mailbox_id", "=", mailbox.id)])), 1)

    def test_flags_are_identical_after_backfill_and_poll(self):
        mailbox, rig_user = self._connected_mailbox()
        mailbox.folder_ids.filtered(lambda f: f.path == "Archive").sync_enabled = True
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        flag_sets = [(), (b"\\Seen",), (b"\\Flagged",), (b"\\Seen", b"\\Answered", b"$Label1"),
                     (b"customkeyword",)]
        for folder in ("INBOX", "Sent", "Archive"):
            for index, flags in enumerate(flag_sets):
                who = jane.email if index % 2 == 0 else "%s@nowhere.test" % self._uniq()
                self.rig.append(rig_user, folder, make_mail(who, rig_user.address, "%s %d" % (folder, index)),
                                flags=flags)

        def snapshot():
            return {folder: self.rig.fetch_flags(rig_user, folder)
                    for folder in ("INBOX", "Sent", "Archive")}

        before = snapshot()
        self.assertEqual(sum(b"\\Seen" in flags for flags in before["INBOX"].values()), 2)
        self._backfill(mailbox)
        self.assertEqual(len(self._entries(jane)), 9)
        self.assertEqual(snapshot(), before, "a full backfill changed no flag")
        for folder in ("INBOX", "Sent"):
            self.rig.append(rig_user, folder, make_mail(jane.email, rig_user.address, "new " + folder),
                            flags=(b"\\Flagged",))
        before = snapshot()
        mailbox.action_sync_now()
        self._sync(mailbox)
        self.assertEqual(len(self._entries(jane)), 11)
        self.assertEqual(snapshot(), before, "a poll changed no flag")
