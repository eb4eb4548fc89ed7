"""mailsync.sent_copy against the real rig (Dovecot + aiosmtpd), no mocks.

Covers: the copy transformations (full / text only / headers only, attachments
off, size limit), the Message-ID search before APPEND (both strategies),
MULTIAPPEND with \\Seen and the send time as INTERNALDATE, verification by
APPENDUID and by UID SEARCH, a provider that files sent mail itself, one
refused message in a MULTIAPPEND batch, Sent-folder resolution on each layout
and the creation of a top-level "Sent" when the server has none.
"""
import email
import email.policy
import smtplib
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from imap_sent_sync.mailsync import sent_copy
from imap_sent_sync.mailsync.errors import ConnectError
from imap_sent_sync.mailsync.sent_copy import (
    CopyOptions, PendingCopy, append_copies, find_existing, resolve_sent_folder, transform_copy)
from mailrig import MailRig, get_shared_rig

SEND_TIME = datetime(2024, 3, 5, 14, 30, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def rig():
    return get_shared_rig()


def build(sender="rep@rig.test", to="customer@example.com", subject="Quote",
          text="Hello,\nplease find the quote.\n", html=None, attachments=(), msgid=None):
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = msgid or make_msgid(domain="odoo.test")
    msg["Date"] = email.utils.format_datetime(SEND_TIME)
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    for name, data, mime in attachments:
        maintype, subtype = mime.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


# ---------------------------------------------------------------- transformations
def test_full_copy_is_the_exact_bytes():
    raw = build(attachments=[("quote.pdf", b"%PDF-1.4 x" * 100, "application/pdf")])
    assert transform_copy(raw) is raw
    # a size limit the attachment respects keeps the exact bytes too
    assert transform_copy(raw, CopyOptions(max_attachment_bytes=10_000)) == raw


def test_headers_only_keeps_every_header_and_drops_the_body():
    raw = build(html="<p>Hello <b>there</b></p>",
                attachments=[("quote.pdf", b"%PDF" * 50, "application/pdf")])
    out = transform_copy(raw, CopyOptions(content="headers"))
    original, copy = parse(raw), parse(out)
    for name in ("Message-ID", "From", "To", "Subject", "Date"):
        assert copy[name] == original[name]
    assert copy.get_content_type() == "text/plain"
    assert "Only the headers" in copy.get_content()
    assert b"PDF" not in out and b"<b>there</b>" not in out


def test_text_only_prefers_the_plain_part_and_keeps_attachments():
    raw = build(text="Plain body \u00e9t\u00e9\n", html="<p>HTML body</p>",
                attachments=[("a.txt", b"file content", "text/plain")])
    copy = parse(transform_copy(raw, CopyOptions(content="text")))
    assert copy["Message-ID"] == parse(raw)["Message-ID"]
    parts = list(copy.iter_parts())
    assert parts[0].get_content().replace("\r\n", "\n") == "Plain body \u00e9t\u00e9\n"
    assert [p.get_filename() for p in parts[1:]] == ["a.txt"]
    assert not any(p.get_content_type() == "text/html" for p in copy.walk())


def test_text_only_of_an_html_only_message():
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@rig.test", "b@example.com", "html"
    msg["Message-ID"] = make_msgid()
    msg.set_content("<html><head><style>p{}</style></head><body><p>Dear Ann,</p>"
                    "<p>see <b>you</b>&amp; co</p></body></html>", subtype="html")
    copy = parse(transform_copy(msg.as_bytes(), CopyOptions(content="text")))
    assert copy.get_content_type() == "text/plain"
    body = copy.get_content()
    assert "Dear Ann," in body and "see you& co" in body and "p{}" not in body


def test_attachments_off_replaces_each_by_a_note():
    raw = build(attachments=[("big.bin", b"\x00" * 5000, "application/octet-stream"),
                             ("small.txt", b"x", "text/plain")])
    copy = parse(transform_copy(raw, CopyOptions(attachments=False)))
    assert copy["Message-ID"] == parse(raw)["Message-ID"]
    texts = [p.get_content() for p in copy.walk() if p.get_content_type() == "text/plain"]
    assert texts[0].startswith("Hello,")
    notes = [t for t in texts if "was not kept" in t]
    assert len(notes) == 2 and "'big.bin'" in notes[0] and "4.9 KB" in notes[0]
    assert not any(p.get_filename() for p in copy.walk())


def test_max_attachment_size_drops_only_the_larger_parts():
    raw = build(attachments=[("big.pdf", b"B" * 200_000, "application/pdf"),
                             ("small.pdf", b"S" * 1_000, "application/pdf")])
    copy = parse(transform_copy(raw, CopyOptions(max_attachment_bytes=100_000)))
    names = [p.get_filename() for p in copy.walk() if p.get_filename()]
    assert names == ["small.pdf"]
    note = [p.get_content() for p in copy.walk()
            if p.get_content_type() == "text/plain" and "was not kept" in p.get_content()]
    assert len(note) == 1 and "'big.pdf'" in note[0] and "97.7 KB limit" in note[0]


def test_normalize_message_id():
    assert sent_copy.normalize_message_id(" <Abc@X>\r\n ") == "<Abc@X>"
    assert sent_copy.normalize_message_id("abc@x") == "<abc@x>"
    assert sent_copy.normalize_message_id("") is None
    assert sent_copy.message_id_of(build(msgid="<m1@odoo.test>")) == "<m1@odoo.test>"


# ---------------------------------------------------------------- append
def copies_for(raws, when=SEND_TIME):
    return [PendingCopy(key=i, raw=raw, internal_date=when + timedelta(seconds=i))
            for i, raw in enumerate(raws)]


def test_append_batch_seen_internal_date_appenduid(rig):
    user = rig.add_user()
    raws = [build(subject="m%d" % i) for i in range(5)]
    with rig.imap_client(user) as client:
        report = append_copies(client, "Sent", copies_for(raws))
    assert report.used_multiappend
    assert [r.status for r in report.results] == ["appended"] * 5
    assert {r.verified_by for r in report.results} == {"appenduid"}
    uids = [r.uid for r in report.results]
    stored = rig.fetch_messages(user, "Sent")
    assert [stored[uid] for uid in uids] == raws  # exact bytes, in order
    assert all(b"\\Seen" in flags for flags in rig.fetch_flags(user, "Sent").values())
    with rig.imap_client(user) as client:
        client.select_folder("Sent", readonly=True)
        dates = client.fetch(uids, ["INTERNALDATE"])
    for i, uid in enumerate(uids):
        got = dates[uid][b"INTERNALDATE"]
        assert got.astimezone(timezone.utc) == SEND_TIME + timedelta(seconds=i)


@pytest.mark.parametrize("strategy", ["search", "recent"])
def test_retry_finds_existing_copies_and_appends_no_second(rig, strategy):
    user = rig.add_user()
    raws = [build(subject="r%d" % i) for i in range(7)]
    with rig.imap_client(user) as client:
        first = append_copies(client, "Sent", copies_for(raws[:4]), strategy=strategy)
        again = append_copies(client, "Sent", copies_for(raws), strategy=strategy)
    assert [r.status for r in again.results[:4]] == ["exists"] * 4
    assert [r.uid for r in again.results[:4]] == [r.uid for r in first.results]
    assert [r.status for r in again.results[4:]] == ["appended"] * 3
    assert len(rig.folder_uids(user, "Sent")) == 7


def test_find_existing_strategies_agree_on_a_large_folder(rig):
    user = rig.add_user()
    raws = [build(subject="f%d" % i, msgid="<f%d.x@odoo.test>" % i) for i in range(260)]
    rig.append_many(user, "Sent", [{"msg": r, "flags": [b"\\Seen"], "date": SEND_TIME}
                                   for r in raws])
    wanted = ["<f%d.x@odoo.test>" % i for i in range(0, 300, 3)]  # some absent
    with rig.imap_client(user) as client:
        client.select_folder("Sent", readonly=True)
        by_search = find_existing(client, wanted)
        by_recent = find_existing(client, wanted, strategy="recent",
                                  since=(SEND_TIME - timedelta(days=1)).date())
    assert by_search == by_recent
    assert len(by_search) == len(range(0, 260, 3))
    # a Message-ID that is a prefix of another must not match it
    with rig.imap_client(user) as client:
        client.select_folder("Sent", readonly=True)
        assert find_existing(client, ["<f1.x@odoo.tes>", "<1.x@odoo.test>"]) == {}


def test_same_message_id_twice_in_a_batch_is_filed_once(rig):
    user = rig.add_user()
    raw = build(msgid="<twice@odoo.test>")
    with rig.imap_client(user) as client:
        report = append_copies(client, "Sent", copies_for([raw, raw.replace(b"Hello", b"Hallo")]))
    first, second = report.results
    assert first.status == "appended" and second.status == "exists"
    assert first.uid == second.uid
    assert len(rig.folder_uids(user, "Sent")) == 1


def test_provider_that_saves_sent_mail_itself_gets_no_second_copy():
    """rig.smtp_saves_sent=True files every submitted message in the sender's Sent
    folder (Gmail / Microsoft 365 behaviour); a private rig so the flag is ours."""
    with MailRig() as private:
        private.smtp_saves_sent = True
        user = private.add_user(layout="gmail")
        raw = build(sender=user.address, to="someone@example.com")
        smtp = smtplib.SMTP_SSL(private.host, private.smtps_port,
                                context=private.ssl_context())
        smtp.login(user.login, user.password)
        smtp.sendmail(user.address, ["someone@example.com"], raw)
        smtp.quit()
        assert len(private.folder_uids(user, "[Gmail]/Sent Mail")) == 1
        with private.imap_client(user) as client:
            report = append_copies(client, "[Gmail]/Sent Mail", copies_for([raw]))
        assert report.results[0].status == "exists"
        assert private.folder_uids(user, "[Gmail]/Sent Mail") == [report.results[0].uid]


def test_refused_message_in_multiappend_does_not_hold_back_the_others(rig):
    # Dovecot refuses a zero-byte message; MULTIAPPEND is atomic, so the batch
    # is retried one message at a time and only the bad one fails.
    user = rig.add_user()
    raws = [build(subject="ok1"), b"", build(subject="ok2")]
    with rig.imap_client(user) as client:
        report = append_copies(client, "Sent", copies_for(raws))
    statuses = [r.status for r in report.results]
    assert statuses == ["appended", "failed", "appended"]
    error = report.results[1].error
    assert "refused" in error.message and error.hint
    assert len(rig.folder_uids(user, "Sent")) == 2


class NoUidplusClient:
    """A real client whose APPEND answers lose the APPENDUID code, as from a
    server without UIDPLUS (Dovecot always has it). Everything else is real."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)

    def has_capability(self, cap):
        return cap.upper() != "UIDPLUS" and self._client.has_capability(cap)

    def append(self, *args, **kwargs):
        self._client.append(*args, **kwargs)
        return b"Append completed."

    def multiappend(self, *args, **kwargs):
        typ, _data = self._client.multiappend(*args, **kwargs)
        return typ, [b"Append completed."]


def test_verification_by_search_without_appenduid(rig):
    user = rig.add_user()
    raws = [build(subject="v%d" % i) for i in range(3)]
    with rig.imap_client(user) as client:
        report = append_copies(NoUidplusClient(client), "Sent", copies_for(raws))
    assert {r.verified_by for r in report.results} == {"search"}
    stored = rig.fetch_messages(user, "Sent")
    assert [stored[r.uid] for r in report.results] == raws


def test_single_append_without_multiappend(rig):
    user = rig.add_user()
    raws = [build(subject="s%d" % i) for i in range(3)]
    with rig.imap_client(user) as client:
        report = append_copies(client, "Sent", copies_for(raws), use_multiappend=False)
    assert not report.used_multiappend
    assert [r.status for r in report.results] == ["appended"] * 3
    assert len(rig.folder_uids(user, "Sent")) == 3


def test_lost_connection_raises_a_connect_error(rig):
    user = rig.add_user()
    client = rig.imap_client(user)
    client.shutdown()  # the socket is gone, as when the server drops us
    with pytest.raises(ConnectError) as info:
        append_copies(client, "Sent", copies_for([build()]))
    assert isinstance(info.value, sent_copy.PartialBatchError)
    assert info.value.results == []


def test_missing_folder_is_a_folder_error(rig):
    user = rig.add_user()
    with rig.imap_client(user) as client:
        with pytest.raises(sent_copy.FolderError):
            append_copies(client, "No Such Folder", copies_for([build()]))


# ---------------------------------------------------------------- folders
@pytest.mark.parametrize("layout, expected", [
    ("standard", "Sent"), ("gmail", "[Gmail]/Sent Mail"), ("outlook", "Sent Items")])
def test_resolve_sent_folder_per_layout(rig, layout, expected):
    user = rig.add_user(layout=layout)
    with rig.imap_client(user) as client:
        assert resolve_sent_folder(client) == (expected, False)
        # a preferred folder that exists wins; one that does not falls back
        assert resolve_sent_folder(client, preferred="INBOX") == ("INBOX", False)
        assert resolve_sent_folder(client, preferred="Gone") == (expected, False)


def test_top_level_sent_is_created_and_subscribed_when_there_is_none(rig):
    user = rig.add_user(layout="outlook")
    with rig.imap_client(user) as client:
        client.delete_folder("Sent Items")
        path, created = resolve_sent_folder(client)
        assert (path, created) == ("Sent", True)
        assert client.list_sub_folders(pattern="Sent")
        assert resolve_sent_folder(client) == ("Sent", False)  # found by name next time
        report = append_copies(client, path, copies_for([build()]))
    assert report.results[0].status == "appended"
