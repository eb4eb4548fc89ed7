"""Credential vault: mailbox secrets encrypted at rest with Fernet.

Nothing here imports Odoo. The Odoo side (``models/mailsync_vault.py``) only
decides *where* the keys come from and turns :class:`VaultError` into a
message for the admin.

Keys
----
A key is a urlsafe-base64 Fernet key (``Fernet.generate_key()``, 44 chars).
Several keys may be configured, comma-separated: the FIRST one encrypts, every
one of them decrypts (``MultiFernet``). That is what makes rotation possible:
put a new key first, keep the old one after it, re-encrypt, then drop the old.

Where the keys come from, first match wins (see :func:`load_keys`):

1. the odoo.conf option ``imap_sent_sync_keys``;
2. the environment variable ``IMAP_SENT_SYNC_KEYS``;
3. a key file, ``<odoo data_dir>/imap_sent_sync/secret.key``, created on first
   use with one fresh key and mode 0600. It may list several keys (one per line
   or comma-separated), with the same first-encrypts rule.

The sources are never merged: the keys that can decrypt are exactly the keys
of the source in use, so an admin can always tell which keys unlock the data.

Nothing in this module puts a key, a secret or a token in an exception
message, a log record or a ``repr``.
"""
import base64
import binascii
import hashlib
import logging
import os
import stat
import time

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

_logger = logging.getLogger(__name__)

CONFIG_OPTION = "imap_sent_sync_keys"
ENV_VARIABLE = "IMAP_SENT_SYNC_KEYS"
KEY_FILE_RELATIVE_PATH = os.path.join("imap_sent_sync", "secret.key")

SOURCE_CONFIG = "config"
SOURCE_ENV = "env"
SOURCE_FILE = "file"

# A concurrent creator writes the key file in one write() call; if we lose the
# creation race and find the file still empty we wait this long for it.
_KEY_FILE_WAIT_SECONDS = 5.0


class VaultError(Exception):
    """Base class; ``str()`` is a human message that never contains a secret or a key."""

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self):
        return f"{self.message} {self.hint}" if self.hint else self.message


class VaultKeyError(VaultError):
    """The key configuration is unusable (malformed key, unreadable or corrupt key file)."""


class VaultDecryptError(VaultError):
    """None of the configured keys can decrypt a stored secret (key changed or lost)."""


def generate_key():
    """A new random Fernet key, as ``str`` (what goes into the config)."""
    return Fernet.generate_key().decode("ascii")


def key_id(key):
    """Short public fingerprint of a key, for logs and messages.

    A truncated SHA-256 of a 256-bit random key reveals nothing usable about it
    but lets an admin check which key is primary without showing the key.
    """
    if isinstance(key, str):
        key = key.encode("ascii")
    return hashlib.sha256(key.strip()).hexdigest()[:8]


def parse_keys(value, source_label):
    """Split a comma/newline-separated key list into validated ``bytes`` keys.

    Blank entries (a trailing comma, empty lines) are ignored. An invalid entry
    raises :class:`VaultKeyError` naming its position, never its value.
    """
    keys = []
    # Lines starting with "#" are comments (a key file may say when it was rotated).
    lines = [line for line in value.splitlines() if not line.strip().startswith("#")]
    entries = [entry.strip() for entry in ",".join(lines).split(",")]
    entries = [entry for entry in entries if entry]
    for position, entry in enumerate(entries, start=1):
        key = entry.encode("ascii", errors="replace")
        try:
            raw = base64.urlsafe_b64decode(key)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise VaultKeyError(
                f"Key #{position} in {source_label} is not a valid Fernet key.",
                hint="Each key must be 32 url-safe base64-encoded bytes (44 characters), "
                     "as produced by cryptography.fernet.Fernet.generate_key().",
            ) from None
        keys.append(key)
    return keys


def _read_key_file(path):
    with open(path, "r", encoding="ascii", errors="replace") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        content = handle.read()
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # Warn, do not refuse: refusing would stop every mailbox at once.
        _logger.warning(
            "Key file %s is accessible by group or others (mode %o); restrict it with chmod 600.",
            path, stat.S_IMODE(mode))
    return content


def _create_key_file(path):
    """Create ``path`` holding one new key, mode 0600, atomically.

    The key is written to a private temporary file (O_CREAT|O_EXCL, 0600) that
    is then hard-linked to ``path``: link() fails if ``path`` exists, so two
    workers racing here end up with exactly one key file, and no reader can
    ever see it half-written. Returns True if this call created the file,
    False if another process won the race (its file is then complete).
    """
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = Fernet.generate_key() + b"\n"
    temporary = f"{path}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # the umask cannot widen it, but be explicit
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        except OSError:
            # Filesystem without hard links: create the final file directly.
            # A racing reader may then briefly see it empty; load_key_file waits.
            return _create_key_file_direct(path, key)
    finally:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
    _fsync_directory(directory)
    return True


