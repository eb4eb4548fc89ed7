import os

from odoo import _, api, models, tools
from odoo.exceptions import UserError

from ..mailsync import vault


class MailsyncVault(models.AbstractModel):
    """Where the mailbox secret keys come from, and the admin-facing errors.

    The cryptography itself is in ``mailsync/vault.py`` (no Odoo). This service
    only resolves the keys from the server configuration, which is outside the
    database on purpose: a database dump or a SQL injection must not yield both
    the ciphertexts and the key. Key precedence, first match wins:

    1. odoo.conf option ``imap_sent_sync_keys`` (comma-separated Fernet keys);
    2. environment variable ``IMAP_SENT_SYNC_KEYS`` (same format);
    3. key file ``<data_dir>/imap_sent_sync/secret.key``, created on first use
       (mode 0600). Every Odoo server sharing the database must see the same
       key: with several servers, configure 1. or 2., or share the file.

    The first key encrypts, all keys decrypt: for rotation, put the new key
    first, keep the old one after it, run "Re-encrypt mailbox secrets", then
    remove the old key.

    Every method is private: a public one would be callable over RPC.
    """

    _name = "mailsync.vault"
    _description = "Mailbox Secret Vault"

    @api.model
    def _key_file_path(self):
        return os.path.join(tools.config["data_dir"], vault.KEY_FILE_RELATIVE_PATH)

    @api.model
    def _get_vault(self):
        """A :class:`vault.SecretVault` with the configured keys (read every time:
        cheap, and a config change is seen without a restart of this code path)."""
        try:
            keys, _source, _label = vault.resolve_keys(
                tools.config.get(vault.CONFIG_OPTION),
                os.environ.get(vault.ENV_VARIABLE),
                self._key_file_path(),
            )
            return vault.SecretVault(keys)
        except vault.VaultKeyError as error:
            raise UserError(_(
                "The encryption keys for mailbox passwords are not usable: %(error)s",
                error=str(error))) from None

    @api.model
    def _key_source_label(self):
        """Human description of where the keys are read from (no key material)."""
        if (tools.config.get(vault.CONFIG_OPTION) or "").strip():
            return _("the odoo.conf option %s", vault.CONFIG_OPTION)
        if (os.environ.get(vault.ENV_VARIABLE) or "").strip():
            return _("the environment variable %s", vault.ENV_VARIABLE)
        return _("the key file %s", self._key_file_path())

    @api.model
    def _encrypt(self, secret):
        return self._get_vault().encrypt(secret)

    @api.model
    def _decrypt(self, token, label):
        """Clear text of ``token``; ``label`` names the owner (e.g. the mailbox)
        in the error shown when no configured key can decrypt it."""
        box = self._get_vault()
        try:
            return box.decrypt(token)
        except vault.VaultDecryptError:
            raise UserError(self._decrypt_error_message(box, label)) from None

    @api.model
    def _decrypt_error_message(self, box, label):
        return _(
            "The password of %(label)s cannot be decrypted with the configured keys "
            "(read from %(origin)s; primary key id %(key_id)s). The encryption key was "
            "changed or lost, or this Odoo server does not use the same key as the one "
            "that saved the password.\n"
            "To fix it, an administrator either configures the previous key again, after the "
            "new one (comma-separated: new,old), restarts Odoo and runs \"Re-encrypt mailbox "
            "secrets\" in the Email Sync settings; or, if the previous key is lost, enters the "
            "mailbox password again.",
            label=label, origin=self._key_source_label(), key_id=box.primary_key_id)
