"""Unit tests of the inbound MIME layer (no Odoo, no server)."""
import base64
import hashlib
import os
import struct
import tracemalloc
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from imap_sent_sync.mailsync import mime, tnef
from imap_sent_sync.mailsync.mime import MimeParseError, parse_headers, parse_message

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def corpus(name, crlf=False):
    with open(os.path.join(CORPUS, name), "rb") as handle:
        data = handle.read()
    return data.replace(b"\n", b"\r\n") if crlf else data


def all_corpus_files():
    return sorted(f for f in os.listdir(CORPUS) if f.endswith(".eml"))


# ---------------------------------------------------------------- corpus

@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize("name", all_corpus_files())
def test_corpus_parses_in_every_mode(name, crlf):
    raw = corpus(name, crlf)
    for content in mime.CONTENT_MODES:
        for include in (True, False):
            msg = parse_message(raw, content=content, include_attachments=include)
            assert msg.message_id and " " not in msg.message_id and "<" not in msg.message_id
            assert msg.size == len(raw)
            if content == "headers":
                assert msg.body_html is None and msg.body_text is None and not msg.attachments
            if content == "text":
                assert msg.body_html is None
            if not include:
                assert msg.attachments == []
            for value in (msg.subject, msg.body_html or "", msg.body_text or ""):
                assert "\x00" not in value


def test_line_endings_do_not_change_the_result():
    for name in all_corpus_files():
        lf, crlf = parse_message(corpus(name)), parse_message(corpus(name, crlf=True))
        assert lf.message_id == crlf.message_id, name
        assert lf.subject == crlf.subject, name
        # 7bit text attachments keep the line endings they were stored with
        assert ([a.data.replace(b"\r\n", b"\n") for a in lf.attachments]
                == [a.data.replace(b"\r\n", b"\n") for a in crlf.attachments]), name
        assert ((lf.body_text or "").replace("\r\n", "\n").strip()
                == (crlf.body_text or "").replace("\r\n", "\n").strip()), name


def test_missing_close_boundary_keeps_last_part():
    msg = parse_message(corpus("missing_close_boundary.eml"))
    assert msg.body_text == "Numbers attached."
    assert [(a.filename, a.data) for a in msg.attachments] == [("q1.pdf", PDF)]
    assert any("closing boundary" in d for d in msg.defects)


def test_bad_base64_is_repaired():
    msg = parse_message(corpus("bad_base64.eml"))
    assert msg.body_text == "Hello world"
    assert msg.attachments[0].filename == "report.pdf"
    assert msg.attachments[0].data == PDF
    assert any("base64" in d for d in msg.defects)


def test_wrong_declared_charsets():
    msg = parse_message(corpus("wrong_charset.eml"))
    # latin-1 label on UTF-8 bytes, and UTF-8 label on latin-1 bytes
    assert "Grüße aus Köln" in msg.body_text
    assert "Crème brûlée" in msg.body_text
    assert "\ufffd" not in msg.body_text


def test_unknown_charset_falls_back_to_windows_1252():
    msg = parse_message(corpus("unknown_charset.eml"))
    assert msg.body_text.strip() == "Price: 10€ – “quoted”"
    assert any("x-unknown" in d for d in msg.defects)


def test_broken_encoded_words():
    msg = parse_message(corpus("broken_encoded_words.eml"))
    # split multi-byte character across words, missing base64 padding, glued words
    assert msg.subject.startswith("éééRe: café")
    assert "unterminated" in msg.subject  # left readable, not dropped
    assert msg.from_ == [("José García", "jose@example.com")]
    assert msg.to == [("Café", "cafe@example.org"), ("François", "francois@example.org")]


def test_raw_8bit_headers():
    msg = parse_message(corpus("raw_8bit_headers.eml"))
    assert msg.subject == "Grüße – naïve"
    assert msg.from_ == [("Zoë Ünal", "zoe@example.com")]
    assert msg.to == [("Renée", "renee@example.org")]  # latin-1 bytes
    assert any("8-bit header To" in d for d in msg.defects)


def test_missing_date_is_none_for_internaldate_fallback():
    msg = parse_message(corpus("missing_date.eml"))
    assert msg.date is None
    assert "missing Date" in msg.defects


def test_missing_from_uses_sender():
    msg = parse_message(corpus("missing_from.eml"))
    assert msg.from_ == [("Mailer", "mailer@example.net")]
    assert any("missing From" in d for d in msg.defects)
    bare = parse_message(b"To: bob@example.org\nSubject: x\n\nbody\n")
    assert bare.from_ == []


