"""Mailbox credentials: encrypted at rest, write-only, rotatable.

The clear secret is a unique token per test, so that "the token appears
nowhere" can be checked by scanning every text column of the database.
"""
import contextlib
import os
import stat
import tempfile
import uuid
from unittest.mock import patch

from cryptography.fernet import Fernet

from odoo import tools
from odoo.exceptions import AccessError, UserError
from odoo.models import check_method_name
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.addons.imap_sent_sync.mailsync import vault

from .common import columns_containing, text_columns


@contextlib.contextmanager
def vault_keys(*keys):
    """Configure the vault keys the way an admin does in odoo.conf.

    Also hides IMAP_SENT_SYNC_KEYS so the machine's environment cannot win.
    """
    value = ",".join(key.decode() if isinstance(key, bytes) else key for key in keys)
    with patch.dict(tools.config.options, {vault.CONFIG_OPTION: value}), \
            patch.dict(os.environ):
        os.environ.pop(vault.ENV_VARIABLE, None)
        yield


@contextlib.contextmanager
def data_dir_without_keys():
    """A fresh Odoo data_dir and no configured key: the key-file fallback."""
    with tempfile.TemporaryDirectory() as data_dir, \
            patch.dict(tools.config.options, {vault.CONFIG_OPTION: "", "data_dir": data_dir}), \
            patch.dict(os.environ):
        os.environ.pop(vault.ENV_VARIABLE, None)
        yield data_dir


