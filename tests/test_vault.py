"""Unit tests of the credential vault (no Odoo, no server)."""
import logging
import multiprocessing
import os
import stat

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings, strategies as st

from imap_sent_sync.mailsync import vault
from imap_sent_sync.mailsync.vault import (
    SecretVault, VaultDecryptError, VaultKeyError, generate_key, key_id, load_keys, resolve_keys,
)

SECRET = "app-pass wörd 🔑 with spaces"


@pytest.fixture
def key_a():
    return Fernet.generate_key()


@pytest.fixture
def key_b():
    return Fernet.generate_key()


def test_roundtrip_and_ciphertext_hides_the_secret(key_a):
    box = SecretVault([key_a])
    token = box.encrypt(SECRET)
    assert isinstance(token, str) and token.isascii()
    assert SECRET not in token
    assert "app-pass" not in token
    assert box.decrypt(token) == SECRET
    # Fernet uses a random IV: the same secret never gives the same token.
    assert box.encrypt(SECRET) != token


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_roundtrip_any_text(secret):
    box = SecretVault([b"0" * 43 + b"="])
    assert box.decrypt(box.encrypt(secret)) == secret


def test_encrypt_refuses_non_str(key_a):
    with pytest.raises(TypeError):
        SecretVault([key_a]).encrypt(b"bytes")


def test_other_key_cannot_decrypt_and_error_leaks_nothing(key_a, key_b):
    token = SecretVault([key_a]).encrypt(SECRET)
    with pytest.raises(VaultDecryptError) as info:
        SecretVault([key_b]).decrypt(token)
    error = info.value
    text = str(error) + repr(error) + repr(error.args)
    for leak in (SECRET, token, key_a.decode(), key_b.decode()):
        assert leak not in text
    assert error.__cause__ is None and error.__suppress_context__
    assert "key" in error.message.lower() and error.hint


@pytest.mark.parametrize("garbage", ["", "not a token", "gAAAAAé", None, 42])
def test_garbage_token_is_a_decrypt_error(key_a, garbage):
    with pytest.raises(VaultDecryptError):
        SecretVault([key_a]).decrypt(garbage)


def test_multifernet_first_encrypts_all_decrypt(key_a, key_b):
    old = SecretVault([key_a])
    token_old = old.encrypt(SECRET)
    both = SecretVault([key_b, key_a])
    assert both.decrypt(token_old) == SECRET
    token_new = both.encrypt(SECRET)
    # new tokens are made with the primary key only
    assert SecretVault([key_b]).decrypt(token_new) == SECRET
    with pytest.raises(VaultDecryptError):
        old.decrypt(token_new)


def test_rotation_moves_a_token_to_the_primary_key(key_a, key_b):
    token_old = SecretVault([key_a]).encrypt(SECRET)
    both = SecretVault([key_b, key_a])
    assert not both.is_current(token_old)
    rotated = both.rotate(token_old)
    assert both.is_current(rotated)
    assert SECRET not in rotated
    # after rotation the old key can be dropped
    assert SecretVault([key_b]).decrypt(rotated) == SECRET
    with pytest.raises(VaultDecryptError):
        SecretVault([key_a]).decrypt(rotated)


def test_rotation_without_the_old_key_fails_cleanly(key_a, key_b):
    token_old = SecretVault([key_a]).encrypt(SECRET)
    with pytest.raises(VaultDecryptError) as info:
        SecretVault([key_b]).rotate(token_old)
    assert token_old not in str(info.value)


def test_repr_shows_fingerprints_not_keys(key_a, key_b):
    box = SecretVault([key_a, key_b])
    text = repr(box)
    assert key_a.decode() not in text and key_b.decode() not in text
    assert key_id(key_a) in text and box.primary_key_id == key_id(key_a)
    assert len(box.primary_key_id) == 8
    assert key_id(key_a.decode()) == key_id(key_a)


def test_empty_or_invalid_vault_keys():
    with pytest.raises(VaultKeyError):
        SecretVault([])
    with pytest.raises(VaultKeyError):
        SecretVault([b"short"])