def test_missing_message_id_gets_stable_synthetic_id():
    raw = corpus("missing_message_id.eml")
    first, second = parse_message(raw), parse_message(bytes(raw))
    assert first.message_id_synthetic
    assert first.message_id == second.message_id
    assert first.message_id.endswith("@" + mime.SYNTHETIC_ID_DOMAIN)
    assert len(first.message_id.split("@")[0]) == 64
    # distinct mail -> distinct ids: each hashed field matters
    variants = [
        raw.replace(b"Subject: no id", b"Subject: no id!"),
        raw.replace(b"09:22:00", b"09:22:01"),
        raw.replace(b"From: frank@", b"From: frank2@"),
        raw.replace(b"To: bob@", b"To: bob2@"),
        raw.replace(b"no message id here", b"no message id there"),
    ]
    ids = {parse_message(v).message_id for v in variants}
    assert len(ids) == len(variants) and first.message_id not in ids
    # same bytes fetched with different line endings and folding -> same id
    assert parse_message(raw.replace(b"\n", b"\r\n")).message_id == first.message_id
    refolded = raw.replace(b"Subject: no id", b"Subject: no\n id")
    assert parse_message(refolded).message_id == first.message_id


def test_synthetic_id_from_header_fetch_matches_full_parse():
    raw = corpus("missing_message_id.eml").replace(b"\n", b"\r\n")
    split = raw.index(b"\r\n\r\n") + 4
    header, body = raw[:split], raw[split:]
    full = parse_message(raw)
    assert parse_headers(header, body_prefix=body[:1024]).message_id == full.message_id
    big_body = b"x" * 5000
    assert (parse_headers(header, body_prefix=big_body[:1024]).message_id
            == parse_message(header + big_body).message_id)


def test_nested_multipart_with_inline_image():
    msg = parse_message(corpus("nested_inline_images.eml"))
    assert msg.body_html.startswith("<html><body><p>See the photo below.</p>")
    assert 'src="cid:Photo1.PNG@01DA"' in msg.body_html
    photo, spec = msg.attachments
    assert (photo.filename, photo.content_type, photo.inline) == ("photo.png", "image/png", True)
    assert photo.content_id == "Photo1.PNG@01DA"  # case kept: must match cid: verbatim
    assert photo.data.startswith(b"\x89PNG") and photo.size == len(photo.data)
    assert (spec.filename, spec.inline, spec.data) == ("spec.pdf", False, PDF)
    assert msg.in_reply_to == "prev@example.org"
    assert msg.references == ["root@example.org", "prev@example.org"]
    assert msg.thread_ids == ["root@example.org", "prev@example.org"]
    assert msg.cc == [("Heidi", "heidi@example.net")]
    text = parse_message(corpus("nested_inline_images.eml"), content="text")
    assert text.body_html is None and text.body_text == "See the photo below."


def test_rtf_only_body():
    msg = parse_message(corpus("rtf_only.eml"))
    assert msg.body_html is None
    assert msg.body_text.splitlines() == [
        "Café au lait", "Price: 5€\t€", "Snowman ☃ done", "Backslash \\ and braces { }"]
    assert msg.attachments == []  # the body is not also an attachment
    assert "Msftedit" not in msg.body_text and "Arial" not in msg.body_text


def test_rtf_encapsulated_html():
    rtf = (rb"{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl{\f0\fswiss Arial;}}"
           rb"{\*\htmltag19 <html>}{\*\htmltag50 <body>}\htmlrtf {\htmlrtf0 "
           rb"{\*\htmltag64 <p>}\htmlrtf {\htmlrtf0 Caf\'e9 & co\htmlrtf\par}\htmlrtf0 "
           rb"{\*\htmltag72 </p>}}{\*\htmltag58 </body>}{\*\htmltag27 </html>}}")
    assert mime.rtf_to_html(rtf) == "<html><body><p>Café &amp; co</p></body></html>"
    assert mime.rtf_to_text(rtf) == "Café & co"
    assert mime.rtf_to_html(rb"{\rtf1 plain}") is None


def test_rfc2231_and_encoded_word_filenames():
    msg = parse_message(corpus("rfc2231_filenames.eml"))
    assert [a.filename for a in msg.attachments] == [
        "résumé final.pdf", "Grüße aus Köln.txt", "отчет.docx", "notes.txt"]
    assert msg.body_text == "files attached"


