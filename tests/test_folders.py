"""Folder roles: pure role detection, then the real folder listings of the rig layouts."""

import pytest
from mailrig import ROLES as RIG_ROLES, get_shared_rig

from imap_sent_sync.mailsync.endpoint import Endpoint
from imap_sent_sync.mailsync.folders import (
    KNOWN_NAMES, ROLES, _list_with_special_use, detect_role, find_folder, folder_for_role,
    folder_infos, list_folders,
)
from imap_sent_sync.mailsync.imap import imap_session


# -- detect_role (one folder) -------------------------------------------------

@pytest.mark.parametrize("path, flags, delimiter, role", [
    ("INBOX", (), "/", "inbox"),
    ("Inbox", (), "/", "inbox"),
    ("inbox", (b"\\HasNoChildren",), ".", "inbox"),
    ("Whatever", ("\\Sent",), "/", "sent"),
    ("Whatever", (b"\\Trash",), "/", "trash"),
    ("Whatever", ("\\Drafts",), "/", "drafts"),
    ("Whatever", ("\\Junk",), "/", "junk"),
    ("Whatever", ("\\Spam",), "/", "junk"),           # Gmail XLIST
    ("Whatever", ("\\Archive",), "/", "archive"),
    ("Whatever", ("\\All",), "/", "all"),
    ("Whatever", ("\\AllMail",), "/", "all"),         # Gmail XLIST
    ("[Gmail]/Starred", ("\\Flagged",), "/", "other"),
    ("[Gmail]/Important", ("\\Important",), "/", "other"),
    ("Sent", ("\\HASNOCHILDREN", "\\SENT"), "/", "sent"),  # attributes are case-insensitive
    ("Sent", (), "/", "sent"),
    ("sent items", (), "/", "sent"),
    ("Sent Messages", (), "/", "sent"),
    ("INBOX.Sent", (), ".", "sent"),
    ("INBOX/Sent", (), "/", "sent"),
    ("[Gmail]/Sent Mail", (), "/", "sent"),
    ("[Google Mail]/Gesendet", (), "/", "sent"),
    ("Gesendete Objekte", (), "/", "sent"),
    ("Deleted Items", (), "/", "trash"),
    ("Deleted Messages", (), "/", "trash"),
    ("Bin", (), "/", "trash"),
    ("Papierkorb", (), "/", "trash"),
    ("Archive", (), "/", "archive"),
    ("Archives", (), "/", "archive"),
    ("All Mail", (), "/", "all"),
    ("Drafts", (), "/", "drafts"),
    ("Entwürfe", (), "/", "drafts"),
    ("Junk", (), "/", "junk"),
    ("Junk Email", (), "/", "junk"),
    ("Spam", (), "/", "junk"),
    ("Bulk Mail", (), "/", "junk"),
    ("Projects/Archive", (), "/", "other"),        # a user's subfolder, not the Archive
    ("Clients/Acme/Sent", (), "/", "other"),
    ("Sent", ("\\Noselect",), "/", "other"),       # a container cannot hold the role
    ("Sent", (), "", "sent"),                      # flat namespace (no delimiter)
    ("Newsletters", (), "/", "other"),
])
def test_detect_role(path, flags, delimiter, role):
    assert detect_role(path, flags, delimiter) == role


def test_known_names_cover_the_required_ones():
    required = {"Sent", "Sent Items", "Sent Messages", "Sent Mail", "Trash", "Deleted Items",
                "Deleted Messages", "Bin", "Archive", "Archives", "All Mail", "Drafts", "Junk",
                "Junk Email", "Spam", "Bulk Mail", "Gesendet"}
    known = {name for names in KNOWN_NAMES.values() for name in names}
    assert required <= known
    assert set(KNOWN_NAMES) <= set(ROLES)


# -- folder_infos (a whole listing, as imapclient returns it) -------------------

def listing(*rows):
    return [(tuple(f.encode() for f in flags), delimiter.encode() if delimiter else None, name)
            for flags, delimiter, name in rows]


def roles(folders):
    return {f.path: f.role for f in folders if f.role != "other"}


def test_attribute_beats_name_and_roles_are_unique():
    folders = folder_infos(listing(
        ((r"\HasNoChildren",), "/", "INBOX"),
        ((r"\HasNoChildren",), "/", "Sent"),            # an old, imported folder
        ((r"\HasNoChildren", r"\Sent"), "/", "Sent Messages"),
        ((r"\HasNoChildren",), "/", "Trash"),
        ((r"\HasNoChildren",), "/", "Deleted Items"),
    ))
    assert roles(folders) == {"INBOX": "inbox", "Sent Messages": "sent", "Trash": "trash"}
    sent = folder_for_role(folders, "sent")
    assert sent.path == "Sent Messages" and sent.role_source == "attribute"
    assert find_folder(folders, "Deleted Items").role == "other"


