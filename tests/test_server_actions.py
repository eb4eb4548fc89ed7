"""mailsync.server_actions against the real rig (Dovecot), no mocks.

Every test seeds "bystanders" next to the messages it acts on: other mail,
some of it flagged \\Deleted by "another client" (not expunged), in the source
folder and in the target folder. They must survive every operation unchanged
(issue 5, acceptance 6): a plain EXPUNGE or a CLOSE would erase them.

The commands sent are recorded with inbound.CommandLog (it wraps the real
socket writes) to prove which IMAP commands were used.
"""
from datetime import datetime, timezone
from email.utils import format_datetime, make_msgid

import pytest

from imap_sent_sync.mailsync import server_actions as sa
from imap_sent_sync.mailsync.inbound import CommandLog
from mailrig import get_shared_rig

LAYOUTS = ("standard", "gmail", "outlook")
TRASH = {"standard": "Trash", "gmail": "[Gmail]/Trash", "outlook": "Deleted Items"}
ARCHIVE = {"standard": "Archive", "gmail": "[Gmail]/All Mail", "outlook": "Archive"}
DELETED = b"\\Deleted"


def _msg(subject, msgid=None):
    msgid = msgid or make_msgid(domain="rig.test")
    raw = ("From: Ann <ann@example.com>\r\nTo: rep@rig.test\r\nSubject: %s\r\nDate: %s\r\n"
           "Message-ID: %s\r\n\r\nBody of %s\r\n" % (
               subject, format_datetime(datetime.now(timezone.utc)), msgid, subject))
    return raw.encode(), msgid


@pytest.fixture(scope="module")
def rig():
    return get_shared_rig()


def _seed(rig, user, folder, n, prefix="ours", flags=()):
    """Append n messages; return [(uid, Message-ID)]."""
    messages = [_msg("%s %d" % (prefix, i)) for i in range(n)]
    uids = rig.append_many(user, folder, [dict(msg=raw, flags=flags) for raw, _m in messages])
    return [(uid, mid) for uid, (_raw, mid) in zip(uids, messages)]


def _bystanders(rig, user, folders):
    """Two \\Deleted and one normal foreign message per folder: {folder: {uid: flags}}."""
    seeded = {}
    for folder in folders:
        uids = [u for u, _m in _seed(rig, user, folder, 2, "deleted bystander", flags=(DELETED,))]
        uids += [u for u, _m in _seed(rig, user, folder, 1, "bystander")]
        flags = rig.fetch_flags(user, folder)
        seeded[folder] = {uid: flags[uid] for uid in uids}
    return seeded


def _assert_bystanders_intact(rig, user, seeded):
    for folder, before in seeded.items():
        after = rig.fetch_flags(user, folder)
        for uid, flags in before.items():
            assert uid in after, "bystander %s in %s was removed" % (uid, folder)
            # \Recent is per session (the first session to see a message gets it).
            assert set(after[uid]) - {b"\\Recent"} == set(flags) - {b"\\Recent"}, \
                "flags of %s in %s changed" % (uid, folder)
        assert sum(1 for f in after.values() if DELETED in f) >= 2


def _mids(rig, user, folder):
    """[Message-ID key] of every message in the folder (duplicates kept)."""
    with rig.imap_client(user) as c:
        c.select_folder(folder, readonly=True)
        uids = c.search(["ALL"])
        return sorted(k for k in sa.fetch_message_ids(c, uids).values() if k) if uids else []


def _key(mid):
    return sa.message_id_key(mid)


def _never_unsafe(log):
    # A plain EXPUNGE or a CLOSE would erase the bystanders.
    assert "EXPUNGE" not in log.names, log.names
    assert "CLOSE" not in log.names, log.names


# --------------------------------------------------------------------------- folders

@pytest.mark.parametrize("layout", LAYOUTS)
def test_role_folders_per_layout(rig, layout):
    user = rig.add_user(layout=layout)
    with rig.imap_client(user) as c:
        assert sa.resolve_trash_folder(c) == (TRASH[layout], False)
        assert sa.resolve_archive_folder(c) == (ARCHIVE[layout], False)