def test_missing_boundary_parameter_is_guessed():
    msg = parse_message(corpus("missing_boundary_param.eml"))
    assert msg.body_text == "guessed boundary body"
    assert [(a.filename, a.data) for a in msg.attachments] == [("data.csv", b"a,b\n1,2")]


def test_missing_blank_line_after_headers():
    msg = parse_message(corpus("no_header_separator.eml"))
    assert msg.subject == "no blank line"
    assert msg.date == datetime(2024, 3, 4, 8, 27, tzinfo=timezone.utc)
    assert msg.body_text.startswith("This line starts the body")


def test_forwarded_message_calendar_and_flowed_text():
    msg = parse_message(corpus("forwarded_and_calendar.eml"))
    assert msg.body_text == ("This is a flowed paragraph that continues on the next line.\n"
                             "> quoted line that is continued")
    names = [(a.filename, a.content_type) for a in msg.attachments]
    assert names == [("invite.ics", "text/calendar"), ("Original méssage.eml", "message/rfc822")]
    assert msg.attachments[1].data.startswith(b"From: old@example.net")


# ---------------------------------------------------------------- options

def _mail_with_attachment(size, name="big.bin"):
    payload = os.urandom(size)
    raw = (b"From: a@example.com\r\nTo: b@example.org\r\nSubject: big\r\n"
           b"Message-ID: <big@example.com>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n"
           b"--BB\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
           b"--BB\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Disposition: attachment; filename=\"" + name.encode() + b"\"\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(payload).replace(b"\n", b"\r\n")
           + b"--BB--\r\n")
    return raw, payload


def test_attachment_size_limit_and_exclusion():
    raw, payload = _mail_with_attachment(3000)
    kept = parse_message(raw, max_attachment_bytes=3000)
    assert kept.attachments[0].data == payload and kept.skipped_attachments == []
    over = parse_message(raw, max_attachment_bytes=2999)
    assert over.attachments == []
    assert [(s.filename, s.size, s.reason) for s in over.skipped_attachments] == [
        ("big.bin", 3000, "too_large")]
    assert over.body_text == "see attachment"
    excluded = parse_message(raw, include_attachments=False)
    skipped = excluded.skipped_attachments[0]
    assert (skipped.filename, skipped.reason, skipped.content_type) == (
        "big.bin", "excluded", "application/octet-stream")
    assert abs(skipped.size - 3000) <= 2  # estimated without decoding
    headers_only = parse_message(raw, content="headers")
    assert headers_only.skipped_attachments == [] and headers_only.attachments == []


def test_huge_message_memory_stays_proportional():
    raw, payload = _mail_with_attachment(25 * 1024 * 1024)
    digest = hashlib.sha256(payload).hexdigest()
    del payload
    tracemalloc.start()
    try:
        msg = parse_message(raw)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert hashlib.sha256(msg.attachments[0].data).hexdigest() == digest
    assert peak < 3 * len(raw), "peak %d for a %d byte message" % (peak, len(raw))
    del msg
    tracemalloc.start()
    try:
        msg = parse_message(raw, max_attachment_bytes=10 * 1024 * 1024)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert msg.attachments == [] and msg.skipped_attachments[0].reason == "too_large"
    assert peak < 1024 * 1024  # a skipped attachment is never decoded


def test_text_mode_converts_html_only_mail():
    raw = (b"From: a@example.com\nSubject: html\nContent-Type: text/html; charset=utf-8\n\n"
           b"<html><head><style>p{color:red}</style></head><body><p>Hello&nbsp;<b>world</b></p>"
           b"<ul><li>one</li><li>two</li></ul><script>alert(1)</script></body></html>")
    full = parse_message(raw)
    assert full.body_html.startswith("<html>") and full.body_text is None
    text = parse_message(raw, content="text")
    assert text.body_html is None
    assert text.body_text == "Hello world\n\n- one\n- two"


def test_plain_parts_next_to_html_are_kept():
    raw = (b"From: a@example.com\nSubject: footer\nContent-Type: multipart/mixed; boundary=m\n\n"
           b"--m\nContent-Type: text/html\n\n<p>Hi</p>\n--m\nContent-Type: text/plain\n\n"
           b"-- list footer <unsubscribe>\n--m--\n")
    msg = parse_message(raw)
    assert msg.body_html == "<p>Hi</p>\n<div>-- list footer &lt;unsubscribe&gt;</div>"
    assert msg.body_text == "-- list footer <unsubscribe>"


