"""Delete and archive on the server, and noticing when the user did it elsewhere.

Pure Python on top of a logged-in ``imapclient.IMAPClient`` (no Odoo import).
The Odoo side (``mailsync.server.action``) decides *which* copies to act on;
this module moves exactly those and nothing else.

Rules that keep the user's mailbox safe (DESIGN.md, principle 4):

* "Delete" is a move into the Trash folder; "archive" a move into the Archive
  folder (Gmail: into All Mail, i.e. out of INBOX). Nothing is ever deleted
  for good.
* A move is ``UID MOVE`` (RFC 6851) when the server offers it, else
  ``UID COPY`` + ``UID STORE +FLAGS.SILENT (\\Deleted)`` + ``UID EXPUNGE`` of
  exactly the UIDs moved (RFC 4315, UIDPLUS). A server with neither MOVE nor
  UIDPLUS is refused: its only EXPUNGE removes *every* \\Deleted message of the
  folder, including ones the user flagged in another client.
* No plain EXPUNGE and no CLOSE, ever (CLOSE expunges too); ``uid_expunge``
  below refuses an empty UID list so a bug can never turn into a plain EXPUNGE.
* Idempotent: a UID no longer in the folder is "gone" (done already, or the
  user moved it); a message whose Message-ID is already in the target folder
  is only removed from the source (a crash between COPY and EXPUNGE, Gmail's
  All Mail that already holds every INBOX message), never copied twice.
* Only our own messages: when the caller passes the Message-ID it linked to a
  UID, a UID that now holds another message is left alone; a folder whose
  UIDVALIDITY changed is not touched at all (its UIDs mean other messages).

Detecting what the user did in another client:

* ``removed_uids``: which known UIDs left a folder -- ``VANISHED (EARLIER)``
  since the stored HIGHESTMODSEQ when the server has QRESYNC, else a UID
  SEARCH of the known UIDs (one round trip per few thousand UIDs);
* ``classify_removed``: where they went, by Message-ID in the Trash and
  Archive (Gmail: All Mail) folders -- "trash", "archive" or "gone" (expunged,
  or moved somewhere we do not watch).
"""
import email
import email.policy
import logging
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from . import folders as folder_roles
from . import inbound, mime
from .errors import ConnectError, FolderError, MailsyncError

_logger = logging.getLogger(__name__)

__all__ = [
    "ServerActionError", "ActionResult", "RemovalScan", "move_to_trash", "archive",
    "move_messages", "copy_delete_expunge", "uid_expunge", "resolve_trash_folder",
    "resolve_archive_folder", "ensure_folder", "removed_uids", "locate_message_ids",
    "classify_removed", "message_id_key", "server_capabilities", "enable_qresync",
]

DELETED = b"\\Deleted"
# Message-IDs per UID SEARCH (OR'd HEADER criteria); see sent_copy.SEARCH_CHUNK.
SEARCH_CHUNK = 50
# UIDs per UID SEARCH / FETCH / MOVE command line (a compact UID set is short,
# but a scattered one is ~7 bytes per UID; servers cap command lines at 8-64 KB).
UID_CHUNK = 1000
# Created when the server has no folder with the role at all.
DEFAULT_NAMES = {"trash": "Trash", "archive": "Archive"}
_SPECIAL_USE = {"trash": "\\Trash", "archive": "\\Archive"}
_MESSAGE_ID_ITEM = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
_MESSAGE_ID_KEY = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"

KIND_TRASH = "trash"
KIND_ARCHIVE = "archive"
KIND_GONE = "gone"


class ServerActionError(MailsyncError):
    """A move could not be done (refused by the server, or unsafe on this server)."""


# --------------------------------------------------------------------------- results