def test_archive_folder_created_when_missing(rig):
    user = rig.add_user()
    with rig.imap_client(user) as c:
        c.delete_folder("Archive")
        [(uid, mid)] = _seed(rig, user, "INBOX", 1)
        seeded = _bystanders(rig, user, ["INBOX"])
        result = sa.archive(c, "INBOX", [uid])
        assert result.target == "Archive" and result.target_created
        assert "Archive" in rig.list_folders(user)
        assert c.list_sub_folders(pattern="Archive")  # subscribed, so clients show it
    assert _mids(rig, user, "Archive") == [_key(mid)]
    assert _key(mid) not in _mids(rig, user, "INBOX")
    _assert_bystanders_intact(rig, user, seeded)


def test_trash_folder_created_when_missing(rig):
    user = rig.add_user()
    with rig.imap_client(user) as c:
        c.delete_folder("Trash")
        assert sa.resolve_trash_folder(c) == ("Trash", True)
        assert sa.resolve_trash_folder(c) == ("Trash", False)


# --------------------------------------------------------------------------- delete

@pytest.mark.parametrize("layout", LAYOUTS)
def test_move_to_trash_with_move(rig, layout):
    user = rig.add_user(layout=layout)
    trash = TRASH[layout]
    ours = _seed(rig, user, "INBOX", 3)
    seeded = _bystanders(rig, user, ["INBOX", trash])
    with rig.imap_client(user) as c:
        log = CommandLog(c)
        result = sa.move_to_trash(c, "INBOX", [u for u, _ in ours[:2]], trash,
                                  message_ids=dict(ours[:2]))
        log.detach()
    assert result.method == "move"
    assert sorted(result.moved) == [u for u, _ in ours[:2]]
    assert all(dest for dest in result.moved.values())  # COPYUID read from the MOVE
    assert log.count("MOVE") == 1 and "UID EXPUNGE" not in log.names
    _never_unsafe(log)
    in_trash = _mids(rig, user, trash)
    in_inbox = _mids(rig, user, "INBOX")
    for _uid, mid in ours[:2]:
        assert in_trash.count(_key(mid)) == 1 and _key(mid) not in in_inbox
    assert _key(ours[2][1]) in in_inbox and _key(ours[2][1]) not in in_trash
    _assert_bystanders_intact(rig, user, seeded)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_move_to_trash_without_move_uses_uid_expunge(rig, layout):
    """The no-MOVE path: UID COPY + UID STORE \\Deleted + UID EXPUNGE of exactly our UIDs.

    Dovecot offers MOVE, so the fallback is chosen explicitly; it is the same
    code a server without MOVE gets, against the real server.
    """
    user = rig.add_user(layout=layout)
    trash = TRASH[layout]
    ours = _seed(rig, user, "INBOX", 2)
    seeded = _bystanders(rig, user, ["INBOX", trash])
    with rig.imap_client(user) as c:
        log = CommandLog(c)
        result = sa.move_to_trash(c, "INBOX", [u for u, _ in ours], trash, use_move=False)
        log.detach()
    assert result.method == "copy-expunge"
    assert sorted(result.moved) == [u for u, _ in ours] and all(result.moved.values())
    assert "UID MOVE" not in log.names
    assert log.count("COPY") == 1 and log.count("STORE") == 1 and log.count("EXPUNGE") == 1
    assert "UID EXPUNGE" in log.names
    _never_unsafe(log)
    in_trash = _mids(rig, user, trash)
    for _uid, mid in ours:
        assert in_trash.count(_key(mid)) == 1 and _key(mid) not in _mids(rig, user, "INBOX")
    # The trash copy does not carry our temporary \Deleted flag.
    flags = rig.fetch_flags(user, trash)
    for dest in result.moved.values():
        assert DELETED not in flags[dest]
    _assert_bystanders_intact(rig, user, seeded)