def _create_key_file_direct(path, key):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_directory(os.path.dirname(path))
    return True


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_key_file(path, create=True):
    """Keys from the key file at ``path``, creating it first if missing."""
    deadline = time.monotonic() + _KEY_FILE_WAIT_SECONDS
    while True:
        try:
            content = _read_key_file(path)
        except FileNotFoundError:
            if not create:
                raise VaultKeyError(
                    f"The key file {path} does not exist.",
                    hint="Restore it from backup, or configure the keys with the odoo.conf option "
                         f"{CONFIG_OPTION} or the environment variable {ENV_VARIABLE}.") from None
            try:
                if _create_key_file(path):
                    _logger.info("Created the mailbox secret key file %s (mode 0600). Back it up: "
                                 "without it the stored mailbox passwords cannot be decrypted.", path)
            except OSError as error:
                raise VaultKeyError(
                    f"Cannot create the key file {path}: {error.strerror}.",
                    hint=f"Make the Odoo data directory writable, or configure the keys with the "
                         f"odoo.conf option {CONFIG_OPTION} or the environment variable {ENV_VARIABLE}."
                ) from None
            continue
        except OSError as error:
            raise VaultKeyError(
                f"Cannot read the key file {path}: {error.strerror}.",
                hint="It must be readable by the Odoo process only (owned by its user, mode 0600); or "
                     f"configure the keys with the odoo.conf option {CONFIG_OPTION} or the environment "
                     f"variable {ENV_VARIABLE}.") from None
        if content.strip():
            return parse_keys(content, f"the key file {path}")
        # Only possible on filesystems without hard links, while another
        # process is between creating and writing the file.
        if time.monotonic() > deadline:
            raise VaultKeyError(
                f"The key file {path} is empty.",
                hint="If no mailbox password was ever saved with it, delete it and a new one is "
                     "created; otherwise restore it from backup.")
        time.sleep(0.05)


def load_keys(config_value, env_value, key_file_path, *, create=True):
    """The configured keys, primary (encrypting) key first, as ``list[bytes]``.

    Precedence: ``config_value`` (odoo.conf ``imap_sent_sync_keys``), then
    ``env_value`` (``IMAP_SENT_SYNC_KEYS``), then the key file, which is created
    with one new key (mode 0600) when it does not exist and ``create`` is true.
    """
    return resolve_keys(config_value, env_value, key_file_path, create=create)[0]


def resolve_keys(config_value, env_value, key_file_path, *, create=True):
    """Like :func:`load_keys` but returns ``(keys, source, source_label)``.

    ``source`` is one of SOURCE_CONFIG / SOURCE_ENV / SOURCE_FILE, so messages
    can tell the admin where to change the keys.
    """
    if config_value and config_value.strip():
        label = f"the odoo.conf option {CONFIG_OPTION}"
        keys, source = parse_keys(config_value, label), SOURCE_CONFIG
    elif env_value and env_value.strip():
        label = f"the environment variable {ENV_VARIABLE}"
        keys, source = parse_keys(env_value, label), SOURCE_ENV
    else:
        label = f"the key file {key_file_path}"
        keys, source = load_key_file(key_file_path, create=create), SOURCE_FILE
    if not keys:
        raise VaultKeyError(f"No key is configured in {label}.",
                            hint="Set at least one Fernet key, or remove the setting to use the key file.")
    return keys, source, label


class SecretVault:
    """Encrypts and decrypts secrets with a list of Fernet keys.

    ``keys[0]`` encrypts; all keys decrypt. Tokens are ASCII ``str`` (Fernet
    tokens: versioned, timestamped, AES-128-CBC + HMAC-SHA256).
    """

    def __init__(self, keys):
        keys = [key.encode("ascii") if isinstance(key, str) else key for key in keys]
        if not keys:
            raise VaultKeyError("The vault needs at least one key.")
        try:
            fernets = [Fernet(key) for key in keys]
        except (ValueError, binascii.Error):
            raise VaultKeyError("A vault key is not a valid Fernet key.") from None
        self._primary = fernets[0]
        self._multi = MultiFernet(fernets)
        self.primary_key_id = key_id(keys[0])
        self.key_ids = tuple(key_id(key) for key in keys)

    def __repr__(self):
        return f"<SecretVault keys={list(self.key_ids)}>"

    def encrypt(self, secret):
        """Encrypt ``secret`` (str) with the primary key; returns the token (str)."""
        if not isinstance(secret, str):
            raise TypeError("secret must be a str")
        return self._primary.encrypt(secret.encode("utf-8")).decode("ascii")

    def decrypt(self, token):
        """The clear secret of ``token``; :class:`VaultDecryptError` if no key fits."""
        try:
            return self._multi.decrypt(self._token_bytes(token)).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            raise VaultDecryptError(
                "None of the configured keys can decrypt this secret.",
                hint="The encryption key was changed or lost: configure the previous key again "
                     "(after the new one), or enter the password again.") from None

    def is_current(self, token):
        """True if the primary key alone decrypts ``token`` (rotation not needed)."""
        try:
            self._primary.decrypt(self._token_bytes(token))
        except InvalidToken:
            return False
        return True

    def rotate(self, token):
        """Re-encrypt ``token`` with the primary key (any configured key may have made it).

        The secret is never returned; the Fernet timestamp is kept.
        """
        try:
            return self._multi.rotate(self._token_bytes(token)).decode("ascii")
        except InvalidToken:
            raise VaultDecryptError(
                "None of the configured keys can decrypt this secret, so it cannot be re-encrypted.",
                hint="Keep the old key configured after the new one until every secret is re-encrypted.",
            ) from None

    @staticmethod
    def _token_bytes(token):
        if isinstance(token, bytes):
            return token
        if not isinstance(token, str):
            raise InvalidToken
        try:
            return token.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidToken from None
