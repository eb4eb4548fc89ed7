"""Inbound sync protocol code (mailsync.inbound) against a real Dovecot.

No Odoo and no mocks: the shared mailrig provides the IMAP server; the
CommandLog used to count commands wraps the real socket writes.
"""
import os
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime, make_msgid

import pytest

from imap_sent_sync.mailsync import inbound, mime
from imap_sent_sync.mailsync.inbound import (
    CommandLog, FolderCursor, FolderStatus, plan_poll,
)
from mailrig import get_shared_rig


def _msg(subject, *, frm="Ann <ann@example.com>", to="bob@example.net", msgid=True,
         when=None, body=None, extra=""):
    when = when or datetime.now(timezone.utc)
    headers = "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n" % (
        frm, to, subject, format_datetime(when))
    if msgid:
        headers += "Message-ID: %s\r\n" % (msgid if isinstance(msgid, str) else make_msgid())
    body = body if body is not None else "Body of %s\r\n" % subject
    return (headers + extra + "\r\n" + body).encode()


@pytest.fixture(scope="module")
def rig():
    return get_shared_rig()


@pytest.fixture
def user(rig):
    return rig.add_user()


# ---------------------------------------------------------------- pure planning

def test_plan_poll_kinds():
    status = FolderStatus("INBOX", uidvalidity=7, uidnext=11, highestmodseq=30)
    assert plan_poll(FolderCursor(), status).kind == "init"
    assert plan_poll(FolderCursor(7, 10, 30), status).kind == "unchanged"
    assert plan_poll(FolderCursor(7, 8, 30), status).kind == "new"
    assert plan_poll(FolderCursor(8, 10, 30), status).kind == "resync"
    assert plan_poll(FolderCursor(7, 10, 29), status).kind == "changed"
    # no CONDSTORE: only UIDNEXT counts
    plain = FolderStatus("INBOX", uidvalidity=7, uidnext=11)
    assert plan_poll(FolderCursor(7, 10, None), plain).kind == "unchanged"


def test_uid_set_and_batches():
    assert inbound._uid_set([7, 1, 2, 3, 9, 10]) == b"1:3,7,9:10"
    assert inbound._parse_uid_set("1:3,7,10:9") == [1, 2, 3, 7, 9, 10]
    sizes = [(1, 10), (2, 10), (3, 100), (4, 1), (5, 1)]
    assert list(inbound.body_batches(sizes, max_bytes=25, max_count=10)) == [[1, 2], [3], [4, 5]]
    assert list(inbound.body_batches(sizes, max_bytes=1000, max_count=2)) == [[1, 2], [3, 4], [5]]


def test_imap_date_is_locale_free():
    assert inbound.imap_date(date(2024, 3, 5)) == "5-Mar-2024"
    assert inbound.window_start(date(2024, 3, 5), 5) == date(2024, 2, 29)


# ---------------------------------------------------------------- against Dovecot

def test_status_examine_and_new_uids(rig, user):
    uids = rig.append_many(user, "INBOX", [_msg("m%d" % i) for i in range(3)])
    with rig.imap_client(user) as client:
        assert inbound.has_condstore(client)
        status = inbound.folder_status(client, "INBOX")
        assert status.uidnext == uids[-1] + 1 and status.messages == 3
        assert status.highestmodseq
        info = inbound.examine(client, "INBOX")
        assert (info.uidvalidity, info.uidnext, info.exists) == (
            status.uidvalidity, status.uidnext, 3)
        assert inbound.search_new_uids(client, 0) == uids
        assert inbound.search_new_uids(client, uids[0]) == uids[1:]
        # "UID n:*" matches the last message even when n is above it
        assert inbound.search_new_uids(client, uids[-1]) == []


def test_window_search_newest_first_below_cursor(rig, user):
    now = datetime.now(timezone.utc)
    old = rig.append(user, "INBOX", _msg("old"), msg_time=now - timedelta(days=90))
    recent = [rig.append(user, "INBOX", _msg("r%d" % i), msg_time=now - timedelta(days=i))
              for i in (10, 5, 1)]
    since = inbound.window_start(now, 60)
    with rig.imap_client(user) as client:
        inbound.examine(client, "INBOX")
        found = inbound.search_window_uids(client, since)
        assert found == sorted(recent, reverse=True)
        assert old not in found
        assert inbound.search_window_uids(client, since, below_uid=recent[-1]) == \
            sorted(recent[:-1], reverse=True)
        assert inbound.search_window_uids(client, since, below_uid=1) == []


def test_header_fetch_reads_only_headers_and_never_sets_seen(rig, user):
    secret_token = "BODYTOKEN-%s" % os.urandom(4).hex()
    raws = [_msg("with id", body="hello %s\r\n" % secret_token),
            _msg("no id", msgid=False, body="anonymous %s\r\n" % secret_token)]
    uids = rig.append_many(user, "INBOX", raws)
    rig.append(user, "INBOX", _msg("flagged"), flags=(b"\\Flagged", b"$Label1"))
    before = rig.fetch_flags(user, "INBOX")
    with rig.imap_client(user) as client:
        inbound.examine(client, "INBOX")
        records = inbound.fetch_headers(client, uids)
        assert [r.uid for r in records] == uids
        with_id, without_id = records
        assert secret_token.encode() not in with_id.header
        assert b"Subject: with id" in with_id.header
        assert with_id.has_message_id and not without_id.has_message_id
        assert with_id.size == len(raws[0]) and with_id.internaldate.tzinfo is not None
        # The synthetic id from headers + body prefix equals the full parse's.
        assert without_id.body_prefix.startswith(b"anonymous")
        from_headers = mime.parse_headers(without_id.header, body_prefix=without_id.body_prefix)
        assert from_headers.message_id_synthetic
        assert from_headers.message_id == mime.parse_message(raws[1]).message_id
        bodies = dict(inbound.fetch_bodies(client, [(r.uid, r.size) for r in records]))
        assert bodies[uids[0]] == raws[0]
        assert bodies[uids[1]] == raws[1]
    assert rig.fetch_flags(user, "INBOX") == before
    assert all(b"\\Seen" not in flags for flags in before.values())