def test_refused_without_move_and_uidplus(rig):
    user = rig.add_user()
    ours = _seed(rig, user, "INBOX", 1)
    seeded = _bystanders(rig, user, ["INBOX", "Trash"])
    with rig.imap_client(user) as c:
        caps = sa.server_capabilities(c) - {"MOVE", "UIDPLUS"}
        log = CommandLog(c)
        with pytest.raises(sa.ServerActionError) as info:
            sa.move_to_trash(c, "INBOX", [ours[0][0]], "Trash", capabilities=caps)
        log.detach()
        assert info.value.reason == "unsafe_server" and info.value.hint
        # MOVE without UIDPLUS is fine: MOVE never touches other messages.
        result = sa.move_to_trash(c, "INBOX", [ours[0][0]], "Trash",
                                  capabilities=caps | {"MOVE"})
        assert list(result.moved) == [ours[0][0]]
    assert not {"UID MOVE", "UID COPY", "UID STORE", "UID EXPUNGE", "EXPUNGE"} & set(log.names)
    _assert_bystanders_intact(rig, user, seeded)
    with pytest.raises(ValueError):
        sa.uid_expunge(None, [])


@pytest.mark.parametrize("use_move", [True, False])
def test_moving_twice_and_already_gone_is_not_an_error(rig, use_move):
    user = rig.add_user()
    ours = _seed(rig, user, "INBOX", 2)
    uids = [u for u, _ in ours]
    seeded = _bystanders(rig, user, ["INBOX", "Trash"])
    with rig.imap_client(user) as c:
        first = sa.move_to_trash(c, "INBOX", uids, "Trash", use_move=use_move)
        log = CommandLog(c)
        second = sa.move_to_trash(c, "INBOX", uids + [99999], "Trash", use_move=use_move)
        log.detach()
    assert sorted(first.moved) == uids
    assert second.gone == uids + [99999] and not second.moved and second.method == ""
    assert not {"UID MOVE", "UID COPY", "UID STORE", "UID EXPUNGE"} & set(log.names)
    in_trash = _mids(rig, user, "Trash")
    assert all(in_trash.count(_key(mid)) == 1 for _u, mid in ours)
    _assert_bystanders_intact(rig, user, seeded)


@pytest.mark.parametrize("use_move", [True, False])
def test_retry_after_crash_between_copy_and_expunge(rig, use_move):
    """A crash after UID COPY (or a lost reply) leaves the copy in Trash and
    the original in INBOX, maybe already \\Deleted: the retry only removes the
    original, so Trash never gets a second copy."""
    user = rig.add_user()
    ours = _seed(rig, user, "INBOX", 2)
    seeded = _bystanders(rig, user, ["INBOX", "Trash"])
    with rig.imap_client(user) as c:
        c.select_folder("INBOX")
        c.copy([u for u, _ in ours], "Trash")           # what the crashed run did
        c.add_flags([ours[1][0]], [DELETED], silent=True)
        c.unselect_folder()
        result = sa.move_to_trash(c, "INBOX", [u for u, _ in ours], "Trash", use_move=use_move)
    assert result.deduplicated == [u for u, _ in ours] and not result.moved
    in_trash = _mids(rig, user, "Trash")
    assert all(in_trash.count(_key(mid)) == 1 for _u, mid in ours)
    assert not {_key(m) for _u, m in ours} & set(_mids(rig, user, "INBOX"))
    _assert_bystanders_intact(rig, user, seeded)


def test_uid_holding_another_message_is_left_alone(rig):
    user = rig.add_user()
    ours = _seed(rig, user, "INBOX", 2)
    with rig.imap_client(user) as c:
        expected = {ours[0][0]: ours[0][1], ours[1][0]: "<someone-else@example.com>"}
        result = sa.move_to_trash(c, "INBOX", list(expected), "Trash", message_ids=expected)
    assert list(result.moved) == [ours[0][0]] and result.skipped == [ours[1][0]]
    assert _key(ours[1][1]) in _mids(rig, user, "INBOX")


