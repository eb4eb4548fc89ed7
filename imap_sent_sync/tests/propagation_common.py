"""Shared helpers of the propagation tests (issue 5): real Dovecot (mailrig),
real PostgreSQL and Odoo, no mocks.

Mail is imported by the inbound poll (not the backfill): the first sync of a
mailbox sets each folder's cursor, mail appended afterwards is "new" to the
next poll. Every test seeds *bystanders* next to the synced mail: messages of
the user that are not Odoo's business, two of them flagged \\Deleted (but not
expunged) by "another mail app", in every folder the test touches. They must
survive every operation unchanged (acceptance 6).
"""
from odoo.addons.imap_sent_sync.mailsync import server_actions

from .inbound_common import InboundCase, make_mail, message_id_of

DELETED = b"\\Deleted"
TRASH = {"standard": "Trash", "gmail": "[Gmail]/Trash", "outlook": "Deleted Items"}
ARCHIVE = {"standard": "Archive", "gmail": "[Gmail]/All Mail", "outlook": "Archive"}


class PropagationCase(InboundCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Deleting a chatter entry needs write access to its document (Odoo's
        # rule for mail.message unlink): the rep may edit contacts.
        cls.user_rep.groups_id = [(4, cls.env.ref("base.group_partner_manager").id)]

    def _mailbox(self, layout="standard", **rules):
        """A connected, polled-once mailbox with the given propagation rules."""
        mailbox, rig_user = self._connected_mailbox(layout=layout)
        if rules:
            mailbox.write(rules)
        self._poll(mailbox)  # sets the folder cursors: what arrives next is "new"
        self.contact = self._contact("%s@example.com" % self._uniq("jane"))
        return mailbox, rig_user

    def _poll(self, mailbox):
        mailbox.action_sync_now()
        return self._sync(mailbox)

    def _receive(self, mailbox, rig_user, subject, folders=("INBOX",), deliver=False):
        """Mail from the contact in ``folders`` (or LMTP-delivered: INBOX, and
        All Mail on the Gmail layout), imported by a poll. Returns (Message-ID, entry)."""
        raw = make_mail(self.contact.email, rig_user.address, subject)
        if deliver:
            self.rig.deliver(rig_user, raw, mail_from=self.contact.email)
        else:
            for folder in folders:
                self.rig.append(rig_user, folder, raw)
        self._poll(mailbox)
        mid = message_id_of(raw)
        entry = self._entries(self.contact, mid)
        self.assertEqual(len(entry), 1, "imported once")
        return mid, entry

    def _links(self, mailbox, mid=None):
        domain = [("mailbox_id", "=", mailbox.id)]
        if mid:
            domain.append(("message_id", "=", mid.strip("<>")))
        return self.env["mailsync.link"].search(domain)

    def _actions(self, mailbox):
        return self.env["mailsync.server.action"].search([("mailbox_id", "=", mailbox.id)])

    def _process(self, mailbox=None, use_move=None):
        """Run the queue the way the cron does (claim per mailbox, process)."""
        Action = self.env["mailsync.server.action"]
        seen, done = set(), 0
        while True:
            claimed = Action._claim_batch(exclude=seen)
            if not claimed:
                return done
            seen.update(claimed.ids)
            done += claimed._process_claimed(use_move=use_move)

    # ---------------------------------------------------------------- server side

    def _count(self, rig_user, folder, mid):
        return len(self.rig.search(rig_user, folder, ["HEADER", "Message-ID", mid.strip("<>")]))

    def _where(self, rig_user, mid):
        """{folder: copies} of a Message-ID over the user's folders."""
        where = {}
        for folder in rig_user.folders:
            if folder == "[Gmail]":
                continue
            try:
                count = self._count(rig_user, folder, mid)
            except Exception:  # noqa: BLE001 - a folder the test deleted
                continue
            if count:
                where[folder] = count
        return where

    def _bystanders(self, rig_user, folders):
        """Foreign mail, two of three flagged \\Deleted, per folder: {folder: {uid: flags}}."""
        seeded = {}
        for folder in folders:
            raws = [make_mail("stranger@elsewhere.test", rig_user.address, "bystander %d" % i)
                    for i in range(3)]
            uids = self.rig.append_many(rig_user, folder, [
                dict(msg=raw, flags=(DELETED,) if i < 2 else ()) for i, raw in enumerate(raws)])
            flags = self.rig.fetch_flags(rig_user, folder)
            seeded[folder] = {uid: flags[uid] for uid in uids}
        return seeded

    def _assert_bystanders(self, rig_user, seeded):
        for folder, before in seeded.items():
            after = self.rig.fetch_flags(rig_user, folder)
            for uid, flags in before.items():
                self.assertIn(uid, after, "bystander %s in %s was removed" % (uid, folder))
                self.assertEqual(set(after[uid]) - {b"\\Recent"}, set(flags) - {b"\\Recent"},
                                 "flags of bystander %s in %s changed" % (uid, folder))

    def _phone(self, rig_user):
        """Another mail app of the user (their phone): a plain IMAP session."""
        return self.rig.imap_client(rig_user)

    def _uid(self, rig_user, folder, mid):
        [uid] = self.rig.search(rig_user, folder, ["HEADER", "Message-ID", mid.strip("<>")])
        return uid

    def _key(self, mid):
        return server_actions.message_id_key(mid)