# --- key loading -----------------------------------------------------------

def test_parse_keys_ignores_blanks_and_keeps_order(key_a, key_b):
    value = f" {key_a.decode()} ,\n, {key_b.decode()},"
    assert vault.parse_keys(value, "test") == [key_a, key_b]


def test_invalid_key_names_position_not_value(key_a):
    bad = "A" * 20
    with pytest.raises(VaultKeyError) as info:
        vault.parse_keys(f"{key_a.decode()},{bad}", "the odoo.conf option imap_sent_sync_keys")
    text = str(info.value)
    assert "#2" in text and "imap_sent_sync_keys" in text
    assert bad not in text and key_a.decode() not in text


def test_precedence_config_then_env_then_file(tmp_path, key_a, key_b):
    path = tmp_path / "imap_sent_sync" / "secret.key"
    keys, source, _label = resolve_keys(key_a.decode(), key_b.decode(), str(path))
    assert (keys, source) == ([key_a], vault.SOURCE_CONFIG)
    keys, source, label = resolve_keys("", key_b.decode(), str(path))
    assert (keys, source) == ([key_b], vault.SOURCE_ENV)
    assert vault.ENV_VARIABLE in label
    assert not path.exists()  # a configured key never creates the file
    keys, source, _label = resolve_keys(None, "  ", str(path))
    assert source == vault.SOURCE_FILE and len(keys) == 1
    assert path.exists()


def test_key_file_created_0600_in_0700_dir_and_reused(tmp_path):
    path = tmp_path / "data" / "imap_sent_sync" / "secret.key"
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        first = load_keys(None, None, str(path))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_keys(None, None, str(path)) == first
    assert path.read_bytes().strip() == first[0]
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temp file left


def test_key_file_may_list_several_keys(tmp_path, key_a, key_b):
    path = tmp_path / "secret.key"
    path.write_text(f"# rotated 2024, old key kept\n{key_b.decode()}\n\n{key_a.decode()}\n")
    path.chmod(0o600)
    assert load_keys(None, None, str(path)) == [key_b, key_a]


def test_key_file_not_created_when_asked(tmp_path):
    with pytest.raises(VaultKeyError):
        load_keys(None, None, str(tmp_path / "missing.key"), create=False)


def test_unreadable_location_is_a_key_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(VaultKeyError) as info:
        load_keys(None, None, str(blocker / "imap_sent_sync" / "secret.key"))
    assert "imap_sent_sync_keys" in str(info.value)


def test_corrupt_key_file(tmp_path):
    path = tmp_path / "secret.key"
    path.write_text("not-a-key\n")
    path.chmod(0o600)
    with pytest.raises(VaultKeyError) as info:
        load_keys(None, None, str(path))
    assert "not-a-key" not in str(info.value)


def test_world_readable_key_file_warns(tmp_path, caplog, key_a):
    path = tmp_path / "secret.key"
    path.write_text(key_a.decode())
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger=vault.__name__):
        assert load_keys(None, None, str(path)) == [key_a]
    assert "chmod 600" in caplog.text
    assert key_a.decode() not in caplog.text


def _load_in_child(path, barrier, queue):
    barrier.wait()
    queue.put(load_keys(None, None, path)[0])


def test_concurrent_first_use_creates_one_key(tmp_path):
    """Several workers starting at once all end up with the same single key."""
    path = str(tmp_path / "imap_sent_sync" / "secret.key")
    context = multiprocessing.get_context("fork")
    workers = 8
    barrier = context.Barrier(workers)
    queue = context.Queue()
    processes = [context.Process(target=_load_in_child, args=(path, barrier, queue))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=30) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert len(set(results)) == 1
    assert load_keys(None, None, path) == [results[0]]
    assert sorted(os.listdir(os.path.dirname(path))) == ["secret.key"]


def test_generate_key_is_a_valid_config_value():
    key = generate_key()
    assert isinstance(key, str) and len(key) == 44
    assert load_keys(key, None, "/nonexistent/never/created") == [key.encode()]
