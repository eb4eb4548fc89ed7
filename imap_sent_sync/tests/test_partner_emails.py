"""Contacts: the "Emails" smart button and Find Past Emails (a contact created
after the backfill gets its older mail), against the real rig."""
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .inbound_common import InboundCase, make_mail


@tagged("post_install", "-at_install")
class TestPartnerEmails(InboundCase):

    def _find(self, partners, user=None):
        return partners.with_user(user or self.user_rep).action_find_past_emails()

    def _requests(self, partner):
        return self.env["mailsync.contact.search"].search([("partner_id", "=", partner.id)])

    def _append(self, rig_user, folder, raw, age):
        return self.rig.append(rig_user, folder, raw, msg_time=self._days_ago(age))

    def _only_these_mailboxes(self, mailboxes):
        # Mailboxes left by other tests are not searched here.
        self.env["mailsync.mailbox"].search([("id", "not in", mailboxes.ids)]).active = False

    # ------------------------------------------------------------------ smart button

    def test_count_and_action(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        joe = self._contact("%s@example.com" % self._uniq("joe"))
        nobody = self._contact("%s@example.com" % self._uniq("nobody"))
        self._append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "jane 1"), 2)
        self._append(rig_user, "Sent", make_mail(rig_user.address, jane.email, "jane 2"), 3)
        self._append(rig_user, "INBOX", make_mail(joe.email, rig_user.address, "joe 1"), 4)
        self._backfill(mailbox)
        jane.message_post(body="a note, not a synced email")

        partners = (jane | joe | nobody).with_user(self.user_rep)
        self.assertEqual(partners.mapped("mailsync_email_count"), [2, 1, 0])

        def queries(records):
            self.env.flush_all()
            records.invalidate_recordset(["mailsync_email_count"])
            before = self.env.cr.sql_log_count
            records.mapped("mailsync_email_count")
            return self.env.cr.sql_log_count - before
        self.assertEqual(queries(partners[:1]), queries(partners), "one query for any batch")

        action = partners[0].action_view_mailsync_emails()
        self.assertEqual(action["res_model"], "mail.message")
        shown = self.env["mail.message"].with_user(self.user_rep).search(action["domain"])
        self.assertEqual(sorted(shown.mapped("subject")), ["jane 1", "jane 2"])
        self.assertEqual(set(shown.mapped("res_id")), {jane.id})

    def test_form_shows_the_buttons_to_email_sync_users_only(self):
        plain = self._plain_user()
        arch = self.env["res.partner"].with_user(self.user_rep).get_views(
            [(False, "form")])["views"]["form"]["arch"]
        for name in ("action_view_mailsync_emails", "action_find_past_emails",
                     "mailsync_email_count"):
            self.assertIn(name, arch)
        arch = self.env["res.partner"].with_user(plain).get_views(
            [(False, "form")])["views"]["form"]["arch"]
        for name in ("action_view_mailsync_emails", "action_find_past_emails",
                     "mailsync_email_count"):
            self.assertNotIn(name, arch)

    def test_access_without_the_email_sync_group(self):
        plain = self._plain_user()
        jane = self._contact("%s@example.com" % self._uniq("jane")).with_user(plain)
        jane.read(["name"])
        with self.assertRaises(AccessError):
            jane.read(["mailsync_email_count"])
        with self.assertRaises(AccessError):
            jane.action_view_mailsync_emails()
        with self.assertRaises(AccessError):
            jane.action_find_past_emails()
        with self.assertRaises(AccessError):
            self.env["mailsync.contact.search"].with_user(plain).search([])

    def _plain_user(self):
        """An internal user without Email Sync (the Settings option off)."""
        self.env.ref("base.group_user").implied_ids -= self.env.ref(
            "imap_sent_sync.group_mailsync_user")
        user = new_test_user(self.env, login="plain_%s" % self._uniq(), groups="base.group_user")
        self.assertFalse(user.has_group("imap_sent_sync.group_mailsync_user"))
        return user

    # ------------------------------------------------------------------ find past emails

    def test_find_past_emails_after_the_backfill(self):
        mailbox, rig_user = self._connected_mailbox()
        mailbox2, rig_user2 = self._connected_mailbox(user=self.user_rep2)
        self._only_these_mailboxes(mailbox | mailbox2)
        bob_email = "%s@example.com" % self._uniq("bob")
        alice = self._contact("%s@example.com" % self._uniq("alice"))
        stranger = "%s@elsewhere.test" % self._uniq("x")
        self._append(rig_user, "INBOX", make_mail(bob_email, rig_user.address, "from bob"), 3)
        self._append(rig_user, "Sent", make_mail(rig_user.address, stranger, "bcc bob",
                                                 bcc=bob_email), 4)
        self._append(rig_user, "INBOX", make_mail(alice.email, rig_user.address, "alice cc bob",
                                                  cc=bob_email), 5)
        self._append(rig_user, "INBOX", make_mail(stranger, rig_user.address, "private"), 6)
        # The server matches substrings: the header check must not.
        self._append(rig_user, "INBOX", make_mail("x" + bob_email, rig_user.address,
                                                  "lookalike"), 7)
        self._append(rig_user, "INBOX", make_mail(bob_email, rig_user.address, "too old"), 90)
        self._append(rig_user2, "INBOX", make_mail(bob_email, rig_user2.address,
                                                   "bob to rep2"), 8)
        self._backfill(mailbox)
        self._backfill(mailbox2)
        self.assertEqual(self._entries(alice).mapped("subject"), ["alice cc bob"])

        bob = self._contact(bob_email, "Bob")
        action = self._find(bob)
        self.assertEqual(action["params"]["type"], "info")
        self.assertIn(bob_email, action["params"]["message"])
        self.assertIn("2 mailboxes", action["params"]["message"],
                      "every connected mailbox is searched, not only the user's")
        requests = self._requests(bob)
        self.assertEqual(requests.mapped("mailbox_id"), mailbox | mailbox2)
        self.assertEqual(set(requests.mapped("state")), {"pending"})

        (mailbox | mailbox2)._sync_inbound(commit=False)
        expected = ["alice cc bob", "bcc bob", "bob to rep2", "from bob"]
        self.assertEqual(sorted(self._entries(bob).mapped("subject")), expected)
        self.assertEqual(self._entries(alice).mapped("subject"), ["alice cc bob"])
        for subject in ("private", "lookalike", "too old"):
            self.assertFalse(self.env["mail.message"].search([("subject", "=", subject)]), subject)
        self.assertEqual(set(requests.mapped("state")), {"done"})
        request = requests.filtered(lambda r: r.mailbox_id == mailbox)
        self.assertEqual(request.found_count, 4, "from, bcc, cc and the lookalike")
        self.assertEqual(request.imported_count, 3)
        self.assertTrue(mailbox.log_ids.filtered(
            lambda l: bob_email in l.message and "3 chatter entries added" in l.message))
        # The copy imported for Alice now also points at Bob's entry.
        shared = self._entries(alice) | self._entries(bob).filtered(
            lambda m: m.subject == "alice cc bob")
        link = self.env["mailsync.link"].search([("mailbox_id", "=", mailbox.id),
                                                 ("message_id", "=", shared[0].message_id[1:-1])])
        self.assertEqual(link.mail_message_ids, shared)
        self.assertEqual(bob.with_user(self.user_rep).mailsync_email_count, 4)

        # Twice: nothing new, nothing twice.
        self._find(bob)
        (mailbox | mailbox2)._sync_inbound(commit=False)
        self.assertEqual(sorted(self._entries(bob).mapped("subject")), expected)
        again = self._requests(bob) - requests
        self.assertEqual(again.mapped("state"), ["done", "done"])
        self.assertEqual(again.mapped("imported_count"), [0, 0])

    def test_without_backfill_in_bounded_resumable_steps(self):
        mailbox, rig_user = self._connected_mailbox()
        self._only_these_mailboxes(mailbox)
        bob_email = "%s@example.com" % self._uniq("bob")
        self.rig.append_many(rig_user, "INBOX", [
            make_mail(bob_email, rig_user.address, "m%d" % i) for i in range(5)])
        mailbox.action_sync_now()
        self._sync(mailbox)   # the first poll: cursors, older mail untouched
        self.assertEqual(mailbox.backfill_state, "none")
        bob = self._contact(bob_email)
        self._find(bob)
        request = self._requests(bob)
        with self._batch_sizes(poll=2):
            stats = self._sync(mailbox, max_steps=1)
            self.assertIn("contact_search", stats.seconds, "no poll due: the request's step")
            self.assertEqual(len(self._entries(bob)), 2)
            self.assertEqual((request.state, request.folder_id.path), ("pending", "INBOX"))
            self._sync(mailbox)
        self.assertEqual(request.state, "done")
        self.assertEqual(sorted(self._entries(bob).mapped("subject")),
                         ["m0", "m1", "m2", "m3", "m4"])
        self.assertEqual((request.found_count, request.imported_count), (5, 5))

    def test_find_past_emails_from_the_contacts_list(self):
        mailbox, _rig_user = self._connected_mailbox()
        self._only_these_mailboxes(mailbox)
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        nameless = self.env["res.partner"].create({"name": "No Address"})
        # Odoo runs a list action for users who may edit the records: every
        # new user may edit contacts by default (base.default_user).
        self.user_rep.groups_id += self.env.ref("base.group_partner_manager")
        action = self.env.ref("imap_sent_sync.action_res_partner_find_past_emails")
        Actions = self.env["ir.actions.actions"]
        self.assertIn(action.id, [a["id"] for a in Actions.with_user(self.user_rep)
                                  .get_bindings("res.partner")["action"]])
        self.assertNotIn(action.id, [a["id"] for a in Actions.with_user(self._plain_user())
                                     .get_bindings("res.partner")["action"]])
        result = action.with_user(self.user_rep).with_context(
            active_model="res.partner", active_ids=(jane | nameless).ids).run()
        self.assertEqual(result["params"]["type"], "info")
        self.assertEqual(self._requests(jane).mailbox_id, mailbox)
        self.assertFalse(self._requests(nameless), "contacts without an address are left out")
        with self.assertRaises(UserError):
            action.with_user(self.user_rep).with_context(
                active_model="res.partner", active_ids=nameless.ids).run()

    def test_disconnecting_a_mailbox_ends_its_waiting_requests(self):
        mailbox, _rig_user = self._connected_mailbox()
        self._only_these_mailboxes(mailbox)
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        self._find(jane)
        self.assertEqual(self._requests(jane).state, "pending")
        mailbox.action_disconnect()
        self.assertEqual((self._requests(jane).state, self._requests(jane).error),
                         ("failed", "The mailbox was disconnected."))

    def test_without_address_or_mailbox(self):
        nobody = self.Partner.create({"name": "No Address"})
        with self.assertRaisesRegex(UserError, "No Address has no valid email address"):
            self._find(nobody)
        self._only_these_mailboxes(self.env["mailsync.mailbox"])
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        action = self._find(jane)
        self.assertEqual(action["params"]["type"], "warning")
        self.assertIn("No connected mailbox", action["params"]["message"])
        self.assertFalse(self._requests(jane))

    def test_requests_follow_their_mailbox(self):
        mailbox, _rig_user = self._connected_mailbox()
        mailbox2, _rig_user2 = self._connected_mailbox(user=self.user_rep2)
        self._only_these_mailboxes(mailbox | mailbox2)
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        cron = self.env.ref("imap_sent_sync.ir_cron_mailsync_inbound")
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        self._find(jane)
        self.assertEqual(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]),
                         triggers + 1, "the inbound cron runs at once")
        Request = self.env["mailsync.contact.search"]
        self.assertEqual(Request.with_user(self.user_rep).search([]).mailbox_id, mailbox)
        self.assertEqual(Request.with_user(self.user_manager).search([]).mailbox_id,
                         mailbox | mailbox2)
        with self.assertRaises(AccessError):
            Request.with_user(self.user_rep).create(
                {"partner_id": jane.id, "mailbox_id": mailbox.id, "email": jane.email})
