"""Sent-folder copies of mail sent from Odoo: transform, find, append, verify.

Odoo sends through the user's own SMTP; most servers do not file what was
submitted, so a copy of the exact message is APPENDed to the Sent folder. The
rules that keep the user's mailbox clean:

* exactly one copy per Message-ID: before appending, the folder is searched for
  the Message-IDs of the whole batch (a retry after a lost APPEND reply, or a
  provider that saves sent mail itself such as Gmail or Microsoft 365, never
  leaves a second copy);
* the copy is marked ``\\Seen`` and dated with the send time (INTERNALDATE), so
  clients sort it where the user expects and do not show it as unread;
* every copy is verified: APPENDUID (UIDPLUS) when the server gives it, else a
  UID SEARCH on the Message-ID;
* batches use MULTIAPPEND (RFC 3502) when the server offers it: one round trip
  for up to ``chunk`` messages instead of one (plus a literal continuation) each.

Pure Python: this module knows imapclient and the email package, not Odoo.
"""
import email
import email.policy
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.generator import BytesGenerator
from email.parser import BytesHeaderParser
from html.parser import HTMLParser

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from .errors import AppendError, ConnectError, FolderError

CONTENT_FULL = "full"
CONTENT_TEXT = "text"
CONTENT_HEADERS = "headers"
CONTENT_CHOICES = (CONTENT_FULL, CONTENT_TEXT, CONTENT_HEADERS)

SEEN = b"\\Seen"

# A top-level folder with this name is created when the server has no Sent
# folder at all (some bare Dovecot/Courier installs start with INBOX only).
DEFAULT_SENT_NAME = "Sent"

# Message-IDs per UID SEARCH: one command scans the folder once whatever the
# number of OR'd criteria, but very long command lines are refused by some
# servers (Exchange caps them around 8-16 KB); 50 ids is ~3-4 KB.
SEARCH_CHUNK = 50
# Messages per MULTIAPPEND command, and a byte cap so that one command never
# carries more than a few tens of MB (servers also cap a single command).
APPEND_CHUNK = 100
APPEND_CHUNK_BYTES = 24 * 1024 * 1024

_APPENDUID_RE = re.compile(rb"\[APPENDUID\s+(\d+)\s+([0-9:,]+)\]", re.I)
_MSGID_RE = re.compile(r"<[^<>\s]+>")
_WS_RE = re.compile(r"\s+")

# How a 8-bit/binary body is re-encoded is left to the email package; the
# linesep is the one SMTP and IMAP use on the wire.
_POLICY = email.policy.compat32.clone(linesep="\r\n")


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class CopyOptions:
    """What the Sent copy keeps of the message that was sent.

    ``content``: "full" (the exact bytes), "text" (headers + the plain-text body;
    HTML alternative and inline images dropped), "headers" (headers only, with a
    one-line note as body). ``attachments``: keep attachments or replace each by a
    short note. ``max_attachment_bytes``: attachments larger than this (decoded
    size) are replaced by a note; 0 means no limit. The Message-ID and every
    other header are always kept, so the copy is still recognised as the same
    message by clients and by the Sent-folder sync.
    """
    content: str = CONTENT_FULL
    attachments: bool = True
    max_attachment_bytes: int = 0

    def __post_init__(self):
        if self.content not in CONTENT_CHOICES:
            raise ValueError("content must be one of %s" % (CONTENT_CHOICES,))

    @property
    def is_identity(self):
        """True when the copy is the exact message, byte for byte."""
        return (self.content == CONTENT_FULL and self.attachments
                and not self.max_attachment_bytes)


@dataclass
class PendingCopy:
    """One message to file. ``key`` is the caller's (the outbox row id)."""
    key: object
    raw: bytes
    message_id: str = None
    internal_date: datetime = None

    def __post_init__(self):
        if self.message_id is None:
            self.message_id = message_id_of(self.raw)
        else:
            self.message_id = normalize_message_id(self.message_id)