def test_body_fetch_is_batched_by_size(rig, user):
    raws = [_msg("big%d" % i, body="x" * 5000 + "\r\n") for i in range(5)]
    uids = rig.append_many(user, "INBOX", raws)
    with rig.imap_client(user) as client:
        inbound.examine(client, "INBOX")
        log = CommandLog(client)
        got = list(inbound.fetch_bodies(client, [(u, 5200) for u in uids], max_bytes=11000))
        log.detach()
    assert [uid for uid, _raw in got] == uids
    assert log.count("FETCH") == 3  # 2 + 2 + 1 messages


def test_no_change_poll_is_one_status_per_folder(rig):
    user = rig.add_user(layout="gmail")
    folders = ["INBOX", "[Gmail]/Sent Mail", "[Gmail]/All Mail"]
    rig.append(user, "INBOX", _msg("hello"))
    with rig.imap_client(user) as client:
        condstore = inbound.has_condstore(client)  # capabilities are cached by the client
        cursors = {}
        for path in folders:
            st = inbound.folder_status(client, path, condstore=condstore)
            cursors[path] = FolderCursor(st.uidvalidity, st.uidnext - 1, st.highestmodseq)
        log = CommandLog(client)
        kinds = [plan_poll(cursors[p], inbound.folder_status(client, p, condstore=condstore)).kind
                 for p in folders]
        log.detach()
    assert kinds == ["unchanged"] * 3
    assert log.names == ["STATUS"] * 3


def test_changed_since_reports_flags_and_vanished(rig, user):
    uids = rig.append_many(user, "INBOX", [_msg("c%d" % i) for i in range(3)])
    with rig.imap_client(user) as client:
        assert inbound.enable_qresync(client)
        info = inbound.examine(client, "INBOX")
        modseq = info.highestmodseq
    with rig.imap_client(user) as writer:
        writer.select_folder("INBOX")
        writer.add_flags([uids[0]], [b"\\Flagged"])
        writer.delete_messages([uids[1]])
        writer.expunge()
    with rig.imap_client(user) as client:
        assert inbound.enable_qresync(client)
        status = inbound.folder_status(client, "INBOX")
        assert plan_poll(FolderCursor(info.uidvalidity, uids[-1], modseq), status).kind == "changed"
        inbound.examine(client, "INBOX")
        changes = inbound.changed_since(client, modseq)
    assert b"\\Flagged" in changes.flags[uids[0]]
    assert uids[2] not in changes.flags
    assert changes.vanished == [uids[1]]


def test_uidvalidity_changes_when_folder_is_recreated(rig, user):
    with rig.imap_client(user) as client:
        client.create_folder("Projects")
        before = inbound.folder_status(client, "Projects")
        client.delete_folder("Projects")
        client.create_folder("Projects")
        after = inbound.folder_status(client, "Projects")
    cursor = FolderCursor(before.uidvalidity, before.uidnext - 1, before.highestmodseq)
    assert plan_poll(cursor, after).kind == "resync"


def test_fast_fetch_parser_agrees_with_imapclient(rig, user):
    raws = [_msg("fast %d" % i, msgid=(i != 1), body="x%d\r\n" % i * (i + 1)) for i in range(4)]
    uids = rig.append_many(user, "INBOX", raws)
    items = [inbound.HEADER_ITEM, "INTERNALDATE", "RFC822.SIZE"]
    with rig.imap_client(user) as client:
        client.normalise_times = False
        inbound.examine(client, "INBOX")
        for wanted in (items, ["BODY.PEEK[]"], ["BODY.PEEK[TEXT]<0.1024>", "RFC822.SIZE"]):
            fast = inbound.uid_fetch(client, uids, wanted)
            slow = client.fetch(uids, wanted)
            for uid in uids:
                slow[uid].pop(b"SEQ", None)
            assert fast == slow, wanted


def test_fast_fetch_parser_falls_back_on_unexpected_shapes():
    literal = [(b'1 (UID 7 BODY[] {5}', b'hello'), b')']
    assert inbound._parse_fetch_fast(literal) == {7: {b"BODY[]": b"hello"}}
    quoted = [b'1 (UID 7 BODY[] "hello")']
    with pytest.raises(inbound._Unexpected):
        inbound._parse_fetch_fast(quoted)
    unsolicited = [b"2 (FLAGS (\\Seen))", (b'1 (UID 7 RFC822.SIZE 5 BODY[] {5}', b'hello'), b')']
    assert inbound._parse_fetch_fast(unsolicited) == {7: {b"BODY[]": b"hello", b"RFC822.SIZE": 5}}
