"""Provider presets table and suggest_preset()."""

import pytest

from imap_sent_sync.mailsync.endpoint import SECURITY_CHOICES
from imap_sent_sync.mailsync.presets import (
    PRESETS, Preset, get_preset, login_failure_hint, suggest_preset,
)

REQUIRED = ["gmail", "outlook", "microsoft365", "yahoo", "aol", "icloud", "fastmail", "zoho",
            "yandex", "gmx", "mail_com", "custom"]


def test_required_providers_present_and_custom_last():
    for key in REQUIRED:
        assert key in PRESETS
    assert list(PRESETS)[-1] == "custom"


@pytest.mark.parametrize("key", [k for k in PRESETS if k != "custom"])
def test_every_provider_preset_is_complete(key):
    preset = PRESETS[key]
    assert isinstance(preset, Preset) and preset.key == key and preset.label
    assert preset.imap_host and preset.smtp_host
    assert preset.imap_port == 993 and preset.imap_security == "ssl"
    assert (preset.smtp_port, preset.smtp_security) in {(465, "ssl"), (587, "starttls")}
    assert preset.imap_security in dict(SECURITY_CHOICES)
    assert preset.app_password_hint
    assert preset.sent_folder


def test_selection_labels_are_unique():
    labels = [p.label for p in PRESETS.values()]
    assert len(labels) == len(set(labels))


def test_known_quirks():
    assert PRESETS["gmail"].saves_sent_copy is True
    assert PRESETS["gmail"].sent_folder == "[Gmail]/Sent Mail"
    assert PRESETS["gmail"].max_connections == 15
    assert PRESETS["microsoft365"].saves_sent_copy is True
    assert PRESETS["microsoft365"].sent_folder == "Sent Items"
    assert PRESETS["outlook"].saves_sent_copy is True
    assert PRESETS["icloud"].sent_folder == "Sent Messages"
    assert PRESETS["yahoo"].saves_sent_copy is False
    assert "apppasswords" in PRESETS["gmail"].app_password_hint
    assert "IMAP" in PRESETS["gmx"].app_password_hint


@pytest.mark.parametrize("address, key", [
    ("someone@gmail.com", "gmail"),
    ("Someone <SOMEONE@GoogleMail.com>", "gmail"),
    ("a@outlook.com", "outlook"),
    ("a@outlook.de", "outlook"),
    ("a@hotmail.com", "outlook"),
    ("a@hotmail.co.uk", "outlook"),
    ("a@hotmail.fr", "outlook"),
    ("a@live.com", "outlook"),
    ("a@msn.com", "outlook"),
    ("a@yahoo.com", "yahoo"),
    ("a@yahoo.co.uk", "yahoo"),
    ("a@ymail.com", "yahoo"),
    ("a@aol.com", "aol"),
    ("a@icloud.com", "icloud"),
    ("a@me.com", "icloud"),
    ("a@mac.com", "icloud"),
    ("a@fastmail.com", "fastmail"),
    ("a@fastmail.fm", "fastmail"),
    ("a@zoho.com", "zoho"),
    ("a@yandex.ru", "yandex"),
    ("a@yandex.com", "yandex"),
    ("a@ya.ru", "yandex"),
    ("a@gmx.de", "gmx"),
    ("a@gmx.net", "gmx"),
    ("a@gmx.com", "gmx_com"),
    ("a@gmx.fr", "gmx_com"),
    ("a@mail.com", "mail_com"),
    ("a@web.de", "web_de"),
    ("gmail.com", "gmail"),            # a bare domain works too
    ("  x@Gmail.COM.  ", "gmail"),
])
def test_suggest_preset(address, key):
    assert suggest_preset(address) == key


@pytest.mark.parametrize("address", [
    "boss@acme-corp.com",        # Google Workspace or Microsoft 365: can't be told
    "a@yahoo.co.jp",             # a different service
    "a@notgmail.com",
    "a@gmail.com.evil.example",
    "a@hotmail.evil.example.com",
    "",
    None,
    "not an address",
])
def test_suggest_preset_unknown(address):
    assert suggest_preset(address) is None


def test_get_preset_and_login_hint_fallbacks():
    assert get_preset(None).key == "custom"
    assert get_preset("nope").key == "custom"
    assert login_failure_hint("icloud") == PRESETS["icloud"].app_password_hint
    assert "app password" in login_failure_hint(None)