def test_changed_uidvalidity_touches_nothing(rig):
    user = rig.add_user()
    ours = _seed(rig, user, "INBOX", 1)
    with rig.imap_client(user) as c:
        real = c.folder_status("INBOX", ["UIDVALIDITY"])[b"UIDVALIDITY"]
        result = sa.move_to_trash(c, "INBOX", [ours[0][0]], "Trash", uidvalidity=real + 1)
        assert result.stale and result.skipped == [ours[0][0]] and not result.done
        result = sa.move_to_trash(c, "INBOX", [ours[0][0]], "Trash", uidvalidity=real)
        assert list(result.moved) == [ours[0][0]]


def test_missing_source_folder_is_gone(rig):
    user = rig.add_user()
    with rig.imap_client(user) as c:
        c.create_folder("Project")
        [(uid, _mid)] = _seed(rig, user, "Project", 1)
        c.rename_folder("Project", "Project old")
        result = sa.move_to_trash(c, "Project", [uid], "Trash")
    assert result.source_missing and result.gone == [uid]


# --------------------------------------------------------------------------- archive

@pytest.mark.parametrize("layout", ["standard", "outlook"])
def test_archive_moves_out_of_inbox(rig, layout):
    user = rig.add_user(layout=layout)
    ours = _seed(rig, user, "INBOX", 2)
    seeded = _bystanders(rig, user, ["INBOX", "Archive"])
    with rig.imap_client(user) as c:
        log = CommandLog(c)
        result = sa.archive(c, "INBOX", [ours[0][0]], message_ids=dict(ours))
        again = sa.archive(c, "INBOX", [ours[0][0]])
        log.detach()
    assert result.target == "Archive" and list(result.moved) == [ours[0][0]]
    assert again.gone == [ours[0][0]]
    _never_unsafe(log)
    assert _mids(rig, user, "Archive").count(_key(ours[0][1])) == 1
    assert _key(ours[0][1]) not in _mids(rig, user, "INBOX")
    assert _key(ours[1][1]) in _mids(rig, user, "INBOX")
    _assert_bystanders_intact(rig, user, seeded)


@pytest.mark.parametrize("use_move", [True, False])
def test_archive_gmail_leaves_inbox_keeps_all_mail(rig, use_move):
    """Gmail: archiving = out of INBOX, still in All Mail -- once."""
    user = rig.add_user(layout="gmail")
    raw, mid = _msg("delivered")
    rig.deliver(user, raw)                    # the rig files it in INBOX and All Mail
    other_raw, other_mid = _msg("not in all mail yet")
    other_uid = rig.append(user, "INBOX", other_raw)
    assert _mids(rig, user, "[Gmail]/All Mail").count(_key(mid)) == 1
    uid = rig.search(user, "INBOX", ["HEADER", "Message-ID", mid])[0]
    seeded = _bystanders(rig, user, ["INBOX", "[Gmail]/All Mail"])
    with rig.imap_client(user) as c:
        log = CommandLog(c)
        result = sa.archive(c, "INBOX", [uid, other_uid], use_move=use_move)
        log.detach()
    assert result.target == "[Gmail]/All Mail"
    assert result.deduplicated == [uid] and list(result.moved) == [other_uid]
    _never_unsafe(log)
    all_mail = _mids(rig, user, "[Gmail]/All Mail")
    assert all_mail.count(_key(mid)) == 1 and all_mail.count(_key(other_mid)) == 1
    assert not {_key(mid), _key(other_mid)} & set(_mids(rig, user, "INBOX"))
    _assert_bystanders_intact(rig, user, seeded)


# --------------------------------------------------------------------------- detection

