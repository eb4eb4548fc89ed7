"""Inbound sync protocol work: change detection, UID planning, batched FETCH.

Pure Python on top of an ``imapclient.IMAPClient`` (no Odoo import). The Odoo
side (``mailsync.importer``) decides *what* to import; this module only talks
IMAP, and does it the cheap way:

* Change detection is one ``STATUS (UIDNEXT UIDVALIDITY HIGHESTMODSEQ)`` per
  folder: when nothing changed the poll stops there (no SELECT, no FETCH).
* New mail is the UID range above the stored last UID; the backfill window is
  ``UID SEARCH SINCE <date>`` below the poll cursor, walked newest first.
* Headers first: ``BODY.PEEK[HEADER.FIELDS (...)]`` + INTERNALDATE +
  RFC822.SIZE for many messages per command; full bodies (``BODY.PEEK[]``) are
  fetched only for the messages the caller decided to import, grouped so one
  FETCH never carries more than ``max_bytes``.
* Everything is read-only: folders are opened with EXAMINE and every body item
  is ``BODY.PEEK``, so the user's \\Seen flags never change.

imapclient 4.1 drops unsolicited responses and knows nothing of QRESYNC, so
``changed_since`` sends its FETCH as a raw command and reads the untagged
FETCH/VANISHED responses itself.
"""
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from imapclient.datetime_util import parse_to_datetime
from imapclient.exceptions import IMAPClientError
from imapclient.response_parser import parse_fetch_response

__all__ = [
    "HEADER_FIELDS", "HEADER_ITEM", "CommandLog", "FolderStatus", "FolderCursor",
    "PollDecision", "SelectInfo", "HeaderRecord", "Changes", "folder_status", "plan_poll",
    "examine", "search_new_uids", "search_window_uids", "fetch_headers", "fetch_bodies",
    "body_batches", "changed_since", "has_condstore", "has_qresync", "imap_date",
    "newest_first", "chunked", "enable_qresync", "window_start", "uid_fetch",
]

# The headers needed to match participants, dedupe, thread and date a message,
# and to compute mime.synthetic_message_id (Date, From, To, Subject) when the
# Message-ID is missing. Nothing else of an unmatched message is ever read.
HEADER_FIELDS = ("FROM", "TO", "CC", "BCC", "DATE", "SUBJECT", "MESSAGE-ID", "IN-REPLY-TO",
                 "REFERENCES")
HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS (%s)]" % " ".join(HEADER_FIELDS)
_HEADER_KEY = ("BODY[HEADER.FIELDS (%s)]" % " ".join(HEADER_FIELDS)).encode()
# mime.synthetic_message_id hashes the first 1024 bytes of the body too.
_PREFIX_ITEM = "BODY.PEEK[TEXT]<0.1024>"
_PREFIX_KEYS = (b"BODY[TEXT]<0>", b"BODY[TEXT]")
_BODY_KEY = b"BODY[]"
_HAS_MESSAGE_ID_RE = re.compile(rb"(?im)^message-id[ \t]*:[ \t]*(\r?\n[ \t]+)*<?[^\s<>]")

# Header-only FETCH of a few thousand messages per command is ~20,000 msgs/s on
# loopback; bigger commands only grow the response buffer.
HEADER_CHUNK = 1000
# One body FETCH carries at most this many bytes (a single larger message is
# fetched alone), which bounds the memory of a batch.
BODY_MAX_BYTES = 16 * 1024 * 1024
BODY_MAX_COUNT = 200

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# ---------------------------------------------------------------- instrumentation