def test_name_fallback_prefers_specific_then_shallow():
    folders = folder_infos(listing(
        ((), ".", "INBOX"),
        ((), ".", "INBOX.Sent"),
        ((), ".", "Sent Items"),
        ((), ".", "Sent"),
    ))
    assert folder_for_role(folders, "sent").path == "Sent"
    assert folder_for_role(folders, "sent").role_source == "name"


def test_noselect_and_flat_namespace():
    folders = folder_infos(listing(
        ((r"\Noselect", r"\HasChildren"), "/", "[Gmail]"),
        ((r"\NonExistent",), "/", "Ghost"),
        ((), None, "INBOX"),
    ))
    inbox, gmail, ghost = folders          # sorted: INBOX first, then by name
    assert not gmail.selectable and gmail.role == "other"
    assert not ghost.selectable
    assert inbox.selectable and inbox.role == "inbox" and inbox.delimiter == ""


def test_folder_info_decodes_bytes_and_names():
    (folder,) = folder_infos(listing(
        ((r"\HasNoChildren", r"\Drafts"), "/", "Entwürfe/Ärger ✓"),))
    assert folder.flags == ("\\HasNoChildren", "\\Drafts")
    assert folder.delimiter == "/"
    assert folder.name == "Ärger ✓"
    assert folder.role == "drafts"      # the attribute counts at any depth


def test_xlist_inbox_alias_does_not_steal_inbox():
    folders = folder_infos(listing(
        ((r"\Inbox",), "/", "Posteingang"),
        ((), "/", "INBOX"),
    ))
    assert roles(folders) == {"INBOX": "inbox"}


def test_folder_for_role_missing():
    assert folder_for_role(folder_infos(listing(((), "/", "INBOX"),)), "sent") is None


# -- real listings from the rig (Dovecot) ---------------------------------------


@pytest.fixture(scope="session")
def rig():
    return get_shared_rig()


def session(rig, user):
    return imap_session(Endpoint(rig.host, rig.imaps_port, "ssl", user.login, user.password,
                                 ca_pem=rig.ca_pem, timeout=5))


@pytest.mark.parametrize("layout", ["standard", "gmail", "outlook"])
def test_roles_of_each_layout(rig, layout):
    user = rig.add_user(layout=layout)
    with session(rig, user) as client:
        folders = list_folders(client)
    # The rig also names \Flagged/\Important views; those are not sync roles.
    expected = {role: path for role, path in RIG_ROLES[layout].items() if role in ROLES}
    assert {f.role: f.path for f in folders if f.role != "other"} == expected
    assert folders[0].path == "INBOX"
    source = "name" if layout == "outlook" else "attribute"   # outlook: no SPECIAL-USE
    assert {f.role_source for f in folders if f.role not in ("other", "inbox")} == {source}


def test_gmail_container_is_not_selectable(rig):
    user = rig.add_user(layout="gmail")
    with session(rig, user) as client:
        folders = list_folders(client)
    gmail = find_folder(folders, "[Gmail]")
    assert gmail.selectable is False and gmail.role == "other"
    assert all(f.selectable for f in folders if f.path != "[Gmail]")


def test_list_return_special_use_parses(rig):
    # The RFC 6154 extended LIST used for servers that omit attributes from plain LIST.
    user = rig.add_user()
    with session(rig, user) as client:
        extended = _list_with_special_use(client)
    attributes = {name: {f.decode() for f in flags} for flags, _d, name in extended}
    assert "\\Sent" in attributes["Sent"]
    assert "\\Trash" in attributes["Trash"]


def test_non_ascii_folder_names_round_trip(rig):
    user = rig.add_user()
    name = "Entwürfe/Ärger 2026 ✓"
    with session(rig, user) as client:
        client.create_folder(name)
        folders = list_folders(client)
        folder = find_folder(folders, name)
        assert folder is not None and folder.delimiter == "/" and folder.name == "Ärger 2026 ✓"
        assert folder.role == "other"          # not the Drafts folder, whatever its parent
        assert find_folder(folders, "Entwürfe").role == "other"  # Drafts has \Drafts
        client.select_folder(name)
        # On the wire the name is modified UTF-7 (RFC 3501 5.1.3), not raw UTF-8.
        client.folder_encode = False
        raw_names = [n for _f, _d, n in client.list_folders(pattern="Entw*")]
        client.folder_encode = True
    assert any(n.startswith(b"Entw&APw-rfe/&AMQ-rger 2026 &JxM-") for n in raw_names), raw_names