@tagged("post_install", "-at_install")
class TestCredentials(TransactionCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key_a = Fernet.generate_key()
        cls.key_b = Fernet.generate_key()
        cls.key_c = Fernet.generate_key()
        cls.startClassPatcher(patch.dict(tools.config.options, {vault.CONFIG_OPTION: cls.key_a.decode()}))
        cls.startClassPatcher(patch.dict(os.environ, {vault.ENV_VARIABLE: ""}))
        # group_allow_export: export_data must be checked, not merely refused
        user_groups = "base.group_user,base.group_allow_export,imap_sent_sync.group_mailsync_user"
        cls.owner = mail_new_test_user(cls.env, login="vault_owner", groups=user_groups)
        cls.other = mail_new_test_user(cls.env, login="vault_other", groups=user_groups)
        cls.manager = mail_new_test_user(
            cls.env, login="vault_manager",
            groups="base.group_user,base.group_allow_export,imap_sent_sync.group_mailsync_manager")
        cls.employee = mail_new_test_user(cls.env, login="vault_employee", groups="base.group_user")
        cls.Mailbox = cls.env["mailsync.mailbox"]

    def setUp(self):
        super().setUp()
        self.token = self._new_token()
        self.mailbox = self.Mailbox.with_user(self.owner).create({
            "name": "Owner box",
            "email": "owner@example.com",
            "imap_host": "imap.example.com",
            "smtp_host": "smtp.example.com",
            "secret": self.token,
        }).with_user(self.owner)

    # ------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------

    @staticmethod
    def _new_token():
        return f"TokSecret-{uuid.uuid4().hex}"

    def _ciphertext(self, mailbox):
        self.env.cr.execute("SELECT secret_encrypted FROM mailsync_mailbox WHERE id = %s", (mailbox.id,))
        return self.env.cr.fetchone()[0]

    def _assert_nowhere_in_database(self, *tokens):
        """Scan every text-like and bytea column of every table for the clear tokens."""
        by_table = text_columns(self.env)
        self.assertIn("mailsync_mailbox", by_table)
        self.assertIn("secret_encrypted", dict(by_table["mailsync_mailbox"]))
        for token in tokens:
            # The random part alone also catches the token inside another encoding.
            needle = token.split("-", 1)[-1]
            found = columns_containing(self.env, needle, by_table)
            self.assertFalse(found, f"clear secret found in {found}")

    def _assert_no_token(self, value, *tokens):
        tokens = tokens or (self.token,)
        text = repr(value)
        for token in tokens:
            self.assertNotIn(token.split("-", 1)[-1], text)

    # ------------------------------------------------------------
    # storage
    # ------------------------------------------------------------

    def test_ciphertext_column_never_holds_the_secret(self):
        ciphertext = self._ciphertext(self.mailbox)
        self.assertTrue(ciphertext)
        self.assertNotIn(self.token, ciphertext)
        self.assertNotIn(self.token.split("-", 1)[-1], ciphertext)
        self.assertEqual(vault.SecretVault([self.key_a]).decrypt(ciphertext), self.token)
        self.assertTrue(self.mailbox.has_secret)
        self.assertTrue(self.mailbox.secret_set_date)
        self.assertEqual(self.mailbox._get_secret(), self.token)

    def test_ciphertext_is_not_an_orm_field(self):
        self.assertNotIn("secret_encrypted", self.Mailbox._fields)
        self.assertFalse(self.env["ir.model.fields"].sudo().search_count([
            ("model", "=", "mailsync.mailbox"), ("name", "=", "secret_encrypted")]))
        with self.assertRaises(ValueError):
            self.mailbox.sudo().read(["secret_encrypted"])

    def test_no_text_column_holds_the_clear_secret(self):
        """Acceptance 10: after create, replace, rotate and clear, no column holds it."""
        self._assert_nowhere_in_database(self.token)
        replacement = self._new_token()
        self.mailbox.write({"secret": replacement})
        self.mailbox.invalidate_recordset()
        self.assertEqual(self.mailbox._get_secret(), replacement)
        self._assert_nowhere_in_database(self.token, replacement)
        with vault_keys(self.key_b, self.key_a):
            self.Mailbox.with_user(self.manager).action_rotate_secrets()
            self._assert_nowhere_in_database(self.token, replacement)
            self.mailbox._clear_secret()
        self._assert_nowhere_in_database(self.token, replacement)

    def test_database_scan_finds_a_planted_token(self):
        """The scan above must be able to fail: plant a token where no secret belongs."""
        planted = self._new_token()
        self.mailbox.write({"ca_pem": f"-- {planted} --"})
        with self.assertRaises(AssertionError):
            self._assert_nowhere_in_database(planted)

    def test_no_secret_in_chatter_tracking_or_sync_log(self):
        self.mailbox.write({"secret": self._new_token(), "name": "Renamed"})
        self.assertNotIn("secret", self.Mailbox._track_get_fields())
        self.env.flush_all()
        messages = self.mailbox.sudo().message_ids
        self._assert_no_token(messages.mapped("body"))
        self._assert_no_token(messages.sudo().tracking_value_ids.read())
        lines = self.mailbox.sudo().log_ids.filtered(lambda line: line.operation == "credentials")
        self.assertEqual(len(lines), 2, "one line for the first save, one for the replacement")
        self._assert_no_token(lines.read(["message", "detail"]))

    def test_empty_write_keeps_the_secret(self):
        ciphertext = self._ciphertext(self.mailbox)
        for empty in (False, "", None):
            self.mailbox.write({"secret": empty})
            self.assertEqual(self._ciphertext(self.mailbox), ciphertext)
        self.assertTrue(self.mailbox.has_secret)
        self.assertEqual(self.mailbox._get_secret(), self.token)

    def test_replace_and_clear(self):
        replacement = self._new_token()
        self.mailbox.secret = replacement
        self.assertFalse(self.mailbox.secret, "the value written is not kept readable in the cache")
        self.assertEqual(self.mailbox._get_secret(), replacement)
        self.mailbox._clear_secret()
        self.assertFalse(self.mailbox.has_secret)
        self.assertFalse(self.mailbox.secret_set_date)
        self.assertIsNone(self._ciphertext(self.mailbox))
        with self.assertRaises(UserError) as info:
            self.mailbox._get_secret()
        self.assertIn("No password is saved", str(info.exception))
        lines = self.mailbox.sudo().log_ids.filtered(lambda line: line.operation == "credentials")
        messages = lines.mapped("message")
        self.assertTrue(any("replaced" in message for message in messages))
        self.assertTrue(any("removed" in message for message in messages))

    def test_same_secret_twice_gives_two_ciphertexts(self):
        second = self.Mailbox.with_user(self.owner).create(
            {"name": "Second", "email": "second@example.com", "secret": self.token})
        self.assertNotEqual(self._ciphertext(second), self._ciphertext(self.mailbox))

    def test_copy_does_not_copy_the_secret(self):
        duplicate = self.mailbox.copy({"name": "Copy", "email": "copy@example.com"})
        self.assertFalse(duplicate.has_secret)
        self.assertIsNone(self._ciphertext(duplicate))

    def test_init_is_idempotent(self):
        self.Mailbox.init()
        self.Mailbox.init()
        self.assertEqual(self.mailbox._get_secret(), self.token)

    # ------------------------------------------------------------
    # keys
    # ------------------------------------------------------------

    def test_other_key_cannot_decrypt_clear_error_no_leak(self):
        ciphertext = self._ciphertext(self.mailbox)
        with vault_keys(self.key_b), self.assertRaises(UserError) as info:
            self.mailbox._get_secret()
        message = str(info.exception)
        self.assertIn("cannot be decrypted", message)
        self.assertIn(vault.CONFIG_OPTION, message)
        self.assertIn("Re-encrypt mailbox secrets", message)
        self.assertIn(vault.key_id(self.key_b), message)
        for leak in (self.token, ciphertext, self.key_a.decode(), self.key_b.decode()):
            self.assertNotIn(leak, message)
        self.assertIsNone(info.exception.__cause__)

    def test_environment_variable_is_used_when_config_is_empty(self):
        with patch.dict(tools.config.options, {vault.CONFIG_OPTION: ""}), \
                patch.dict(os.environ, {vault.ENV_VARIABLE: f"{self.key_b.decode()},{self.key_a.decode()}"}):
            self.assertEqual(self.mailbox._get_secret(), self.token)
            self.mailbox.secret = self._new_token()
            self.assertEqual(
                vault.SecretVault([self.key_b]).decrypt(self._ciphertext(self.mailbox)),
                self.mailbox._get_secret())
            with patch.dict(os.environ, {vault.ENV_VARIABLE: self.key_c.decode()}), \
                    self.assertRaises(UserError) as info:
                self.mailbox._get_secret()
            self.assertIn(vault.ENV_VARIABLE, str(info.exception))

    def test_invalid_configured_key_is_a_clear_error(self):
        with vault_keys("definitely-not-a-key"), self.assertRaises(UserError) as info:
            self.mailbox.write({"secret": self._new_token()})
        message = str(info.exception)
        self.assertIn(vault.CONFIG_OPTION, message)
        self.assertNotIn("definitely-not-a-key", message)

    def test_key_file_created_0600_in_data_dir(self):
        with data_dir_without_keys() as data_dir:
            path = os.path.join(data_dir, "imap_sent_sync", "secret.key")
            self.assertFalse(os.path.exists(path))
            token = self._new_token()
            mailbox = self.Mailbox.with_user(self.owner).create(
                {"name": "File", "email": "file@example.com", "secret": token})
            self.assertTrue(os.path.exists(path))
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode), 0o700)
            with open(path, "rb") as handle:
                file_key = handle.read().strip()
            self.assertEqual(vault.SecretVault([file_key]).decrypt(self._ciphertext(mailbox)), token)
            self.assertEqual(mailbox._get_secret(), token)
            self._assert_no_token(open(path).read(), token)
        # a different data_dir (another server without the shared key) cannot decrypt
        with data_dir_without_keys(), self.assertRaises(UserError) as info:
            mailbox._get_secret()
        self.assertIn("key file", str(info.exception))

    # ------------------------------------------------------------
    # rotation
    # ------------------------------------------------------------

    def test_rotation_moves_every_secret_to_the_new_key(self):
        archived = self.Mailbox.with_user(self.owner).create(
            {"name": "Archived", "email": "archived@example.com", "secret": self._new_token()})
        archived.action_archive()
        archived_token = archived._get_secret()
        theirs = self.Mailbox.with_user(self.other).create(
            {"name": "Other", "email": "other@example.com", "secret": self._new_token()})
        their_token = theirs.sudo()._get_secret()
        old_ciphertexts = {box.id: self._ciphertext(box) for box in self.mailbox | archived | theirs}

        with vault_keys(self.key_b, self.key_a):
            # new key first: everything still readable before rotation
            self.assertEqual(self.mailbox._get_secret(), self.token)
            result = self.Mailbox.with_user(self.manager).action_rotate_secrets()
            self.assertEqual(result["params"]["type"], "success")
            self._assert_no_token(result, self.token, archived_token, their_token)
            again = self.Mailbox.with_user(self.manager).action_rotate_secrets()
            self.assertIn("0 password(s) re-encrypted", again["params"]["message"])

        for box in self.mailbox | archived | theirs:
            ciphertext = self._ciphertext(box)
            self.assertNotEqual(ciphertext, old_ciphertexts[box.id])
            self.assertTrue(vault.SecretVault([self.key_b]).is_current(ciphertext))
        # the old key can now be removed
        with vault_keys(self.key_b):
            self.assertEqual(self.mailbox._get_secret(), self.token)
            self.assertEqual(archived._get_secret(), archived_token)
            self.assertEqual(theirs.sudo()._get_secret(), their_token)

        lines = self.env["mailsync.log"].sudo().with_context(active_test=False).search([
            ("mailbox_id", "in", (self.mailbox | archived | theirs).ids),
            ("operation", "=", "credentials"), ("outcome", "=", "success")])
        self.assertEqual(len(lines), 3, "one re-encryption line per mailbox, none for the no-op run")
        self.assertIn(vault.key_id(self.key_b), lines[0].message)
        self._assert_no_token(lines.read(["message", "detail"]), self.token, archived_token, their_token)

    def test_rotation_reports_undecryptable_secrets_and_continues(self):
        stranger = self.Mailbox.with_user(self.owner).create(
            {"name": "Stranger", "email": "stranger@example.com"})
        with vault_keys(self.key_c):
            stranger.secret = self._new_token()
        with vault_keys(self.key_b, self.key_a):
            result = self.Mailbox.with_user(self.manager).action_rotate_secrets()
        self.assertEqual(result["params"]["type"], "warning")
        self.assertIn(stranger.sudo().display_name, result["params"]["message"])
        with vault_keys(self.key_b):
            self.assertEqual(self.mailbox._get_secret(), self.token)
        failure = stranger.sudo().log_ids.filtered(lambda l: l.outcome == "failure")
        self.assertEqual(failure.operation, "credentials")

    def test_rotation_is_for_managers_only(self):
        with self.assertRaises(AccessError):
            self.Mailbox.with_user(self.owner).action_rotate_secrets()
        action = self.env.ref("imap_sent_sync.action_mailsync_rotate_secrets")
        with vault_keys(self.key_b, self.key_a):
            with self.assertRaises(AccessError), mute_logger("odoo.addons.base.models.ir_actions"):
                action.with_user(self.owner).run()
            result = action.with_user(self.manager).run()
        self.assertEqual(result["tag"], "display_notification")
        with vault_keys(self.key_b):
            self.assertEqual(self.mailbox._get_secret(), self.token)

    # ------------------------------------------------------------
    # read paths: the secret never comes back
    # ------------------------------------------------------------

    def _all_read_paths(self, mailbox):
        """Everything a client can call to get field values back."""
        spec = {"secret": {}, "has_secret": {}, "login": {}, "email": {}}
        results = {
            "read": mailbox.read(["secret", "has_secret", "login"]),
            "read_all": mailbox.read(),
            "search_read": mailbox.search_read([("id", "=", mailbox.id)], ["secret", "has_secret"]),
            "web_read": mailbox.web_read(spec),
            "web_search_read": mailbox.web_search_read([("id", "=", mailbox.id)], spec),
            "export_data": mailbox.export_data(["secret", "has_secret", "login"]),
            "onchange_existing": mailbox.onchange(
                {"id": mailbox.id, "email": "renamed@example.com"}, ["email"], spec),
            "onchange_new": mailbox.browse().onchange(
                {"name": "New", "email": "new@example.com", "secret": self.token}, ["email"], spec),
            "onchange_defaults": mailbox.browse().onchange({}, [], spec),
            "name_search": mailbox.name_search("Owner"),
            "fields_get": mailbox.fields_get(),
        }
        return results

    def test_read_paths_never_return_the_secret(self):
        for user in (self.owner, self.manager):
            mailbox = self.mailbox.with_user(user)
            results = self._all_read_paths(mailbox)
            self._assert_no_token(results)
            self.assertFalse(results["read"][0]["secret"])
            self.assertTrue(results["read"][0]["has_secret"])
            self.assertFalse(results["web_read"][0]["secret"])
            self.assertEqual(results["export_data"]["datas"][0][0], "")
            self.assertFalse(mailbox.secret)

    def test_web_save_does_not_echo_the_secret(self):
        replacement = self._new_token()
        result = self.mailbox.web_save({"secret": replacement}, {"secret": {}, "has_secret": {}})
        self._assert_no_token(result, replacement)
        self.assertFalse(result[0]["secret"])
        created = self.Mailbox.with_user(self.owner).web_save(
            {"name": "Websave", "email": "websave@example.com", "secret": replacement},
            {"secret": {}, "has_secret": {}})
        self._assert_no_token(created, replacement)
        self.assertTrue(created[0]["has_secret"])
        self.assertEqual(self.mailbox._get_secret(), replacement)

    def test_searching_the_secret_is_no_oracle(self):
        # Odoo drops a domain leaf on a non-searchable field: the result must
        # not depend on whether the guessed value is right.
        Mailbox = self.Mailbox.with_user(self.manager)
        with mute_logger("odoo.osv.expression"):
            right = Mailbox.search([("secret", "=", self.token)])
            wrong = Mailbox.search([("secret", "=", "wrong guess")])
        self.assertEqual(right, wrong)

    def test_other_user_cannot_read_anything_secret_related(self):
        for user in (self.other, self.employee):
            theirs = self.mailbox.with_user(user)
            for field_name in ("has_secret", "secret_set_date", "secret", "login"):
                with self.assertRaises(AccessError), mute_logger("odoo.models"):
                    theirs.read([field_name])
        self.assertFalse(self.Mailbox.with_user(self.other).search([("has_secret", "=", True)]))
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.mailbox.with_user(self.other).write({"secret": self._new_token()})
        self.assertEqual(self.mailbox._get_secret(), self.token)

    def test_secret_methods_are_not_callable_over_rpc(self):
        for name in ("_get_secret", "_set_secret", "_clear_secret", "init", "_encrypt", "_decrypt",
                     "_get_vault"):
            with self.assertRaises(AccessError):
                check_method_name(name)

    def test_nothing_logged_contains_the_secret(self):
        replacement = self._new_token()
        # Everything Odoo and this addon log, at every level (odoo.sql_db queries included).
        with self.assertLogs("odoo", level="DEBUG") as captured:
            self.mailbox.write({"secret": replacement})
            self.mailbox._get_secret()
            with vault_keys(self.key_b, self.key_a):
                self.Mailbox.with_user(self.manager).action_rotate_secrets()
            with vault_keys(self.key_c), contextlib.suppress(UserError):
                self.mailbox._get_secret()
            self.env.flush_all()
        self.assertTrue(any("re-encrypted" in line for line in captured.output))
        self._assert_no_token(captured.output, self.token, replacement)
