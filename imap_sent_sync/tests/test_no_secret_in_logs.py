"""The password never shows up: not in any log, at any level, nor in the database."""
import base64
import logging
import uuid

from odoo.tests import tagged

from .common import MailsyncCase, columns_containing


class _CaptureAll(logging.Handler):
    def __init__(self):
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))  # includes tracebacks (exc_info)


@tagged("post_install", "-at_install")
class TestNoSecretInLogs(MailsyncCase):

    def _secret_forms(self, login, secret):
        """The shapes a password takes on the wire and in libraries' logs."""
        return {
            secret,
            secret.replace("\\", "\\\\").replace('"', '\\"'),                # IMAP quoted string
            repr(secret.encode())[2:-1],                                      # imaplib's bytes repr
            base64.b64encode(secret.encode()).decode(),                       # AUTH LOGIN
            base64.b64encode(f"\0{login}\0{secret}".encode()).decode(),       # AUTH PLAIN
            base64.b64encode(f"{login}\0{login}\0{secret}".encode()).decode(),
        }

    def _capture_everything(self):
        """Every logger at DEBUG, every record into one handler, restored on cleanup."""
        handler = _CaptureAll()
        root = logging.getLogger()
        saved = [(root, root.level)]
        root.setLevel(logging.DEBUG)
        root.addHandler(handler)
        names = set(logging.root.manager.loggerDict) | {"odoo", "imapclient", "imapclient.imaplib"}
        extra_handlers = []
        for name in names:
            logger = logging.getLogger(name)
            saved.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
            if not logger.propagate:  # records that never reach the root
                logger.addHandler(handler)
                extra_handlers.append(logger)

        def restore():
            root.removeHandler(handler)
            for logger in extra_handlers:
                logger.removeHandler(handler)
            for logger, level in saved:
                logger.setLevel(level)
        self.addCleanup(restore)
        return handler

    def test_no_secret_in_logs_nor_database(self):
        token = uuid.uuid4().hex[:10]
        # Quote and backslash exercise IMAP quoting; the token makes it unique.
        password = f'Pw"{token}\\ok'
        wrong_password = f"Wrong-{token}-pw"
        rig_user = self.rig.add_user(password=password)
        handler = self._capture_everything()

        mailbox = self._create_rig_mailbox(
            self.user_rep, rig_user, debug_logging=True,
            smtp_port=self.rig.smtp_port, smtp_security="starttls")
        mailbox.with_user(self.user_rep).action_test_connection()
        self.assertEqual(mailbox.state, "connected", mailbox.last_error)
        mailbox.with_user(self.user_rep).action_refresh_folders()
        mailbox.with_user(self.user_rep).secret = wrong_password
        mailbox.with_user(self.user_rep).action_test_connection()
        self.assertEqual(mailbox.state, "error")
        self.env.flush_all()

        captured = "\n".join(handler.lines)
        # The capture really saw the conversation, at DEBUG, from Odoo and imapclient.
        self.assertIn("imapclient", captured)
        self.assertIn("LOGIN", captured)
        self.assertIn("odoo.sql_db", captured)
        details = "\n".join(mailbox.log_ids.filtered("detail").mapped("detail"))
        self.assertIn("CAPABILITY", details.upper(), "the debug log holds the conversation")

        # Positive controls: the same scans do find what is meant to be there.
        self.assertIn(rig_user.login, captured)
        self.assertIn(("mailsync_mailbox", "login"), columns_containing(self.env, rig_user.login))

        for secret in (password, wrong_password):
            for form in self._secret_forms(rig_user.login, secret):
                self.assertNotIn(form, captured, "a password form reached the logs")
                self.assertNotIn(form, details)
                self.assertEqual(columns_containing(self.env, form), [],
                                 "a password form is stored in clear")