@dataclass
class ActionResult:
    """What one move did, UID by UID (source folder UIDs).

    * ``moved``: {source uid: target uid or None (server gave no COPYUID)}
    * ``deduplicated``: the target already held the Message-ID, so the copy was
      only removed from the source (nothing copied twice)
    * ``gone``: not in the source folder any more -- nothing to do
    * ``skipped``: the UID holds another message than the one expected, or the
      folder's UIDVALIDITY changed (``stale``): left untouched
    """
    folder: str
    target: str
    method: str = ""                 # "move" | "copy-expunge" | "" (nothing sent)
    moved: dict = field(default_factory=dict)
    deduplicated: list = field(default_factory=list)
    gone: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    stale: bool = False              # UIDVALIDITY changed: nothing was touched
    source_missing: bool = False     # the source folder no longer exists
    target_created: bool = False
    target_uidvalidity: int = None

    @property
    def done(self):
        """UIDs that are out of the source folder now (by us, or before us)."""
        return sorted(set(self.moved) | set(self.deduplicated) | set(self.gone))


@dataclass
class RemovalScan:
    """Known UIDs no longer in a folder. ``method``: "vanished" | "uid-search"."""
    folder: str
    removed: list
    method: str
    uidvalidity: int = None
    highestmodseq: int = None
    uidvalidity_changed: bool = False


# --------------------------------------------------------------------------- helpers

def server_capabilities(client):
    """Capabilities as a frozenset of upper-case str."""
    return frozenset(c.decode("ascii", "replace").upper() if isinstance(c, bytes) else str(c).upper()
                     for c in client.capabilities())


def message_id_key(value):
    """Comparison key of a Message-ID in any stored form ('<A@X>', 'A@x'...), or None.

    The link stores mime's normalized form (no angle brackets, domain lower
    case); servers compare headers case-insensitively, so do we.
    """
    ident = mime.normalize_message_id(value)
    return ident.lower() if ident else None


def is_synthetic(message_id):
    """Ids made up for mail without Message-ID cannot be searched on a server."""
    key = message_id_key(message_id)
    return bool(key) and key.endswith("@" + mime.SYNTHETIC_ID_DOMAIN)


def _chunks(items, size):
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _server_text(exc):
    return str(exc)[:300]


def _fail(message, exc, hint=None, reason="refused"):
    """ConnectError for a dropped connection (retry later), else ServerActionError."""
    if isinstance(exc, (IMAPClientAbortError, OSError)):
        return ConnectError(
            "The connection to the mail server was lost: %s" % _server_text(exc),
            "The action is retried automatically.", "server_action", reason="closed",
            detail=str(exc))
    return ServerActionError(message % {"error": _server_text(exc)},
                             hint or "The action is retried automatically.", "server_action",
                             reason=reason, detail=str(exc))


def _pop_copyuid(client):
    """Last COPYUID response code seen (imaplib files response codes of both
    tagged and untagged responses under their name), as inbound's CopyUid."""
    from .imap import parse_copyuid
    found = None
    for data in client._imap.untagged_responses.pop("COPYUID", []) or []:
        text = data.decode("ascii", "replace") if isinstance(data, bytes) else str(data)
        found = parse_copyuid("[COPYUID %s]" % text) or found
    return found


def select_rw(client, path):
    """SELECT ``path`` read-write; returns the SELECT data, or None if it does not exist."""
    try:
        return client.select_folder(path)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        if _folder_exists(client, path):
            raise _fail("The folder %r could not be opened: %%(error)s" % path, exc) from exc
        return None


def _folder_exists(client, path):
    try:
        return bool(client.list_folders(pattern=path))
    except IMAPClientError:
        return False


def present_uids(client, uids):
    """Those of ``uids`` that exist in the selected folder (UID SEARCH UID set)."""
    found = set()
    for part in _chunks(sorted(set(int(u) for u in uids)), UID_CHUNK):
        # UID SEARCH with a UID set only answers UIDs that exist; the ``n:*``
        # quirk (RFC 3501 6.4.8) cannot occur since no set here ends with '*'.
        found.update(client.search([b"UID", inbound._uid_set(part)]))
    return found & set(int(u) for u in uids)