@dataclass
class CopyResult:
    """Outcome for one PendingCopy.

    status: "appended" (we stored it), "exists" (already in the folder: the
    provider saved it, or an earlier attempt did), "failed" (``error`` says why;
    the server refused this message, others may have succeeded).
    ``verified_by``: "appenduid", "search" or "existing".
    """
    key: object
    status: str
    uid: int = None
    verified_by: str = None
    error: Exception = None


@dataclass
class BatchReport:
    """Results of append_copies plus how the batch went (for logs and benchmarks)."""
    results: list = field(default_factory=list)
    folder: str = None
    uidvalidity: int = None
    used_multiappend: bool = False
    existing_found: int = 0
    commands: int = 0

    def by_key(self):
        return {r.key: r for r in self.results}


class PartialBatchError(ConnectError):
    """The connection broke in the middle of a batch. ``results`` holds what was
    settled before it did; the rest is unknown and must be retried (the
    Message-ID search of the retry finds anything that did reach the folder)."""

    def __init__(self, cause, results):
        super().__init__(
            getattr(cause, "message", None) or "The connection to the mail server was lost "
            "while saving sent copies.",
            getattr(cause, "hint", None) or "The remaining copies are retried automatically.",
            "append", reason=getattr(cause, "reason", None) or "closed", detail=str(cause))
        self.results = results