@pytest.mark.parametrize("layout", LAYOUTS)
def test_detect_removed_and_where_they_went(rig, layout):
    user = rig.add_user(layout=layout)
    trash, archive_folder = TRASH[layout], ARCHIVE[layout]
    if layout == "gmail":
        seeded_mail = []
        for i in range(4):
            raw, mid = _msg("m%d" % i)
            rig.deliver(user, raw)           # INBOX + All Mail, as on Gmail
            seeded_mail.append((rig.search(user, "INBOX", ["HEADER", "Message-ID", mid])[0], mid))
    else:
        seeded_mail = _seed(rig, user, "INBOX", 4)
    (u_trash, m_trash), (u_arch, m_arch), (u_exp, m_exp), (u_keep, m_keep) = seeded_mail
    seeded = _bystanders(rig, user, ["INBOX"])
    with rig.imap_client(user) as c:
        info = c.folder_status("INBOX", ["UIDVALIDITY", "HIGHESTMODSEQ"])
        uidvalidity, modseq = info[b"UIDVALIDITY"], info[b"HIGHESTMODSEQ"]
    # "Another client" (the user's phone) deletes, archives and expunges.
    with rig.imap_client(user) as phone:
        phone.select_folder("INBOX")
        phone.move([u_trash], trash)
        if layout == "gmail":
            # Gmail: trashing takes the message out of All Mail; archiving only
            # drops the INBOX label (the All Mail copy stays).
            phone.select_folder("[Gmail]/All Mail")
            gone = phone.search(["OR", "HEADER", "Message-ID", m_trash,
                                 "HEADER", "Message-ID", m_exp])
            phone.add_flags(gone, [DELETED], silent=True)
            phone.uid_expunge(gone)
            phone.select_folder("INBOX")
            phone.add_flags([u_arch], [DELETED], silent=True)
            phone.uid_expunge([u_arch])
        else:
            phone.move([u_arch], archive_folder)
        phone.add_flags([u_exp], [DELETED], silent=True)
        phone.uid_expunge([u_exp])
    known = [u_trash, u_arch, u_exp, u_keep]
    with rig.imap_client(user) as c:
        # A sync session has usually opened folders already: ENABLE QRESYNC
        # is only legal outside a folder, removed_uids leaves it (UNSELECT).
        c.select_folder("Drafts" if layout != "gmail" else "[Gmail]/Drafts", readonly=True)
        log = CommandLog(c)
        scan = sa.removed_uids(c, "INBOX", known, uidvalidity=uidvalidity, modseq=modseq)
        log.detach()
        assert scan.method == "vanished" and scan.removed == sorted([u_trash, u_arch, u_exp])
        assert log.count("FETCH") == 1 and log.count("SEARCH") == 1  # VANISHED + confirmation
    with rig.imap_client(user) as c:
        scan2 = sa.removed_uids(c, "INBOX", known, uidvalidity=uidvalidity)
        assert scan2.method == "uid-search" and scan2.removed == scan.removed
        kinds = sa.classify_removed(
            c, {u_trash: m_trash, u_arch: m_arch, u_exp: m_exp},
            trash_folder=trash, archive_folder=archive_folder)
    assert kinds == {u_trash: "trash", u_arch: "archive", u_exp: "gone"}
    _assert_bystanders_intact(rig, user, seeded)


def test_detect_nothing_removed_and_uidvalidity_change(rig):
    user = rig.add_user()
    ours = _seed(rig, user, "INBOX", 2)
    with rig.imap_client(user) as c:
        info = c.folder_status("INBOX", ["UIDVALIDITY", "HIGHESTMODSEQ"])
        scan = sa.removed_uids(c, "INBOX", [u for u, _ in ours],
                               uidvalidity=info[b"UIDVALIDITY"], modseq=info[b"HIGHESTMODSEQ"])
        assert scan.removed == []
        scan = sa.removed_uids(c, "INBOX", [u for u, _ in ours],
                               uidvalidity=info[b"UIDVALIDITY"] + 1)
        assert scan.uidvalidity_changed and scan.removed == []
        scan = sa.removed_uids(c, "No such folder", [5, 6])
        assert scan.method == "folder-missing" and scan.removed == [5, 6]