def fetch_message_ids(client, uids):
    """{uid: Message-ID key or None} for ``uids`` of the selected folder (BODY.PEEK)."""
    found = {}
    for part in _chunks(sorted(set(uids)), UID_CHUNK):
        for uid, item in client.fetch(part, [_MESSAGE_ID_ITEM]).items():
            header = item.get(_MESSAGE_ID_KEY)
            if header is None:
                header = next((v for k, v in item.items()
                               if isinstance(k, bytes) and k.startswith(b"BODY[HEADER")), b"")
            parsed = BytesHeaderParser(policy=email.policy.compat32).parsebytes(header or b"")
            found[uid] = message_id_key(parsed.get("Message-ID"))
    return found


def _or_criteria(message_ids):
    terms = [[b"HEADER", b"Message-ID", mid.encode("utf-8")] for mid in message_ids]
    crit = terms[-1]
    for term in reversed(terms[:-1]):
        crit = [b"OR"] + term + [crit]
    return crit


def search_message_ids(client, message_ids):
    """{Message-ID key: [uids]} of the selected folder for ``message_ids``.

    HEADER search is a substring match, so hits are confirmed with a header
    FETCH; the search term has no angle brackets so that a header written
    without them is still found.
    """
    wanted = {message_id_key(m) for m in message_ids}
    wanted = {m for m in wanted if m and not m.endswith("@" + mime.SYNTHETIC_ID_DOMAIN)}
    result = {}
    for part in _chunks(sorted(wanted), SEARCH_CHUNK):
        uids = client.search(_or_criteria(part))
        if not uids:
            continue
        for uid, key in fetch_message_ids(client, uids).items():
            if key in wanted:
                result.setdefault(key, []).append(uid)
    return {key: sorted(uids) for key, uids in result.items()}


def locate_message_ids(client, folder, message_ids):
    """{Message-ID key: [uids]} in ``folder`` (opened read-only), {} if it does not exist."""
    if not folder or not any(message_ids):
        return {}
    try:
        client.select_folder(folder, readonly=True)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        if _folder_exists(client, folder):
            raise _fail("The folder %r could not be opened: %%(error)s" % folder, exc) from exc
        return {}
    return search_message_ids(client, message_ids)


# --------------------------------------------------------------------------- folders

def ensure_folder(client, path, role=None):
    """Create and subscribe ``path`` unless it exists; True if created.

    With CREATE-SPECIAL-USE (RFC 6154) the new folder gets its role attribute
    so that other clients recognise it too.
    """
    if _folder_exists(client, path):
        return False
    use = _SPECIAL_USE.get(role)
    try:
        if use and client.has_capability("CREATE-SPECIAL-USE"):
            # imapclient has no CREATE option argument: same quoting, raw command.
            typ, data = client._imap._simple_command(
                "CREATE", client._normalise_folder(path), "(USE (%s))" % use)
            if typ != "OK":
                raise IMAPClientError("CREATE failed: %r" % (data,))
        else:
            client.create_folder(path)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        if _folder_exists(client, path):  # created meanwhile by another worker or client
            return False
        raise FolderError("The folder %r could not be created: %s" % (path, _server_text(exc)),
                          "Create it in your mail client, or choose another folder.",
                          "server_action", reason="create", detail=str(exc)) from exc
    try:
        client.subscribe_folder(path)
    except IMAPClientError:
        pass  # unsubscribed only hides it in some clients; it still works
    return True


def _personal_prefix(client):
    try:
        if client.has_capability("NAMESPACE"):
            personal = client.namespace().personal
            if personal:
                prefix = personal[0][0]
                return prefix.decode() if isinstance(prefix, bytes) else (prefix or "")
    except IMAPClientError:
        pass
    return ""


def _resolve(client, roles, create_role, listing=None):
    listing = listing if listing is not None else folder_roles.list_folders(client)
    for role in roles:
        found = folder_roles.folder_for_role(listing, role)
        if found is not None and found.selectable:
            return found.path, False
    path = _personal_prefix(client) + DEFAULT_NAMES[create_role]
    return path, ensure_folder(client, path, create_role)