class CommandLog:
    """Counts the tagged commands a client sends (instrumentation, not a mock).

    Every tagged command, whether sent by imaplib (``_command``) or by
    imapclient's raw path (``_raw_command``), goes out as one ``send()`` call
    that starts with a fresh tag; the command name follows the tag.
    ``names`` lists them in order ("STATUS", "EXAMINE", "UID FETCH", ...).
    """

    def __init__(self, client):
        self.names = []
        self._imap = client._imap
        self._send = self._imap.send
        self._tagpre = self._imap.tagpre
        self._imap.send = self._record

    def _record(self, data):
        if data.startswith(self._tagpre):
            parts = data.split(b" ", 3)
            if len(parts) >= 2:
                name = parts[1].rstrip(b"\r\n").upper()
                if name == b"UID" and len(parts) >= 3:
                    name += b" " + parts[2].rstrip(b"\r\n").upper()
                self.names.append(name.decode("ascii", "replace"))
        return self._send(data)

    def count(self, prefix=None):
        if prefix is None:
            return len(self.names)
        return sum(1 for name in self.names if name == prefix or name.endswith(" " + prefix))

    def detach(self):
        self._imap.send = self._send


# ---------------------------------------------------------------- capabilities / helpers

def has_condstore(client):
    caps = client.capabilities()
    return b"CONDSTORE" in caps or b"QRESYNC" in caps


def has_qresync(client):
    return b"QRESYNC" in client.capabilities()


def imap_date(day):
    """IMAP date (RFC 3501 date-text) for SEARCH SINCE, locale independent."""
    if isinstance(day, datetime):
        day = day.date()
    return "%d-%s-%d" % (day.day, _MONTHS[day.month - 1], day.year)


def chunked(items, size):
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def newest_first(uids):
    return sorted(set(uids), reverse=True)


