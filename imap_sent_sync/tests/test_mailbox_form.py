"""The mailbox form as a rep fills it: presets, suggestions, defaults."""
from odoo.tests import Form, tagged

from odoo.addons.imap_sent_sync.mailsync import presets

from .common import MailsyncCase


@tagged("post_install", "-at_install")
class TestMailboxForm(MailsyncCase):

    def _form(self):
        return Form(self.env["mailsync.mailbox"].with_user(self.user_rep))

    def _assert_preset_applied(self, form, key):
        preset = presets.PRESETS[key]
        self.assertEqual(form.provider, key)
        self.assertEqual(
            (form.imap_host, form.imap_port, form.imap_security,
             form.smtp_host, form.smtp_port, form.smtp_security),
            (preset.imap_host, preset.imap_port, preset.imap_security,
             preset.smtp_host, preset.smtp_port, preset.smtp_security))

    def test_address_suggests_provider_and_defaults_name_and_login(self):
        form = self._form()
        self.assertEqual(form.provider, "custom")
        form.email = "jane.doe@gmail.com"
        self._assert_preset_applied(form, "gmail")
        self.assertEqual(form.login, "jane.doe@gmail.com")
        self.assertEqual(form.name, "jane.doe@gmail.com")
        self.assertIn("app password", form.provider_hint.lower())
        # A corrected address still drives the untouched preset, name and login.
        form.email = "jane.doe@yahoo.com"
        self._assert_preset_applied(form, "yahoo")
        self.assertEqual((form.login, form.name), ("jane.doe@yahoo.com", "jane.doe@yahoo.com"))
        form.secret = "app-password"
        mailbox = form.save()
        self.assertEqual(mailbox.user_id, self.user_rep, "My Mailboxes: the rep owns it")
        self.assertTrue(mailbox.has_secret)
        self.assertEqual(mailbox.state, "draft")

    def test_choosing_a_provider_fills_the_servers(self):
        form = self._form()
        form.email = "sales@company.example"
        self.assertEqual(form.provider, "custom", "an unknown domain suggests nothing")
        self.assertFalse(form.imap_host)
        for key in presets.PRESETS:
            if key == "custom":
                continue
            form.provider = key
            self._assert_preset_applied(form, key)
            self.assertTrue(form.provider_hint)
        form.provider = "custom"
        self.assertTrue(form.imap_host, "switching to Custom keeps the servers to adapt them")

    def test_suggestion_never_overrides_a_users_own_settings(self):
        form = self._form()
        form.provider = "gmail"
        form.imap_host = "imap.proxy.example"
        form.email = "jane@yahoo.com"
        self.assertEqual(form.provider, "gmail")
        self.assertEqual(form.imap_host, "imap.proxy.example")

    def test_own_name_and_login_stay(self):
        form = self._form()
        form.email = "sales@company.example"
        form.name = "Sales inbox"
        form.login = "jdoe"
        form.email = "sales@company2.example"
        self.assertEqual((form.name, form.login), ("Sales inbox", "jdoe"))

    def test_unencrypted_acknowledgement_shown_only_for_none(self):
        arch = self.env["mailsync.mailbox"].get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn("imap_security != 'none' and smtp_security != 'none'", arch)
        self.assertIn('name="allow_unencrypted"', arch)
        self.assertIn('name="secret"', arch)
        self.assertIn('password="True"', arch)
