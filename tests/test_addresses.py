"""Unit tests of address normalization and participant matching (no Odoo, no server)."""

import pytest

from imap_sent_sync.mailsync.addresses import (
    domain_of, extract_addresses, is_blocked, lookup_forms, message_participants,
    normalize_address, normalize_domain, parse_address_list,
)
from imap_sent_sync.mailsync.mime import parse_message

ASCII_CASES = [
    "Name <NaMe@DoMaIn.CoM>",
    '"a@b" <X@Y.com>',
    "<A@B.C>",
    "x@y",
    "  John.Doe+Tag@Example.ORG  ",
    '"Doe, John" <JDoe@Example.com>',
    "user_name@sub_domain.example.com",
    "John Doe j@x.com",
]


@pytest.mark.parametrize("value, expected", [
    ("Name <NaMe@DoMaIn.CoM>", "name@domain.com"),
    ("<A@B.C>", "a@b.c"),
    ("  John.Doe+Tag@Example.ORG  ", "john.doe+tag@example.org"),
    ("mailto:Jane@Example.com", "jane@example.com"),
    (("Jane", "Jane@Example.com"), "jane@example.com"),
    (b"Jane <Jane@Example.com>", "jane@example.com"),
    ("José <josé@Bücher.DE>", "josé@xn--bcher-kva.de"),  # non-ASCII local part kept
    ("JOSÉ@bücher.de", "JOSÉ@xn--bcher-kva.de"),
    ("a@xn--bcher-kva.DE", "a@xn--bcher-kva.de"),
    ("a@例え.テスト", "a@xn--r8jz45g.xn--zckzah"),
    ("a@straße.de", "a@xn--strae-oqa.de"),  # IDNA 2008, as Odoo's formataddr
    ("John Doe j@x.com", "j@x.com"),
    ("not an address", None),
    ("@example.com", None),
    ("a@", None),
    ("", None),
    (None, None),
    (42, None),
])
def test_normalize_address(value, expected):
    assert normalize_address(value) == expected


@pytest.mark.parametrize("value", ASCII_CASES)
def test_matches_odoo_email_normalize_for_ascii(value):
    mail_tools = pytest.importorskip("odoo.tools.mail")
    assert normalize_address(value) == mail_tools.email_normalize(value, strict=False)


def test_lookup_forms_cover_odoo_unicode_storage():
    assert lookup_forms("A@Example.com") == {"a@example.com"}
    assert lookup_forms("a@Bücher.de") == {"a@xn--bcher-kva.de", "a@bücher.de"}
    assert lookup_forms("a@xn--bcher-kva.de") == {"a@xn--bcher-kva.de", "a@bücher.de"}
    assert lookup_forms("garbage") == set()


def test_normalize_domain():
    assert normalize_domain("Example.COM.") == "example.com"
    assert normalize_domain("Bücher.de") == "xn--bcher-kva.de"
    assert normalize_domain("") == ""


def test_parse_address_list_tolerates_broken_headers():
    assert parse_address_list("=?utf-8?q?Doe,_John?= <j@x.com>, b@y.com") == [
        ("Doe, John", "j@x.com"), ("", "b@y.com")]
    assert parse_address_list("Team: a@x.com, \"B, C\" <b@y.com>;, d@z.com") == [
        ("", "a@x.com"), ("B, C", "b@y.com"), ("", "d@z.com")]
    assert parse_address_list("undisclosed-recipients:;") == []
    assert parse_address_list("a@b.com d@e.com") == [("", "a@b.com"), ("", "d@e.com")]
    assert parse_address_list("a@b.com,,,,") == [("", "a@b.com")]
    assert parse_address_list('"unterminated <a@b.com>') == [("", "a@b.com")]
    assert parse_address_list("Zoë <zoe@example.com>") == [("Zoë", "zoe@example.com")]
    assert parse_address_list("  ") == [] and parse_address_list(None) == []


def test_extract_addresses_from_mixed_inputs():
    headers = ["Alice <Alice@Example.com>, bob@example.org", "BOB@example.org",
               b"Carol <carol@\xc3\xa9xample.com>"]
    assert extract_addresses(headers) == [
        "alice@example.com", "bob@example.org", "carol@xn--xample-9ua.com"]
    # (name, address) pairs as ParsedMessage holds them: the name is not scanned
    assert extract_addresses([("john@x.com", "john@y.com")]) == ["john@y.com"]
    assert extract_addresses(("a@x.com", "b@y.com")) == ["a@x.com", "b@y.com"]
    assert extract_addresses(None) == [] and extract_addresses([]) == []
    assert extract_addresses("=?utf-8?b?SsO2cmc=?= <Joerg@Example.de>") == ["joerg@example.de"]


def test_domain_of():
    assert domain_of("Jane <jane@Mail.Example.COM>") == "mail.example.com"
    assert domain_of("x@Bücher.de") == "xn--bcher-kva.de"
    assert domain_of("nothing") is None