def test_html_meta_charset_used_when_header_has_none():
    raw = (b"From: a@example.com\nContent-Type: text/html\n\n"
           b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
           + "Привет".encode("cp1251"))
    assert "Привет" in parse_message(raw).body_html


# ---------------------------------------------------------------- headers

@pytest.mark.parametrize("value, expected", [
    ("<ABC.def@Example.COM>", "ABC.def@example.com"),
    ("  <abc@x.org>  (comment)", "abc@x.org"),
    ("<abc@\r\n x.org>", "abc@x.org"),
    ("abc@X.org", "abc@x.org"),
    ("<1234>", "1234"),
    ("<>", None),
    ("", None),
    (None, None),
])
def test_normalize_message_id(value, expected):
    assert mime.normalize_message_id(value) == expected


def test_format_message_id_round_trip():
    assert mime.format_message_id("abc@x.org") == "<abc@x.org>"
    assert mime.normalize_message_id(mime.format_message_id("abc@x.org")) == "abc@x.org"


@pytest.mark.parametrize("value, expected", [
    ("Tue, 1 Jul 2003 10:52:37 +0200", datetime(2003, 7, 1, 8, 52, 37, tzinfo=timezone.utc)),
    ("1 Jul 2003 10:52:37 -0000", datetime(2003, 7, 1, 10, 52, 37, tzinfo=timezone.utc)),
    ("Tue, 1 Jul 03 10:52:37 GMT", datetime(2003, 7, 1, 10, 52, 37, tzinfo=timezone.utc)),
    ("Tue, 1 Jul 2003 10:52:60 +0000", datetime(2003, 7, 1, 10, 52, 59, tzinfo=timezone.utc)),
    ("2024-03-04T09:15:00+01:00", datetime(2024, 3, 4, 8, 15, tzinfo=timezone.utc)),
    ("yesterday", None),
    ("Tue, 31 Feb 2003 10:52:37 +0200", None),
])
def test_date_parsing(value, expected):
    raw = b"From: a@example.com\nDate: " + value.encode() + b"\n\nx"
    assert parse_message(raw).date == expected


def test_headers_list_and_accessor():
    msg = parse_message(corpus("nested_inline_images.eml"), content="headers")
    assert msg.header("content-type").startswith("multipart/mixed")
    assert msg.header("X-Missing", "dflt") == "dflt"
    assert ("Subject", "Photos") in msg.headers


@pytest.mark.parametrize("raw", [b"", b"   \r\n\r\n", b"just some text without any header"])
def test_not_an_email_raises_clear_error(raw):
    with pytest.raises(MimeParseError):
        parse_message(raw)


def test_mbox_from_line_and_leading_blank_lines():
    msg = parse_message(b"\r\n\r\nFrom alice@example.com Mon Mar  4 09:00:00 2024\r\n"
                        b"From: alice@example.com\r\nSubject: mbox\r\n\r\nbody")
    assert msg.subject == "mbox" and msg.from_ == [("", "alice@example.com")]


def test_decode_header_text_cases():
    assert mime.decode_header_text("=?iso-8859-1?q?caf=E9?=") == "café"
    assert mime.decode_header_text("=?utf-8?q?a?=   =?utf-8?q?b?=") == "ab"
    assert mime.decode_header_text("x =?utf-8?q?a?= y") == "x a y"
    assert mime.decode_header_text("=?utf-8*en?q?hi?=") == "hi"  # RFC 2231 language
    assert mime.decode_header_text("a\x00b\x01c") == "ab c"


def test_decode_text_never_raises_on_odd_charsets():
    for charset in (None, "", "zlib", "base64", "punycode", "x-unknown", '"utf-8"', "UTF8",
                    "gb2312", "utf-16", "\x00", "a" * 300):
        assert isinstance(mime.decode_text(b"caf\xe9 \xff\xfe", charset), str)
    assert mime.decode_text("漢字".encode("gb18030"), "gb2312") == "漢字"


# ---------------------------------------------------------------- TNEF

def _tnef_attr(level, name, atype, data):
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, name, atype, len(data)) + data + struct.pack("<H", checksum)


def _mapi_binary(prop_id, data, prop_type=0x0102):
    padded = data + b"\x00" * (-len(data) % 4)
    return struct.pack("<HHII", prop_type, prop_id, 1, len(data)) + padded


