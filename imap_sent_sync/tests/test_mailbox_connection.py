"""Connection test from the mailbox form, against the real rig servers."""
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import MailsyncCase

STEP_KEYS = ["imap_reach", "imap_tls", "imap_login", "imap_folders", "imap_append",
             "smtp_reach", "smtp_tls", "smtp_auth"]


@tagged("post_install", "-at_install")
class TestMailboxConnection(MailsyncCase):

    def _assert_failed_at(self, mailbox, step_key):
        """The test stopped at ``step_key``: earlier steps passed, the IMAP steps
        after it were skipped, the mailbox is in error with that step's reason."""
        steps = self._report_steps(mailbox)
        self.assertEqual(mailbox.state, "error")
        self.assertIs(steps[step_key]["ok"], False, steps[step_key])
        for key in STEP_KEYS[:STEP_KEYS.index(step_key)]:
            self.assertIs(steps[key]["ok"], True, steps[key])
        for key in STEP_KEYS[STEP_KEYS.index(step_key) + 1:]:
            if key.startswith(step_key.split("_")[0]):
                self.assertIsNone(steps[key]["ok"], steps[key])
        self.assertIn(steps[step_key]["message"], mailbox.last_error)
        self.assertIn("\u2717", mailbox.connection_report_html)
        log = mailbox.log_ids.filtered(lambda line: line.operation == "connection_test")
        self.assertEqual(len(log), 1)
        self.assertEqual(log.outcome, "failure")
        self.assertIn(steps[step_key]["message"], log.message)
        return steps[step_key]

    # ------------------------------------------------------------------ success

    def test_standard_layout_connects(self):
        rig_user = self.rig.add_user(layout="standard")
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user)
        self.assertEqual(mailbox.state, "draft")

        action = mailbox.with_user(self.user_rep).action_test_connection()

        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(mailbox.state, "connected")
        self.assertFalse(mailbox.last_error)
        self.assertTrue(mailbox.connection_tested_at)
        steps = self._report_steps(mailbox)
        self.assertEqual(list(steps), STEP_KEYS)
        for step in steps.values():
            self.assertIs(step["ok"], True, step)
            self.assertTrue(step["label"])
        self.assertEqual(mailbox.connection_report_html.count("\u2713"), len(STEP_KEYS))
        self.assertEqual(self._folder_roles(mailbox), {
            "INBOX": "inbox", "Sent": "sent", "Drafts": "drafts", "Trash": "trash",
            "Junk": "junk", "Archive": "archive",
        })
        log = mailbox.log_ids
        self.assertEqual(len(log), 2, "the saved password and the connection test")
        test_log = log.filtered(lambda line: line.operation == "connection_test")
        self.assertEqual(test_log.outcome, "success")
        self.assertGreater(test_log.duration_ms, 0)
        self.assertFalse(test_log.detail, "protocol detail only with Debug Log on")
        # The append-permission step removed its probe message again.
        self.assertEqual(self.rig.folder_uids(rig_user, "Sent"), [])

    def test_gmail_layout_connects(self):
        rig_user = self.rig.add_user(layout="gmail")
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user)
        mailbox.action_test_connection()
        self.assertEqual(mailbox.state, "connected")
        roles = self._folder_roles(mailbox)
        self.assertEqual(roles["INBOX"], "inbox")
        self.assertEqual(roles["[Gmail]/Sent Mail"], "sent")
        self.assertEqual(roles["[Gmail]/All Mail"], "all")
        self.assertEqual(roles["[Gmail]/Trash"], "trash")
        self.assertEqual(roles["[Gmail]/Drafts"], "drafts")
        self.assertEqual(roles["[Gmail]/Spam"], "junk")
        self.assertEqual(roles["[Gmail]/Important"], "other")
        self.assertNotIn("[Gmail]", roles, "a \\Noselect parent holds no mail")
        self.assertEqual(self.rig.folder_uids(rig_user, "[Gmail]/Sent Mail"), [])

    def test_outlook_layout_connects_roles_by_name(self):
        rig_user = self.rig.add_user(layout="outlook")
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user)
        mailbox.action_test_connection()
        self.assertEqual(mailbox.state, "connected")
        self.assertEqual(self._folder_roles(mailbox), {
            "INBOX": "inbox", "Sent Items": "sent", "Deleted Items": "trash",
            "Drafts": "drafts", "Junk Email": "junk", "Archive": "archive",
        })
        # No SPECIAL-USE on this server: the roles come from the names.
        self.assertFalse(mailbox.folder_ids.filtered(lambda f: "\\Sent" in (f.flags or "")))

    def test_starttls_on_both_sides(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(
            self.user_rep, rig_user,
            imap_port=self.rig.imap_port, imap_security="starttls",
            smtp_port=self.rig.smtp_port, smtp_security="starttls")
        mailbox.action_test_connection()
        self.assertEqual(mailbox.state, "connected", mailbox.last_error)

    def test_unencrypted_with_acknowledgement(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(
            self.user_rep, rig_user, allow_unencrypted=True, ca_pem=False,
            imap_port=self.rig.imap_nostarttls_port, imap_security="none",
            smtp_port=self.rig.smtp_nostarttls_port, smtp_security="none")
        mailbox.action_test_connection()
        self.assertEqual(mailbox.state, "connected", mailbox.last_error)

    def test_without_smtp_the_smtp_steps_are_skipped(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user, smtp_host=False)
        mailbox.action_test_connection()
        self.assertEqual(mailbox.state, "connected", mailbox.last_error)
        steps = self._report_steps(mailbox)
        for key in ("smtp_reach", "smtp_tls", "smtp_auth"):
            self.assertIsNone(steps[key]["ok"])
        self.assertIn("\u2013", mailbox.connection_report_html)

    def test_paused_mailbox_stays_paused(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user)
        mailbox.state = "paused"
        mailbox.action_test_connection()
        self.assertEqual(mailbox.state, "paused")
        self.assertTrue(mailbox.connection_report["ok"])

    # ------------------------------------------------------------------ failures

    def test_wrong_password(self):
        rig_user = self.rig.add_user(layout="gmail")
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user, secret="not-the-password",
                                           provider="gmail",
                                           imap_host=self.rig.host, smtp_host=self.rig.host)
        action = mailbox.action_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        step = self._assert_failed_at(mailbox, "imap_login")
        self.assertIn("app password", mailbox.last_error.lower())
        self.assertIn("app password", (step["message"] + step["hint"]).lower())
        self.assertFalse(mailbox.folder_ids, "no folder listed without a login")

    def test_wrong_password_custom_server(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user, secret="not-the-password")
        mailbox.action_test_connection()
        self._assert_failed_at(mailbox, "imap_login")
        self.assertIn("password", mailbox.last_error.lower())

    def test_success_after_failure_clears_the_error(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user, secret="wrong")
        mailbox.action_test_connection()
        self.assertEqual(mailbox.state, "error")
        mailbox.secret = rig_user.password
        mailbox.action_test_connection()
        self.assertEqual(mailbox.state, "connected")
        self.assertFalse(mailbox.last_error)
        self.assertEqual(mailbox.log_ids.filtered(
            lambda line: line.operation == "connection_test").mapped("outcome"),
            ["success", "failure"])

    def test_closed_port(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user, imap_port=self.rig.closed_port())
        mailbox.action_test_connection()
        step = self._assert_failed_at(mailbox, "imap_reach")
        self.assertIn("refused", step["message"].lower())
        self.assertIn("port", step["hint"].lower())

    def test_certificate_without_ca_refused(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user, ca_pem=False)
        mailbox.action_test_connection()
        step = self._assert_failed_at(mailbox, "imap_tls")
        self.assertIn("certificate", step["message"].lower())
        self.assertIn("custom ca", step["hint"].lower())

    def test_starttls_not_offered_refused(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(
            self.user_rep, rig_user,
            imap_port=self.rig.imap_nostarttls_port, imap_security="starttls")
        mailbox.action_test_connection()
        step = self._assert_failed_at(mailbox, "imap_tls")
        self.assertIn("starttls", step["message"].lower())
        # No silent downgrade: the password was never sent in clear.
        self.assertIsNone(self._report_steps(mailbox)["imap_login"]["ok"])

    def test_smtp_wrong_port_fails_smtp_step_only(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user, smtp_port=self.rig.closed_port())
        mailbox.action_test_connection()
        steps = self._report_steps(mailbox)
        self.assertEqual(mailbox.state, "error")
        for key in ("imap_reach", "imap_tls", "imap_login", "imap_folders", "imap_append"):
            self.assertIs(steps[key]["ok"], True, steps[key])
        self.assertIs(steps["smtp_reach"]["ok"], False)
        self.assertIn("SMTP", mailbox.last_error + steps["smtp_reach"]["label"])
        # The IMAP side worked: the folders are known.
        self.assertEqual(self._folder_roles(mailbox)["Sent"], "sent")

    # ------------------------------------------------------------------ before testing

    def test_host_required(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user, imap_host=False)
        with self.assertRaisesRegex(UserError, "IMAP server"):
            mailbox.action_test_connection()

    def test_password_required(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user, secret=False)
        with self.assertRaisesRegex(UserError, "app password"):
            mailbox.action_test_connection()

    def test_unencrypted_requires_acknowledgement(self):
        rig_user = self.rig.add_user()
        with self.assertRaisesRegex(ValidationError, "unencrypted"):
            self._create_rig_mailbox(self.user_rep, rig_user, imap_security="none")
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user)
        with self.assertRaisesRegex(ValidationError, "unencrypted"):
            mailbox.smtp_security = "none"
        mailbox.write({"smtp_security": "none", "allow_unencrypted": True})
        with self.assertRaisesRegex(ValidationError, "unencrypted"):
            mailbox.allow_unencrypted = False

    def test_ports_validated(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user)
        for port in (0, -1, 65536):
            with self.assertRaisesRegex(ValidationError, "between 1 and 65535"):
                mailbox.imap_port = port
            with self.assertRaisesRegex(ValidationError, "between 1 and 65535"):
                mailbox.smtp_port = port

    def test_endpoints(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user, smtp_port=self.rig.smtp_port,
                                           smtp_security="starttls")
        imap = mailbox._get_imap_endpoint()
        smtp = mailbox._get_smtp_endpoint()
        self.assertEqual((imap.host, imap.port, imap.security, imap.login),
                         (self.rig.host, self.rig.imaps_port, "ssl", rig_user.login))
        self.assertEqual((smtp.port, smtp.security), (self.rig.smtp_port, "starttls"))
        self.assertEqual(imap.secret, rig_user.password)
        self.assertEqual(imap.ca_pem, self.rig.ca_pem)
        self.assertNotIn(rig_user.password, repr(imap))
        self.assertEqual(imap.timeout, 20.0)
        self.env["ir.config_parameter"].set_param("imap_sent_sync.network_timeout", "7")
        self.assertEqual(mailbox._get_imap_endpoint().timeout, 7.0)

    # ------------------------------------------------------------------ debug log

    def test_debug_log_records_redacted_protocol_detail(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user, debug_logging=True)
        mailbox.action_test_connection()
        log = mailbox.log_ids.filtered(lambda line: line.operation == "connection_test")
        self.assertTrue(log.detail)
        self.assertIn("imap_login", log.detail)
        self.assertIn("CAPABILITY", log.detail.upper(), "the IMAP conversation is in the detail")
        self.assertNotIn(rig_user.password, log.detail)