# --------------------------------------------------------------------------- Message-ID
def normalize_message_id(value):
    """'<ABC@x>' / ' <abc@x> ' / folded text -> '<ABC@x>'; None when there is none.

    Case is kept (the local part is case-sensitive in theory); comparisons in
    this module are case-insensitive, like the servers' HEADER search.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    value = _WS_RE.sub("", str(value))
    if not value:
        return None
    match = _MSGID_RE.search(value)
    if match:
        return match.group(0)
    return "<%s>" % value.strip("<>")


def message_id_of(raw):
    """The normalized Message-ID header of raw RFC 822 bytes, or None."""
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    return normalize_message_id(headers.get("Message-ID"))


def _mid_key(message_id):
    return message_id.lower() if message_id else None


# --------------------------------------------------------------------------- transform
class _HtmlText(HTMLParser):
    """Tiny HTML -> text for the "text only" copy when a message has no text part."""

    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)

    def text(self):
        out = "".join(self.parts)
        out = re.sub(r"[ \t]+", " ", out)
        out = re.sub(r"\n\s*\n\s*\n+", "\n\n", out)
        return out.strip() + "\n"


def html_to_text(markup):
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return parser.text()


def _is_attachment(part):
    """Leaf parts that are files rather than the message text: anything with an
    attachment disposition, and non-text leaves (inline images, calendar files
    as application/ics, ...)."""
    if part.is_multipart():
        return False
    if part.get_content_disposition() == "attachment":
        return True
    return part.get_content_maintype() not in ("text", "multipart", "message")


def _part_size(part):
    payload = part.get_payload(decode=True)
    return len(payload) if payload is not None else 0


def _human_size(n):
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return ("%d %s" % (n, unit)) if unit == "bytes" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return "%d" % n


def _note_part(text):
    note = email.message.Message(policy=email.policy.compat32)
    note["Content-Type"] = 'text/plain; charset="utf-8"'
    note["Content-Transfer-Encoding"] = "8bit"
    note["Content-Disposition"] = "inline"
    note.set_payload(text.encode("utf-8").decode("ascii", "surrogateescape"))
    return note


def _attachment_note(part, reason):
    name = part.get_filename() or part.get_content_type()
    return "[Attachment %r (%s, %s) was not kept in this copy: %s.]\r\n" % (
        name, part.get_content_type(), _human_size(_part_size(part)), reason)


def _flatten(msg):
    buf = io.BytesIO()
    BytesGenerator(buf, mangle_from_=False, policy=_POLICY).flatten(msg)
    return buf.getvalue()


def _replace_attachments(msg, options):
    """Replace, in place, the attachment leaves that the options drop. Returns
    the number replaced."""
    replaced = 0
    for part in list(msg.walk()):
        if not part.is_multipart() or part.get_content_type() == "message/rfc822":
            continue
        payload = part.get_payload()
        for index, child in enumerate(payload):
            if not _is_attachment(child):
                continue
            reason = None
            if not options.attachments:
                reason = "attachments are not kept in Sent copies"
            elif options.max_attachment_bytes and _part_size(child) > options.max_attachment_bytes:
                reason = "larger than the %s limit for Sent copies" % _human_size(
                    options.max_attachment_bytes)
            if reason:
                payload[index] = _note_part(_attachment_note(child, reason))
                replaced += 1
    return replaced


def _text_body(msg):
    """(text, found) -- the first text/plain body part, else the first HTML part as text."""
    html_part = None
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain":
            return _decoded_text(part), True
        if ctype == "text/html" and html_part is None:
            html_part = part
    if html_part is not None:
        return html_to_text(_decoded_text(html_part)), True
    return "", False


def _decoded_text(part):
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


_CONTENT_HEADERS = ("Content-Type", "Content-Transfer-Encoding", "MIME-Version",
                    "Content-Disposition", "Content-ID", "Content-Description")


def _headers_only_message(msg, body_text, extra_parts=()):
    """A new message with every non-content header of ``msg`` (same order, same
    folding) and a UTF-8 text body, plus optional extra leaf parts."""
    new = email.message.Message(policy=email.policy.compat32)
    for name, value in msg.items():
        if name.lower() in {h.lower() for h in _CONTENT_HEADERS}:
            continue
        new[name] = value
    new["MIME-Version"] = "1.0"
    text = body_text.replace("\r\n", "\n").replace("\n", "\r\n")
    encoded = text.encode("utf-8").decode("ascii", "surrogateescape")
    if extra_parts:
        boundary = email.generator._make_boundary()
        new["Content-Type"] = 'multipart/mixed; boundary="%s"' % boundary
        body = email.message.Message(policy=email.policy.compat32)
        body["Content-Type"] = 'text/plain; charset="utf-8"'
        body["Content-Transfer-Encoding"] = "8bit"
        body.set_payload(encoded)
        new.set_payload([body] + list(extra_parts))
    else:
        new["Content-Type"] = 'text/plain; charset="utf-8"'
        new["Content-Transfer-Encoding"] = "8bit"
        new.set_payload(encoded)
    return new


def transform_copy(raw, options=None):
    """The bytes to file in the Sent folder for ``raw`` under ``options``.

    With the default options this is ``raw`` itself, unchanged. Otherwise the
    headers are kept as they were (Message-ID included) and only the body is
    reduced.
    """
    options = options or CopyOptions()
    if options.is_identity:
        return raw
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    if options.content == CONTENT_HEADERS:
        new = _headers_only_message(
            msg, "[Only the headers of this message were kept in the Sent copy.]\n")
        return _flatten(new)
    if options.content == CONTENT_TEXT:
        text, _found = _text_body(msg)
        kept = []
        if options.attachments:
            for part in msg.walk():
                if _is_attachment(part) and part.get_content_disposition() == "attachment":
                    if options.max_attachment_bytes and _part_size(part) > options.max_attachment_bytes:
                        kept.append(_note_part(_attachment_note(
                            part, "larger than the %s limit for Sent copies"
                            % _human_size(options.max_attachment_bytes))))
                    else:
                        kept.append(part)
        else:
            notes = [_attachment_note(p, "attachments are not kept in Sent copies")
                     for p in msg.walk()
                     if _is_attachment(p) and p.get_content_disposition() == "attachment"]
            if notes:
                text = text.rstrip("\n") + "\n\n" + "".join(notes).replace("\r\n", "\n")
        return _flatten(_headers_only_message(msg, text, kept))
    # full message, some attachments dropped or too large
    if not msg.is_multipart():
        return raw
    if not _replace_attachments(msg, options):
        return raw  # nothing to drop: keep the exact bytes
    return _flatten(msg)


# --------------------------------------------------------------------------- folders
def personal_prefix(client):
    """(prefix, delimiter) of the personal namespace, e.g. ('', '/') or ('INBOX.', '.')."""
    try:
        if client.has_capability("NAMESPACE"):
            personal = client.namespace().personal
            if personal:
                prefix, delimiter = personal[0]
                return prefix or "", delimiter or ""
    except IMAPClientError:
        pass
    listing = client.list_folders(pattern="")
    delimiter = listing[0][1] if listing else b"/"
    if isinstance(delimiter, bytes):
        delimiter = delimiter.decode()
    return "", delimiter or ""


def folder_exists(client, path):
    return bool(client.list_folders(pattern=path))


def ensure_folder(client, path):
    """Create and subscribe ``path`` when it does not exist. Returns True if created."""
    if folder_exists(client, path):
        return False
    try:
        client.create_folder(path)
    except IMAPClientError as exc:
        if folder_exists(client, path):  # created concurrently by another worker
            return False
        raise FolderError(
            "The folder %r could not be created: %s" % (path, _server_text(exc)),
            "Create it in your mail client or choose another folder for sent copies.",
            "append", reason="create", detail=str(exc)) from exc
    try:
        client.subscribe_folder(path)
    except IMAPClientError:
        pass  # not subscribing only hides it in some clients; the copy is still filed
    return True


def resolve_sent_folder(client, preferred=None, create_name=DEFAULT_SENT_NAME):
    """(path, created) of the folder that receives sent copies.

    ``preferred`` (a path the user chose or the Sent folder recorded for the
    mailbox) wins when it exists; otherwise the folder with the \\Sent role
    (SPECIAL-USE, then the usual names); when there is none a top-level folder
    ``create_name`` is created under the personal namespace and subscribed.
    """
    if preferred and folder_exists(client, preferred):
        return preferred, False
    from . import folders  # protocol core: role detection shared with discovery
    sent = folders.folder_for_role(folders.list_folders(client), "sent")
    if sent is not None:
        return sent.path, False
    prefix, _delimiter = personal_prefix(client)
    path = prefix + create_name
    return path, ensure_folder(client, path)


# --------------------------------------------------------------------------- find
def _server_text(exc):
    text = str(exc)
    return text[:300]


def _fetch_message_ids(client, uids):
    """{uid: normalized Message-ID} for the given UIDs of the selected folder."""
    found = {}
    uids = sorted(set(uids))
    for i in range(0, len(uids), 1000):
        data = client.fetch(uids[i:i + 1000], ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        for uid, item in data.items():
            header = item.get(b"BODY[HEADER.FIELDS (MESSAGE-ID)]") or b""
            parsed = BytesHeaderParser(policy=email.policy.compat32).parsebytes(header)
            mid = normalize_message_id(parsed.get("Message-ID"))
            if mid:
                found[uid] = mid
    return found


def _or_criteria(message_ids):
    """UID SEARCH criteria matching any of the Message-IDs: OR a (OR b c)."""
    terms = [["HEADER", "Message-ID", mid] for mid in message_ids]
    crit = terms[-1]
    for term in reversed(terms[:-1]):
        crit = ["OR"] + term + [crit]
    return crit


def find_existing(client, message_ids, *, strategy="search", since=None, chunk=SEARCH_CHUNK):
    """{message_id.lower(): uid} for those of ``message_ids`` already in the
    SELECTED folder (lowest UID when a Message-ID appears more than once).

    strategy "search": one UID SEARCH with OR'd HEADER Message-ID criteria per
    ``chunk`` ids, then a header FETCH of the hits to tell which is which.
    strategy "recent": UID SEARCH SINCE ``since`` (a date; the copies are never
    older than the send) and a header FETCH of those UIDs: cheaper when the
    folder is large and the batch is big, since the server compares dates
    instead of scanning headers.
    """
    wanted = {_mid_key(m) for m in message_ids if m}
    if not wanted:
        return {}
    if strategy == "recent":
        since = since or (datetime.now(timezone.utc) - timedelta(days=2)).date()
        uids = client.search(["SINCE", since])
        candidates = _fetch_message_ids(client, uids) if uids else {}
    elif strategy == "search":
        candidates = {}
        mids = sorted(wanted)
        for i in range(0, len(mids), chunk):
            part = mids[i:i + chunk]
            uids = client.search(_or_criteria(part))
            if uids:
                candidates.update(_fetch_message_ids(client, uids))
    else:
        raise ValueError("unknown strategy %r" % strategy)
    found = {}
    for uid in sorted(candidates):
        key = _mid_key(candidates[uid])
        if key in wanted and key not in found:
            found[key] = uid
    return found


# --------------------------------------------------------------------------- append
def parse_appenduid(response):
    """(uidvalidity, [uids]) from an APPEND/MULTIAPPEND tagged response, else None."""
    if isinstance(response, (list, tuple)):
        response = b" ".join(r if isinstance(r, bytes) else str(r).encode() for r in response
                             if r is not None)
    if isinstance(response, str):
        response = response.encode()
    match = _APPENDUID_RE.search(response or b"")
    if not match:
        return None
    uids = []
    for piece in match.group(2).decode().split(","):
        if ":" in piece:
            lo, hi = sorted(int(x) for x in piece.split(":"))
            uids.extend(range(lo, hi + 1))
        else:
            uids.append(int(piece))
    return int(match.group(1)), uids


def _append_limit(client):
    """APPENDLIMIT=n (RFC 7889) when announced, else None."""
    for cap in client.capabilities():
        if cap.upper().startswith(b"APPENDLIMIT="):
            try:
                return int(cap.split(b"=", 1)[1])
            except ValueError:
                return None
    return None


def _as_aware(value):
    if value is None:
        return None
    if value.tzinfo is None:  # the caller's naive datetimes are UTC (Odoo's convention)
        return value.replace(tzinfo=timezone.utc)
    return value


def _chunks(copies, size, max_bytes):
    batch, total = [], 0
    for copy in copies:
        if batch and (len(batch) >= size or total + len(copy.raw) > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(copy)
        total += len(copy.raw)
    if batch:
        yield batch


def _refused(message, exc=None, response=None):
    detail = _server_text(exc) if exc is not None else repr(response)[:300]
    return AppendError(
        "The server refused to store the sent copy: %s" % (message or detail),
        "The message may exceed the server's size limit or the folder may be full "
        "or read-only. Other copies are not affected.",
        "append", reason="refused", detail=detail)


def _connection_lost(exc):
    return ConnectError(
        "The connection to the mail server was lost while saving sent copies.",
        "They are retried automatically when the server is reachable again.",
        "append", reason="closed", detail=_server_text(exc))


def append_copies(client, folder, copies, *, flags=(SEEN,), check_existing=True,
                  strategy="search", use_multiappend=None, chunk=APPEND_CHUNK,
                  chunk_bytes=APPEND_CHUNK_BYTES):
    """File ``copies`` (PendingCopy) into ``folder`` exactly once each.

    The folder is SELECTed; the Message-IDs of the batch are searched first
    (``check_existing``), copies found are reported "exists" with their UID;
    the others are appended (MULTIAPPEND in chunks when offered, one APPEND
    each otherwise), with ``flags`` and the copy's internal date, then verified.
    Two copies with the same Message-ID in one batch are filed once.

    Returns a BatchReport. Message-level refusals become "failed" results; a
    connection-level failure raises PartialBatchError carrying the results
    settled so far.
    """
    report = BatchReport(folder=folder)
    results = report.results
    try:
        try:
            status = client.select_folder(folder)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            raise FolderError(
                "The folder %r for sent copies cannot be opened: %s" % (folder, _server_text(exc)),
                "Check that the folder exists, or pick the Sent folder again on the mailbox.",
                "append", reason="select", detail=str(exc)) from exc
        report.commands += 1
        report.uidvalidity = status.get(b"UIDVALIDITY")
        limit = _append_limit(client)
        if use_multiappend is None:
            use_multiappend = client.has_capability("MULTIAPPEND")
        report.used_multiappend = bool(use_multiappend)

        existing = {}
        if check_existing:
            mids = [c.message_id for c in copies if c.message_id]
            if mids:
                since = None
                if strategy == "recent":
                    dates = [c.internal_date for c in copies if c.internal_date]
                    since = (min(_as_aware(d) for d in dates) - timedelta(days=1)).date() \
                        if dates else None
                existing = find_existing(client, mids, strategy=strategy, since=since)
                report.commands += 1 + len(mids) // SEARCH_CHUNK
        report.existing_found = len(existing)

        to_append, first_of = [], {}
        for copy in copies:
            key = _mid_key(copy.message_id)
            if key and key in existing:
                results.append(CopyResult(copy.key, "exists", existing[key], "existing"))
            elif key and key in first_of:
                # Same Message-ID twice in the batch: settled with the first one.
                first_of[key].append(copy)
            else:
                if limit is not None and len(copy.raw) > limit:
                    results.append(CopyResult(copy.key, "failed", error=_refused(
                        "the message (%s) is larger than the server accepts (%s)"
                        % (_human_size(len(copy.raw)), _human_size(limit)))))
                    continue
                to_append.append(copy)
                if key:
                    first_of[key] = [copy]

        appended = {}  # id(copy) -> CopyResult
        unverified = []
        for batch in _chunks(to_append, chunk if use_multiappend else 1, chunk_bytes):
            if use_multiappend and len(batch) > 1:
                outcome = _multiappend(client, folder, batch, flags, report)
            else:
                outcome = [_append_one(client, folder, batch[0], flags, report)]
            for copy, result in zip(batch, outcome):
                appended[id(copy)] = result
                if result.status == "appended" and result.uid is None and copy.message_id:
                    unverified.append(copy)

        if unverified:
            _verify_by_search(client, unverified, appended, report)

        for copy in to_append:
            result = appended[id(copy)]
            results.append(result)
            key = _mid_key(copy.message_id)
            for twin in (first_of.get(key) or [])[1:]:
                if result.status == "failed":
                    results.append(CopyResult(twin.key, "failed", error=result.error))
                else:
                    results.append(CopyResult(twin.key, "exists", result.uid, result.verified_by))
    except (IMAPClientAbortError, OSError, EOFError) as exc:
        raise PartialBatchError(_connection_lost(exc), list(results)) from exc
    return report


def _append_one(client, folder, copy, flags, report):
    report.commands += 1
    try:
        response = client.append(folder, copy.raw, flags=flags,
                                 msg_time=_as_aware(copy.internal_date))
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        return CopyResult(copy.key, "failed", error=_refused(None, exc))
    parsed = parse_appenduid(response)
    if parsed:
        return CopyResult(copy.key, "appended", parsed[1][0], "appenduid")
    return CopyResult(copy.key, "appended")


def _multiappend(client, folder, batch, flags, report):
    items = []
    for copy in batch:
        item = {"msg": copy.raw, "flags": flags}
        if copy.internal_date:
            item["date"] = _as_aware(copy.internal_date)
        items.append(item)
    report.commands += 1
    try:
        typ, data = client.multiappend(folder, items)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        typ, data = "NO", [str(exc).encode()]
    if typ != "OK":
        # MULTIAPPEND is atomic (RFC 3502): nothing was stored. Append one by one
        # so that a single refused message does not hold back the others.
        return [_append_one(client, folder, copy, flags, report) for copy in batch]
    parsed = parse_appenduid(data)
    if parsed and len(parsed[1]) == len(batch):
        return [CopyResult(c.key, "appended", uid, "appenduid")
                for c, uid in zip(batch, parsed[1])]
    return [CopyResult(c.key, "appended") for c in batch]


def _verify_by_search(client, copies, appended, report):
    """Without UIDPLUS: find the UIDs of just-appended copies by Message-ID."""
    client.noop()  # let the server announce the new messages to this session
    found = find_existing(client, [c.message_id for c in copies])
    report.commands += 1
    for copy in copies:
        uid = found.get(_mid_key(copy.message_id))
        result = appended[id(copy)]
        if uid is not None:
            result.uid, result.verified_by = uid, "search"
        else:
            result.status = "failed"
            result.error = AppendError(
                "The server accepted the sent copy but it cannot be found in %r afterwards."
                % result_folder(report),
                "The server may filter or move new messages in that folder (a rule?). "
                "The copy is retried; check the folder in your mail client.",
                "append", reason="unverified")


def result_folder(report):
    return report.folder