def resolve_trash_folder(client, listing=None):
    """(path, created): the Trash role folder ([Gmail]/Trash, "Deleted Items"...),
    created as a top-level "Trash" when the server has none."""
    return _resolve(client, ("trash",), "trash", listing)


def resolve_archive_folder(client, listing=None):
    """(path, created): the Archive role folder; on Gmail (no \\Archive, but an
    \\All folder) All Mail, since archiving there means leaving INBOX; else a
    top-level "Archive" is created."""
    return _resolve(client, ("archive", "all"), "archive", listing)


# --------------------------------------------------------------------------- moving

def uid_expunge(client, uids):
    """UID EXPUNGE of exactly ``uids`` (RFC 4315). Never a plain EXPUNGE."""
    uids = sorted(set(int(u) for u in uids))
    if not uids:
        # imapclient's expunge() without UIDs is a plain EXPUNGE: never reach it.
        raise ValueError("uid_expunge needs at least one UID")
    for part in _chunks(uids, UID_CHUNK):
        client.uid_expunge(part)


def copy_delete_expunge(client, uids, target, *, capabilities=None):
    """Move ``uids`` of the selected (read-write) folder to ``target`` without MOVE:
    UID COPY, then \\Deleted on exactly those UIDs, then UID EXPUNGE of exactly
    those UIDs. Returns {source uid: target uid or None}.

    Refused without UIDPLUS: a plain EXPUNGE would also remove every other
    \\Deleted message of the folder. The order makes a crash safe: before the
    COPY nothing changed; after it the target holds the copy, and a retry finds
    the Message-ID there and only removes the source (``move_messages``).
    """
    caps = capabilities if capabilities is not None else server_capabilities(client)
    if "UIDPLUS" not in caps:
        raise ServerActionError(
            "This mail server supports neither MOVE nor UIDPLUS, so a message cannot be "
            "removed from a folder without also erasing other messages marked as deleted there.",
            "Nothing was changed on the server. Ask the mail provider to enable the MOVE or "
            "UIDPLUS IMAP extension, or switch this propagation rule off.",
            "server_action", reason="unsafe_server")
    uids = sorted(set(int(u) for u in uids))
    if not uids:
        return {}
    mapping = {}
    for part in _chunks(uids, UID_CHUNK):
        client._imap.untagged_responses.pop("COPYUID", None)
        try:
            client.copy(part, target)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            raise _fail("The server refused to copy messages to %r: %%(error)s" % target,
                        exc) from exc
        mapping.update(_mapping(part, _pop_copyuid(client)))
        client.add_flags(part, [DELETED], silent=True)
        uid_expunge(client, part)
    return mapping


def _mapping(uids, copyuid):
    mapping = {uid: None for uid in uids}
    if copyuid is not None:
        mapping.update(dict(zip(copyuid.source_uids, copyuid.dest_uids)))
    return mapping


def _uid_move(client, uids, target):
    mapping = {}
    for part in _chunks(sorted(set(uids)), UID_CHUNK):
        client._imap.untagged_responses.pop("COPYUID", None)
        try:
            client.move(part, target)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            raise _fail("The server refused to move messages to %r: %%(error)s" % target,
                        exc) from exc
        mapping.update(_mapping(part, _pop_copyuid(client)))
    return mapping