@pytest.mark.parametrize("addr, entries, blocked", [
    ("jane@example.com", ["jane@example.com"], True),
    ("Jane <JANE@Example.com>", ["jane@EXAMPLE.com"], True),
    ("jane@example.com", ["john@example.com"], False),
    ("jane@example.com", ["example.com"], True),
    ("jane@example.com", ["@Example.com"], True),
    ("jane@mail.example.com", ["example.com"], False),  # subdomains need *.
    ("jane@mail.example.com", ["@example.com"], False),
    ("jane@mail.example.com", ["*.example.com"], True),
    ("jane@example.com", ["*.example.com"], True),
    ("jane@notexample.com", ["*.example.com"], False),
    ("jane@notexample.com", ["example.com"], False),
    ("a@bücher.de", ["xn--bcher-kva.de"], True),
    ("a@xn--bcher-kva.de", ["Bücher.de"], True),
    ("jane@example.com", ["", None, "  ", "@"], False),
    ("jane@example.com", "foo.org, example.com", True),
    ("not an address", ["example.com"], False),
    ("jane@example.com", [], False),
])
def test_is_blocked(addr, entries, blocked):
    assert is_blocked(addr, entries) is blocked


SENT = b"""From: Rep <Rep@Ourco.com>
To: Client <client@customer.com>, rep@ourco.com
Cc: boss@ourco.com, "Partner" <Partner@Vendor.net>
Bcc: secret@customer.com
Subject: offer
Message-ID: <sent@ourco.com>

hi
"""


def test_message_participants_includes_bcc_only_on_sent_mail():
    parsed = parse_message(SENT)
    assert message_participants(parsed, own_addresses=["rep@ourco.com"]) == {
        "rep@ourco.com", "client@customer.com", "boss@ourco.com", "partner@vendor.net",
        "secret@customer.com"}
    assert "secret@customer.com" not in message_participants(
        parsed, own_addresses=["rep@ourco.com"], include_bcc_when_sent=False)
    received = parse_message(SENT.replace(b"From: Rep <Rep@Ourco.com>", b"From: x@other.org"))
    assert "secret@customer.com" not in message_participants(
        received, own_addresses=["REP@ourco.com"])
    assert message_participants(received, own_addresses=[]) >= {"x@other.org", "client@customer.com"}


# ---------------------------------------------------------------- fast path
# parse_address_list reads simple lists with a regex instead of the stdlib's
# pure-Python parser (the largest cost of importing mail). Whatever the fast
# path accepts must give exactly what the stdlib gives.

from email.utils import getaddresses  # noqa: E402

from hypothesis import given, settings, strategies as st  # noqa: E402

from imap_sent_sync.mailsync import addresses as addresses_mod  # noqa: E402

FAST_CASES = [
    "a@b.c", " a@b.c , <d@e.f>", "<a@b.c>", "John Doe <a@b.c>", "John  Doe <a@b.c>",
    "John Q. Public <a@b.c>", "J.Doe <a@b.c>", '"Doe, J" <a@b.c>', '"" <a@b.c>',
    "Joe<a@b.c>", '"Joe"<a@b.c>', "O'Neil <a@b.c>", "Mr. <a@b.c>", "A <a@b.c>,",
    "x.y+tag@sub_domain.example.com", "a@b.c, C <c@d.e>, \"E, F\" <e@f.g>",
    "ZZENCWORD0ZZ <a@b.c>", "ZZENCWORD0ZZ ZZENCWORD1ZZ <a@b.c>",
]
SLOW_CASES = [
    "Jo (c) <a@b.c>", "x <a@b.c> y", ",a@b.c", "a@b.c d@e.f", "a.@b.c", ".a@b.c",
    "a@b..c", "a@b.c.", "Group: a@b.c, d@e.f;", '"a\\"b" <a@b.c>', "<@route:a@b.c>",
    "a@[127.0.0.1]", "José <josé@bücher.de>", "undisclosed-recipients:;", "",
]


@pytest.mark.parametrize("value", FAST_CASES)
def test_fast_path_accepts_common_lists_and_agrees_with_stdlib(value):
    fast = addresses_mod._fast_getaddresses(value)
    assert fast is not None
    assert fast == getaddresses([value])


@pytest.mark.parametrize("value", SLOW_CASES)
def test_fast_path_leaves_unusual_lists_to_stdlib(value):
    assert addresses_mod._fast_getaddresses(value) is None


_address_pieces = st.sampled_from([
    "a", "b.c", "x", "John", "Doe", "Q.", ".", "..", " ", "  ", "\t", ",", ", ", "<", ">",
    "@", "a@b.c", "x.y@ex-ample.org", "<a@b.c>", '"', '"Doe, J"', "(c)", ":", ";", "\\",
    "é", "=?utf-8?q?J=C3=A9?=", "ZZENCWORD0ZZ", "[1.2.3.4]", "_", "-", "'",
])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_address_pieces, min_size=1, max_size=12).map("".join))
def test_fast_path_never_disagrees_with_stdlib(value):
    fast = addresses_mod._fast_getaddresses(value)
    if fast is not None:
        assert fast == getaddresses([value])


def test_parse_address_list_results_cannot_be_changed_through_the_cache():
    first = parse_address_list("Jane <jane@example.com>")
    first.append(("evil", "evil@example.com"))
    assert parse_address_list("Jane <jane@example.com>") == [("Jane", "jane@example.com")]