def _to_utc(value):
    """imapclient returns naive local datetimes when normalise_times is on."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.astimezone()  # naive = this machine's local time
    return value.astimezone(timezone.utc)


def _uid_set(uids):
    """Compact IMAP sequence set: [1, 2, 3, 7] -> b'1:3,7'."""
    uids = sorted(set(int(u) for u in uids))
    parts = []
    start = prev = None
    for uid in uids:
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            parts.append(b"%d" % start if start == prev else b"%d:%d" % (start, prev))
            start = prev = uid
    if start is not None:
        parts.append(b"%d" % start if start == prev else b"%d:%d" % (start, prev))
    return b",".join(parts)


# ---------------------------------------------------------------- folder state

@dataclass(frozen=True)
class FolderStatus:
    path: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int = None   # None when the server has no CONDSTORE
    messages: int = None


@dataclass(frozen=True)
class FolderCursor:
    """What we stored about a folder after the last poll."""
    uidvalidity: int = None
    last_uid: int = 0
    highestmodseq: int = None


@dataclass(frozen=True)
class PollDecision:
    """``kind``:

    * "init": never polled; start from the current UIDNEXT (older mail is the
      backfill's job, so the first poll imports nothing).
    * "unchanged": nothing to do, no SELECT, no FETCH.
    * "new": UIDs above ``cursor.last_uid`` may exist.
    * "changed": no new UID but HIGHESTMODSEQ moved (flags changed or mail
      expunged): nothing to import; propagation may look at it.
    * "resync": UIDVALIDITY changed, every stored UID is void.
    """
    kind: str
    status: FolderStatus


def folder_status(client, path, *, condstore=None):
    """One STATUS round trip. ``condstore``: ask HIGHESTMODSEQ (auto-detected)."""
    if condstore is None:
        condstore = has_condstore(client)
    what = ["UIDNEXT", "UIDVALIDITY", "MESSAGES"]
    if condstore:
        what.append("HIGHESTMODSEQ")
    data = client.folder_status(path, what)
    modseq = data.get(b"HIGHESTMODSEQ")
    return FolderStatus(
        path=path,
        uidvalidity=int(data[b"UIDVALIDITY"]),
        uidnext=int(data[b"UIDNEXT"]),
        highestmodseq=int(modseq) if modseq is not None else None,
        messages=int(data[b"MESSAGES"]) if data.get(b"MESSAGES") is not None else None,
    )


def plan_poll(cursor, status):
    """Decide from a stored cursor and a fresh STATUS what a poll must do."""
    if not cursor.uidvalidity:
        return PollDecision("init", status)
    if int(cursor.uidvalidity) != status.uidvalidity:
        return PollDecision("resync", status)
    if status.uidnext > (cursor.last_uid or 0) + 1:
        return PollDecision("new", status)
    if (status.highestmodseq is not None and cursor.highestmodseq is not None
            and int(status.highestmodseq) != int(cursor.highestmodseq)):
        return PollDecision("changed", status)
    return PollDecision("unchanged", status)


@dataclass(frozen=True)
class SelectInfo:
    path: str
    uidvalidity: int
    uidnext: int
    exists: int
    highestmodseq: int = None


def examine(client, path):
    """Open ``path`` read-only (EXAMINE): nothing we do can change flags."""
    data = client.select_folder(path, readonly=True)
    modseq = data.get(b"HIGHESTMODSEQ")
    uidnext = data.get(b"UIDNEXT")
    if uidnext is None:
        # RFC 3501 lets a server omit UIDNEXT in SELECT; STATUS always has it.
        uidnext = client.folder_status(path, ["UIDNEXT"])[b"UIDNEXT"]
    return SelectInfo(path=path, uidvalidity=int(data[b"UIDVALIDITY"]), uidnext=int(uidnext),
                      exists=int(data.get(b"EXISTS") or 0),
                      highestmodseq=int(modseq) if modseq is not None else None)


# ---------------------------------------------------------------- UID planning

def search_new_uids(client, last_uid):
    """UIDs above ``last_uid`` in the selected folder, ascending.

    ``UID n:*`` always matches the highest UID even when it is below n
    (RFC 3501 6.4.8), hence the filter.
    """
    uids = client.search(["UID", "%d:*" % ((last_uid or 0) + 1)])
    return sorted(uid for uid in uids if uid > (last_uid or 0))


def search_window_uids(client, since, below_uid=None, *, extra=(), charset=None):
    """UIDs of the selected folder received since ``since`` (a date), newest
    first, restricted to UIDs < ``below_uid`` (the backfill cursor) and to
    the ``extra`` SEARCH keys (in ``charset`` when they are not US-ASCII)."""
    criteria = ["SINCE", imap_date(since), *extra]
    if below_uid is not None:
        if below_uid <= 1:
            return []
        criteria = ["UID", "1:%d" % (below_uid - 1)] + criteria
    uids = client.search(criteria, charset)
    if below_uid is not None:
        uids = [uid for uid in uids if uid < below_uid]
    return newest_first(uids)


# ---------------------------------------------------------------- FETCH

# imapclient lexes every byte of a FETCH response in Python; for bulk header
# and body fetches, whose shape we chose, reading imaplib's already split
# response (literals arrive as separate bytes objects) is several times
# cheaper. Anything unexpected falls back to imapclient's parser.
_FETCH_START_RE = re.compile(rb"^(\d+) \(")
_LITERAL_KEY_RE = re.compile(rb"(BODY\[[^\]]*\](?:<\d+>)?) \{\d+\+?\}$")
_UID_RE = re.compile(rb"\bUID (\d+)")
_SIZE_RE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_DATE_RE = re.compile(rb'\bINTERNALDATE "([^"]*)"')


class _Unexpected(Exception):
    pass


def uid_fetch(client, uids, items):
    """``UID FETCH`` of ``items`` (list of str) -> {uid: {key bytes: value}},
    keys and value types as imapclient's ``fetch`` returns them (INTERNALDATE
    aware). Unsolicited responses for other messages are dropped."""
    imap = client._imap
    tag = imap._command("UID", "FETCH", _uid_set(uids).decode(), "(%s)" % " ".join(items))
    typ, data = imap._command_complete("FETCH", tag)
    if typ != "OK":
        raise IMAPClientError("UID FETCH failed: %r" % (data,))
    typ, data = imap._untagged_response(typ, data, "FETCH")
    wanted = set(int(uid) for uid in uids)
    try:
        parsed = _parse_fetch_fast(data)
    except _Unexpected:
        parsed = {}
        for uid, item in parse_fetch_response([d for d in data if d is not None], False,
                                              True).items():
            parsed[uid] = item
    return {uid: item for uid, item in parsed.items() if uid in wanted}


def _parse_fetch_fast(data):
    responses = []
    for element in data:
        if element is None:
            continue
        head, literal = element if isinstance(element, tuple) else (element, None)
        if _FETCH_START_RE.match(head):
            responses.append([[head], {}])
        elif not responses:
            raise _Unexpected()
        else:
            responses[-1][0].append(head)
        if literal is not None:
            key = _LITERAL_KEY_RE.search(head)
            if not key:
                raise _Unexpected()
            responses[-1][1][key.group(1)] = literal
    result = {}
    for heads, items in responses:
        text = b" ".join(heads)
        if text.count(b"BODY[") != len(items):
            raise _Unexpected()  # a body item sent as a quoted string or NIL
        uid = _UID_RE.search(text)
        if not uid:
            continue  # unsolicited (e.g. a flag change in another session)
        size = _SIZE_RE.search(text)
        if size:
            items[b"RFC822.SIZE"] = int(size.group(1))
        date = _DATE_RE.search(text)
        if date:
            items[b"INTERNALDATE"] = parse_to_datetime(date.group(1), normalise=False)
        result[int(uid.group(1))] = items
    return result


@dataclass
class HeaderRecord:
    uid: int
    header: bytes             # the HEADER.FIELDS block, CRLF separated
    internaldate: datetime    # aware, UTC (None if the server sent none)
    size: int                 # RFC822.SIZE
    body_prefix: bytes = b""  # first 1024 body bytes, only when Message-ID is missing

    @property
    def has_message_id(self):
        return bool(_HAS_MESSAGE_ID_RE.search(self.header or b""))


def _header_value(data):
    value = data.get(_HEADER_KEY)
    if value is None:  # some servers echo the field list differently
        for key, item in data.items():
            if isinstance(key, bytes) and key.startswith(b"BODY[HEADER.FIELDS"):
                return item or b""
        return b""
    return value or b""


def fetch_headers(client, uids, *, chunk=HEADER_CHUNK):
    """Header records for ``uids`` of the selected folder, in the order given.

    UIDs that vanished meanwhile are simply absent. Messages without a
    Message-ID get their body prefix in one extra small FETCH so that the
    caller can compute the same synthetic id a full parse would.
    """
    uids = list(uids)
    records = {}
    for part in chunked(uids, chunk):
        response = uid_fetch(client, part, [HEADER_ITEM, "INTERNALDATE", "RFC822.SIZE"])
        for uid, data in response.items():
            records[uid] = HeaderRecord(
                uid=uid, header=_header_value(data),
                internaldate=_to_utc(data.get(b"INTERNALDATE")),
                size=int(data.get(b"RFC822.SIZE") or 0))
    missing = [uid for uid, rec in records.items() if not rec.has_message_id]
    for part in chunked(missing, chunk):
        response = uid_fetch(client, part, [_PREFIX_ITEM])
        for uid, data in response.items():
            for key in _PREFIX_KEYS:
                if key in data:
                    records[uid].body_prefix = data[key] or b""
                    break
    return [records[uid] for uid in uids if uid in records]


def body_batches(sizes, *, max_bytes=BODY_MAX_BYTES, max_count=BODY_MAX_COUNT):
    """Group ``[(uid, size)]`` so no group exceeds max_bytes (unless it is a
    single message) or max_count messages. Order is kept."""
    batch, total = [], 0
    for uid, size in sizes:
        size = size or 0
        if batch and (total + size > max_bytes or len(batch) >= max_count):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def fetch_bodies(client, sizes, *, max_bytes=BODY_MAX_BYTES, max_count=BODY_MAX_COUNT):
    """Yield ``(uid, raw bytes)`` for ``[(uid, size)]`` with ``BODY.PEEK[]``.

    A generator, batch by batch, so the caller can import and drop each
    message before the next batch arrives.
    """
    for batch in body_batches(sizes, max_bytes=max_bytes, max_count=max_count):
        response = uid_fetch(client, batch, ["BODY.PEEK[]"])
        for uid in batch:
            data = response.pop(uid, None)
            if data is None or data.get(_BODY_KEY) is None:
                continue  # expunged between the header and the body FETCH
            raw = data[_BODY_KEY]
            del data
            yield uid, raw
        del response


# ---------------------------------------------------------------- CONDSTORE / QRESYNC

@dataclass
class Changes:
    flags: dict        # {uid: (flags...)} changed since the modseq
    vanished: list     # UIDs expunged since the modseq (QRESYNC only, else [])
    highestmodseq: int = None


def _untagged(imap, name):
    return imap.untagged_responses.pop(name, [])


def changed_since(client, modseq, *, vanished=None):
    """Flags changed and UIDs expunged since ``modseq`` in the selected folder.

    One ``UID FETCH 1:* (FLAGS) (CHANGEDSINCE m [VANISHED])`` round trip; with
    QRESYNC the server also reports expunged UIDs as ``* VANISHED (EARLIER)``.
    The QRESYNC extension must have been ENABLEd before the SELECT for
    VANISHED to be allowed (see ``enable_qresync``).
    """
    if vanished is None:
        vanished = getattr(client, "_mailsync_qresync", False)
    imap = client._imap
    modifiers = "(CHANGEDSINCE %d%s)" % (int(modseq), " VANISHED" if vanished else "")
    _untagged(imap, "FETCH")
    _untagged(imap, "VANISHED")
    typ, data = imap._simple_command("UID", "FETCH", "1:*", "(UID FLAGS)", modifiers)
    if typ != "OK":
        from imapclient.exceptions import IMAPClientError
        raise IMAPClientError("UID FETCH CHANGEDSINCE failed: %r" % (data,))
    fetches = _untagged(imap, "FETCH")
    vanished_lines = _untagged(imap, "VANISHED")
    flags = {}
    if fetches:
        parsed = parse_fetch_response([f for f in fetches if f is not None], True, True)
        for uid, item in parsed.items():
            if b"FLAGS" in item:
                flags[uid] = tuple(item[b"FLAGS"])
    gone = []
    for line in vanished_lines:
        text = line.decode("ascii", "replace") if isinstance(line, bytes) else str(line)
        text = text.replace("(EARLIER)", "").strip()
        gone.extend(_parse_uid_set(text))
    return Changes(flags=flags, vanished=sorted(set(gone)))


def enable_qresync(client):
    """ENABLE QRESYNC (once per connection, before SELECT). Returns success."""
    if getattr(client, "_mailsync_qresync", False):
        return True
    if not has_qresync(client):
        return False
    try:
        enabled = client.enable("QRESYNC")
    except Exception:  # noqa: BLE001 - servers differ; CONDSTORE alone still works
        return False
    ok = any(cap.upper() == b"QRESYNC" for cap in (enabled or []))
    client._mailsync_qresync = ok
    return ok


def _parse_uid_set(text):
    uids = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if ":" in part:
            lo, hi = (int(x) for x in part.split(":"))
            lo, hi = min(lo, hi), max(lo, hi)
            uids.extend(range(lo, hi + 1))
        elif part.isdigit():
            uids.append(int(part))
    return uids


def window_start(today, days):
    """First day of a backfill window of ``days`` days ending ``today``."""
    if isinstance(today, datetime):
        today = today.date()
    return today - timedelta(days=max(int(days or 0), 0))