def move_messages(client, folder, uids, target, *, message_ids=None, uidvalidity=None,
                  create_role=None, capabilities=None, use_move=None):
    """Move ``uids`` of ``folder`` into ``target``; see the module docstring.

    ``message_ids``: {uid: Message-ID the caller linked to it}; a UID whose
    Message-ID differs is skipped (synthetic ids match a message without one).
    ``uidvalidity``: the value the UIDs belong to; if the folder now has
    another, nothing is touched and ``result.stale`` is set.
    ``create_role``: "trash"/"archive" creates ``target`` when missing (else a
    missing target is an error). ``use_move``: None = when offered.
    Returns an ``ActionResult``.
    """
    caps = capabilities if capabilities is not None else server_capabilities(client)
    if use_move is None:
        use_move = "MOVE" in caps
    if not use_move and "UIDPLUS" not in caps:
        copy_delete_expunge(client, [], target, capabilities=caps)  # raises the refusal
    result = ActionResult(folder=folder, target=target,
                          method="move" if use_move else "copy-expunge")
    uids = sorted(set(int(u) for u in uids if u))
    if not uids:
        result.method = ""
        return result
    expected = {int(u): message_id_key(m) for u, m in (message_ids or {}).items()}

    # 1. Which UIDs still hold our messages.
    selected = select_rw(client, folder)
    if selected is None:
        result.source_missing = True
        result.gone = uids
        result.method = ""
        return result
    if uidvalidity and int(selected[b"UIDVALIDITY"]) != int(uidvalidity):
        result.stale = True
        result.skipped = uids
        result.method = ""
        return result
    present = present_uids(client, uids)
    result.gone = [u for u in uids if u not in present]
    actual = fetch_message_ids(client, present) if present else {}
    ours = []
    for uid in sorted(present):
        want = expected.get(uid)
        have = actual.get(uid)
        if want and want != have and not (have is None and want.endswith(
                "@" + mime.SYNTHETIC_ID_DOMAIN)):
            result.skipped.append(uid)
        else:
            ours.append(uid)
    if not ours:
        result.method = ""
        return result

    # 2. Which of them the target already holds (by Message-ID).
    if create_role:
        result.target_created = ensure_folder(client, target, create_role)
    elif not _folder_exists(client, target):
        raise FolderError("The folder %r does not exist on the server." % target,
                          "Check the mailbox's folders (Refresh folders).", "server_action",
                          reason="no_folder")
    keys = {actual[u] for u in ours if actual.get(u)}
    try:
        target_info = client.select_folder(target, readonly=True)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        raise _fail("The folder %r could not be opened: %%(error)s" % target, exc) from exc
    result.target_uidvalidity = int(target_info[b"UIDVALIDITY"])
    in_target = search_message_ids(client, keys) if keys else {}
    dedup = [u for u in ours if actual.get(u) in in_target]
    to_move = [u for u in ours if u not in dedup]

    # 3. Act on exactly those UIDs.
    again = select_rw(client, folder)
    if again is None or (int(again[b"UIDVALIDITY"]) != int(selected[b"UIDVALIDITY"])):
        # Recreated under our feet: the UIDs mean something else now.
        result.stale = True
        result.skipped += ours
        result.method = ""
        return result
    if dedup:
        if "UIDPLUS" in caps:
            client.add_flags(dedup, [DELETED], silent=True)
            uid_expunge(client, dedup)
            result.deduplicated = dedup
        else:
            to_move = sorted(to_move + dedup)  # MOVE without UIDPLUS: a duplicate beats a loss
    if to_move:
        if use_move:
            result.moved = _uid_move(client, to_move, target)
        else:
            result.moved = copy_delete_expunge(client, to_move, target, capabilities=caps)
    _logger.debug("moved %s from %r to %r (%s), deduplicated %s, gone %s, skipped %s",
                  sorted(result.moved), folder, target, result.method, result.deduplicated,
                  result.gone, result.skipped)
    return result


def move_to_trash(client, folder, uids, trash_folder=None, **kwargs):
    """Move ``uids`` of ``folder`` to the Trash (resolved by role when not
    given, created when missing). Never a permanent delete."""
    created = False
    if not trash_folder:
        trash_folder, created = resolve_trash_folder(client)
    result = move_messages(client, folder, uids, trash_folder, create_role="trash", **kwargs)
    result.target_created = result.target_created or created
    return result