def _mapi_props(*props):
    return struct.pack("<I", len(props)) + b"".join(props)


def build_tnef(attachments=(), html=None, rtf=None, body=None):
    """Minimal TNEF stream (MS-OXTNEF): message attributes, then for each
    attachment attAttachRendData, attAttachTitle, attAttachData and an
    attAttachment MAPI block carrying the long filename."""
    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += _tnef_attr(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += _tnef_attr(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))  # attOemCodepage
    out += _tnef_attr(1, 0x8008, 0x0007, b"IPM.Microsoft Mail.Note\x00")  # attMessageClass
    if body is not None:
        out += _tnef_attr(1, 0x800C, 0x0002, body)  # attBody
    props = []
    if html is not None:
        props.append(_mapi_binary(0x1013, html))  # PR_BODY_HTML
    if rtf is not None:
        # "MELA" (uncompressed) framing of PR_RTF_COMPRESSED
        framed = struct.pack("<IIII", len(rtf) + 12, len(rtf), 0x414C454D, 0) + rtf
        props.append(_mapi_binary(0x1009, framed))  # PR_RTF_COMPRESSED
    if props:
        out += _tnef_attr(1, 0x9003, 0x0006, _mapi_props(*props))  # attMAPIProps
    for short_name, long_name, data in attachments:
        out += _tnef_attr(2, 0x9002, 0x0006, b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 8)
        out += _tnef_attr(2, 0x8010, 0x0001, short_name + b"\x00")  # attAttachTitle
        out += _tnef_attr(2, 0x800F, 0x0006, data)  # attAttachData
        if long_name:
            name = long_name.encode("utf-16-le") + b"\x00\x00"
            out += _tnef_attr(2, 0x9005, 0x0006, _mapi_props(
                _mapi_binary(0x3707, name, prop_type=0x001F)))  # PR_ATTACH_LONG_FILENAME
    return out