def archive(client, folder, uids, archive_folder=None, **kwargs):
    """Move ``uids`` of ``folder`` (normally INBOX) to the Archive folder
    (resolved by role when not given: \\Archive, else Gmail's All Mail;
    created when missing). On Gmail All Mail already holds every INBOX
    message, so the copy is only removed from INBOX (the Message-ID check)."""
    created = False
    if not archive_folder:
        archive_folder, created = resolve_archive_folder(client)
    result = move_messages(client, folder, uids, archive_folder, create_role="archive", **kwargs)
    result.target_created = result.target_created or created
    return result


# --------------------------------------------------------------------------- detection

def enable_qresync(client):
    """ENABLE QRESYNC on this connection, even when a folder is selected.

    RFC 5161 allows ENABLE only in the authenticated state; a sync session
    has usually EXAMINEd folders already, so leave the folder first with
    UNSELECT (RFC 3691: unlike CLOSE it never expunges).
    """
    if getattr(client, "_mailsync_qresync", False):
        return True
    if not inbound.has_qresync(client):
        return False
    if inbound.enable_qresync(client):
        return True
    if not client.has_capability("UNSELECT"):
        return False
    try:
        client.unselect_folder()
    except IMAPClientAbortError:
        raise
    except IMAPClientError:
        return False
    return inbound.enable_qresync(client)


def removed_uids(client, folder, known_uids, *, uidvalidity=None, modseq=None):
    """Which of ``known_uids`` are no longer in ``folder`` (opened read-only).

    With QRESYNC and a stored ``modseq`` the server lists what it expunged
    since then (``VANISHED (EARLIER)``, one round trip); the candidates are
    confirmed with a UID SEARCH because RFC 7162 lets VANISHED include UIDs
    that never existed or (after a transaction log rotation) more than asked.
    Otherwise the known UIDs are looked up with UID SEARCH. A changed
    UIDVALIDITY is reported (``uidvalidity_changed``) and nothing is removed:
    the inbound resync re-maps those copies by Message-ID.
    """
    known = sorted(set(int(u) for u in known_uids if u))
    qresync = bool(modseq) and bool(known) and enable_qresync(client)
    try:
        info = inbound.examine(client, folder)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        if _folder_exists(client, folder):
            raise _fail("The folder %r could not be opened: %%(error)s" % folder, exc) from exc
        # The folder itself was deleted or renamed: every copy left it.
        return RemovalScan(folder, known, "folder-missing")
    scan = RemovalScan(folder, [], "vanished" if qresync else "uid-search",
                       uidvalidity=info.uidvalidity, highestmodseq=info.highestmodseq)
    if uidvalidity and int(uidvalidity) != info.uidvalidity:
        scan.uidvalidity_changed = True
        return scan
    if not known:
        return scan
    if qresync:
        changes = inbound.changed_since(client, modseq, vanished=True)
        candidates = sorted(set(changes.vanished) & set(known))
        if candidates:
            still = present_uids(client, candidates)
            scan.removed = [u for u in candidates if u not in still]
        return scan
    still = present_uids(client, known)
    scan.removed = [u for u in known if u not in still]
    return scan


def classify_removed(client, removed, *, trash_folder=None, archive_folder=None):
    """Where removed messages went: {uid: "trash" | "archive" | "gone"}.

    ``removed``: {uid: Message-ID} of copies that left their folder. A copy is
    "trash" when its Message-ID is now in ``trash_folder``, else "archive" when
    in ``archive_folder`` (Gmail: All Mail), else "gone" (expunged for good,
    or moved to a folder we do not look at). Trash is looked at first: Gmail
    takes a trashed message out of All Mail, so a Message-ID still in All Mail
    means the message was only archived.
    """
    kinds = {uid: KIND_GONE for uid in removed}
    pending = {uid: message_id_key(mid) for uid, mid in removed.items() if mid}
    for kind, path in ((KIND_TRASH, trash_folder), (KIND_ARCHIVE, archive_folder)):
        wanted = {key for key in pending.values() if key}
        if not path or not wanted:
            continue
        found = locate_message_ids(client, path, wanted)
        for uid, key in list(pending.items()):
            if key in found:
                kinds[uid] = kind
                del pending[uid]
    return kinds