def _mail_with_tnef(blob, plain=b"\r\n"):
    return (b"From: Outlook User <user@example.com>\r\nTo: bob@example.org\r\n"
            b"Subject: winmail\r\nMessage-ID: <tnef@example.com>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"T\"\r\n\r\n"
            b"--T\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + plain + b"\r\n"
            b"--T\r\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\r\n"
            b"Content-Disposition: attachment; filename=\"winmail.dat\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(blob).replace(b"\n", b"\r\n") + b"--T--\r\n")


def test_tnef_attachments_and_html_body():
    blob = build_tnef(
        attachments=[(b"REPORT~1.PDF", "Quarterly report 2024.pdf", PDF),
                     (b"Gr\xfc\xdfe.txt", None, b"hello")],
        html=b"<html><body><p>From Outlook</p></body></html>")
    msg = parse_message(_mail_with_tnef(blob))
    assert [(a.filename, a.content_type, a.data) for a in msg.attachments] == [
        ("Quarterly report 2024.pdf", "application/pdf", PDF),
        ("Grüße.txt", "text/plain", b"hello"),  # cp1252 title, not UTF-8
    ]
    assert msg.body_html == "<html><body><p>From Outlook</p></body></html>"
    limited = parse_message(_mail_with_tnef(blob), max_attachment_bytes=10)
    assert [a.filename for a in limited.attachments] == ["Grüße.txt"]
    assert [(s.filename, s.size) for s in limited.skipped_attachments] == [
        ("Quarterly report 2024.pdf", len(PDF))]
    excluded = parse_message(_mail_with_tnef(blob), include_attachments=False)
    assert excluded.attachments == [] and len(excluded.skipped_attachments) == 2
    assert excluded.body_html == msg.body_html  # the body still comes out of the TNEF


def test_tnef_rtf_body_used_only_without_other_body():
    blob = build_tnef(rtf=rb"{\rtf1\ansi Hello from \b RTF\b0\par}")
    assert parse_message(_mail_with_tnef(blob)).body_text == "Hello from RTF"
    assert parse_message(_mail_with_tnef(blob, plain=b"Real body")).body_text == "Real body"


def test_damaged_tnef_is_kept_as_file():
    blob = b"\x78\x9f\x3e\x22" + b"\x01\x00" + b"\x02" + os.urandom(64)
    msg = parse_message(_mail_with_tnef(blob))
    assert isinstance(msg.attachments, list)  # parsed without raising
    blob = b"NOTTNEF" + os.urandom(40)
    msg = parse_message(_mail_with_tnef(blob))
    assert [(a.filename, a.data) for a in msg.attachments] == [("winmail.dat", blob)]


def test_lzfu_decompression_matches_spec_examples():
    # MS-OXRTFCP 3.1.1.1.1/3.1.1.1.2 example streams
    simple = bytes.fromhex("2d0000002b0000004c5a4675f1c5c7a703000a007263706731323542320af320"
                           "68656c09002062770 5b06c647d0a800fa0".replace(" ", ""))
    assert tnef.decompress_rtf(simple) == b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"
    crossing = bytes.fromhex("1a0000001c0000004c5a4675e2d44b51410004205758595a0d6e7d010eb0")
    assert tnef.decompress_rtf(crossing) == b"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}"
    assert tnef.decompress_rtf(b"short") == b""
    assert isinstance(tnef.decompress_rtf(simple[:30]), bytes)


# ---------------------------------------------------------------- properties

_FRAGMENTS = [
    b"From: a@example.com\r\n", b"To: =?utf-8?q?x?= <b@example.org>, bad@@\r\n",
    b"Subject: =?utf-8?b?w6k?= \xff\xfe\r\n", b"Message-ID: <id@x>\r\n", b"Date: garbage\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n", b"Content-Type: multipart/alternative\r\n",
    b"Content-Type: text/html; charset=x-bogus\r\n", b"Content-Type: application/ms-tnef\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*0*=utf-8''%E2%82; filename*1=x\r\n",
    b"\r\n", b"--b\r\n", b"--b--\r\n", b" folded\r\n", b"QUJD===\r\n", b"=E9=\r\n",
    b"{\\rtf1 \\u-3913? \\'e9}\r\n", b"\x78\x9f\x3e\x22\x01\x00", b"\x00\x01\x02",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=600),
    st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.binary(max_size=20)), max_size=40)
    .map(b"".join),
))
def test_never_raises_anything_but_mime_parse_error(raw):
    for content in mime.CONTENT_MODES:
        try:
            first = parse_message(raw, content=content, max_attachment_bytes=50)
        except MimeParseError:
            continue
        second = parse_message(raw, content=content, max_attachment_bytes=50)
        assert first.message_id and first.message_id == second.message_id
        if first.message_id_synthetic:
            assert first.message_id.endswith("@" + mime.SYNTHETIC_ID_DOMAIN)


# ---------------------------------------------------------------- data: images

PNG_1PX = base64.b64decode(
    b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def _html_mail(html):
    return (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: img\r\n"
            b"Message-ID: <img@example.com>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            + html.encode())


def test_data_url_images_become_inline_attachments():
    data = base64.b64encode(PNG_1PX).decode()
    wrapped = "\r\n".join(data[i:i + 20] for i in range(0, len(data), 20))
    raw = _html_mail('<p>A<img src="data:image/png;base64,%s" alt="x"> B'
                     "<img src='data:image/JPEG;base64,%s'></p>" % (wrapped, data))
    msg = parse_message(raw)
    assert "data:" not in msg.body_html
    assert [(a.filename, a.content_type, a.data, a.inline) for a in msg.attachments] == [
        ("image1.png", "image/png", PNG_1PX, True), ("image2.jpeg", "image/jpeg", PNG_1PX, True)]
    for att in msg.attachments:
        assert "cid:%s" % att.content_id in msg.body_html
    assert 'alt="x"' in msg.body_html


def test_data_url_images_follow_the_attachment_rules():
    raw = _html_mail('<p><img src="data:image/png;base64,%s"></p>' % base64.b64encode(PNG_1PX).decode())
    off = parse_message(raw, include_attachments=False)
    small = parse_message(raw, max_attachment_bytes=10)
    for msg, reason in ((off, "excluded"), (small, "too_large")):
        assert msg.attachments == []
        assert "data:" not in msg.body_html and 'src=""' in msg.body_html
        assert [(s.filename, s.size, s.reason) for s in msg.skipped_attachments] == [
            ("image1.png", len(PNG_1PX), reason)]


def test_text_mentioning_data_urls_is_left_alone():
    raw = _html_mail("<p>Use data:image/png;base64,AAAA in CSS</p>")
    msg = parse_message(raw)
    assert msg.body_html.count("data:image/png;base64,AAAA") == 1 and msg.attachments == []
