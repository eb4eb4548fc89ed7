"""Raw RFC 822 bytes -> plain :class:`ParsedMessage` for inbound sync (no Odoo).

Why not ``email.message_from_bytes``? Mail in real mailboxes is whatever
clients wrote years ago, and the sync must import it, not crash on it. The
stdlib parser (both policies) copies the whole message several times (bytes ->
surrogate-escaped str -> list of lines -> joined payload -> re-encoded bytes ->
lines again for base64), about 6-8x the message size at peak for a large
attachment, and the ``default`` policy's header registry has raised on odd
headers in past Python releases. So the MIME *structure* is walked here on the
raw bytes by offset (only the headers of each part are copied, part bodies are
decoded straight from a memoryview), while the stdlib ``compat32`` Message is
used only as a parameter parser for the Content-* headers of each part:
compat32 never validates, handles RFC 2231 continuations and never raises on
malformed parameters. Peak memory for a message is roughly the decoded size of
what is kept.

Conventions the caller relies on:

* Message-IDs are normalized by :func:`normalize_message_id`: angle brackets
  and all whitespace removed, the domain part (after the last ``@``)
  lowercased, the local part kept as is (it is case-sensitive and some
  servers generate mixed-case ids). :func:`format_message_id` restores the
  ``<...>`` form Odoo stores in ``mail.message.message_id``.
* A message without a usable Message-ID gets ``<sha256hex>@imap-sent-sync.invalid``
  (normalized, i.e. without brackets), derived from Date, From, To, Subject
  and the first 1024 bytes of the raw body, so a header-only FETCH plus
  ``BODY.PEEK[TEXT]<0.1024>`` yields the same id (see :func:`parse_headers`).
* No text value contains NUL characters (PostgreSQL rejects them).
* Nothing raises on malformed mail except :class:`MimeParseError` when the
  bytes are not an email at all (empty, or no header field).
"""
import binascii
import codecs
import hashlib
import html as htmllib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import Message
from email.policy import compat32
from email.utils import parsedate_tz, unquote
from html.parser import HTMLParser

from . import addresses as _addresses
from . import tnef as _tnef

__all__ = [
    "MimeParseError", "Attachment", "SkippedAttachment", "ParsedMessage",
    "parse_message", "parse_headers", "normalize_message_id", "format_message_id",
    "synthetic_message_id", "decode_header_text", "decode_text", "html_to_text",
    "text_to_html", "rtf_to_text", "rtf_to_html", "SYNTHETIC_ID_DOMAIN",
]

SYNTHETIC_ID_DOMAIN = "imap-sent-sync.invalid"
SYNTHETIC_BODY_PREFIX = 1024
CONTENT_MODES = ("full", "text", "headers")

# Bounds that keep hostile or corrupt mail from costing unbounded CPU/recursion.
MAX_DEPTH = 40
MAX_PARTS = 2000


class MimeParseError(ValueError):
    """The bytes are not an email message at all; the caller logs and skips."""


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes
    size: int
    content_id: str = None  # normalized, without <>
    inline: bool = False  # referenced from the HTML body (cid:) rather than attached


@dataclass
class SkippedAttachment:
    filename: str
    size: int  # decoded size; estimated from the encoded length when not decoded
    content_type: str = None
    reason: str = "too_large"  # "too_large" | "excluded" (include_attachments=False)


@dataclass
class ParsedMessage:
    message_id: str
    message_id_synthetic: bool = False
    in_reply_to: str = None
    references: list = field(default_factory=list)
    subject: str = ""
    date: datetime = None  # aware, UTC; None -> caller uses INTERNALDATE
    from_: list = field(default_factory=list)  # [(name, address)] as written
    to: list = field(default_factory=list)
    cc: list = field(default_factory=list)
    bcc: list = field(default_factory=list)
    reply_to: list = field(default_factory=list)
    body_html: str = None
    body_text: str = None
    attachments: list = field(default_factory=list)
    skipped_attachments: list = field(default_factory=list)
    headers: list = field(default_factory=list)  # [(name, decoded value)] in order
    size: int = 0
    defects: list = field(default_factory=list)
    content: str = "full"

    def header(self, name, default=None):
        """First value of header ``name`` (case-insensitive), decoded."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    @property
    def thread_ids(self):
        """References then In-Reply-To, de-duplicated: the ids to thread on."""
        ids = list(self.references)
        if self.in_reply_to and self.in_reply_to not in ids:
            ids.append(self.in_reply_to)
        return ids


# ---------------------------------------------------------------- charsets

# Labels that promise nothing; decoding then goes straight to the fallbacks.
_NO_CHARSET = {"", "x-unknown", "unknown", "unknown-8bit", "x-user-defined", "default",
               "charset", "none", "8bit", "binary", "us-ascii?", "_autodetect_all"}
# Mislabels seen in real mail, mapped to the superset encoders actually used.
_CHARSET_FIX = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
    "iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6",
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949",
    "tis-620": "cp874", "iso-8859-11": "cp874", "windows-874": "cp874",
    "shift_jis": "cp932", "shift-jis": "cp932", "x-sjis": "cp932", "sjis": "cp932",
    "big5": "big5hkscs", "x-mac-roman": "mac-roman", "macintosh": "mac-roman",
    "unicode-1-1-utf-7": "utf-7", "utf8": "utf-8", "x-utf-8": "utf-8",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "iso8859-1": "cp1252",
}
# Codecs that are not charsets (or are dangerous/slow on large input).
_REFUSED_CODECS = {"punycode", "idna", "undefined", "unicode-escape", "raw-unicode-escape",
                   "mbcs", "oem", "charmap"}
# Single-byte charsets under which valid non-ASCII UTF-8 is almost certainly a mislabel.
_LATIN_FAMILY = {"ascii", "cp1252", "iso8859-1", "iso8859-15", "iso8859-2", "cp1250",
                 "iso8859-9", "cp1254", "mac-roman"}
_ASCII_INCOMPATIBLE = {"utf-7", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                       "utf-32-be", "hz", "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2",
                       "iso2022_jp_2004", "iso2022_jp_3", "iso2022_jp_ext", "iso2022_kr"}


def _lookup_charset(label):
    """Codec name for a charset label, or None if it names nothing usable."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "replace")
    label = str(label).strip().strip("\"'").strip().lower()
    if label in _NO_CHARSET:
        return None
    label = _CHARSET_FIX.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError, TypeError):
        return None
    if info.name in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_text(data, charset=None, notes=None, where="text"):
    """Decode ``data`` robustly; never raises.

    Order: BOM; declared charset (unless it is a Latin-family label on bytes
    that are valid UTF-8: a mislabel, UTF-8 wins); UTF-8; the declared charset
    with replacement if that loses almost nothing; cp1252; latin-1. ``notes``
    (a list) receives a short description of any repair.
    """
    if not data:
        return ""
    data = bytes(data)
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace")
    codec = _lookup_charset(charset)
    declared = str(charset).strip().strip("\"'") if charset else None
    if declared and codec is None and notes is not None:
        notes.append("%s: unknown charset %r" % (where, declared[:40]))
    ascii_only = data.isascii()
    if ascii_only and (codec is None or codec not in _ASCII_INCOMPATIBLE):
        return data.decode("ascii")
    if codec:
        if codec in _LATIN_FAMILY and not ascii_only:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                if notes is not None:
                    notes.append("%s: declared %s but content is UTF-8" % (where, declared[:40]))
                return text
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if codec and notes is not None:
            notes.append("%s: declared %s but content is UTF-8" % (where, declared[:40]))
        return text
    for candidate in ([codec] if codec else []) + ["utf-8"]:
        text = data.decode(candidate, "replace")
        if text.count("\ufffd") * 1000 <= len(text):
            if notes is not None:
                notes.append("%s: invalid %s bytes replaced" % (where, candidate))
            return text
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if notes is not None:
        notes.append("%s: decoded as cp1252/latin-1" % where)
    return text


def _decode_header_bytes(value):
    """Header bytes -> str. Raw 8-bit is UTF-8 (RFC 6532) or else legacy
    Windows/ISO Latin: cp1252 is tried before latin-1 because its 0x80-0x9F
    range holds the curly quotes and euro sign such mail really contains."""
    if value.isascii():
        return value.decode("ascii"), None
    try:
        return value.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    try:
        return value.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return value.decode("latin-1"), "latin-1"


# ---------------------------------------------------------------- headers

_HEADER_LINE_RE = re.compile(rb"([!-9;-~]+)[ \t]*:")
_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?(.*?)\?=", re.S)
_QP_ESCAPE_RE = re.compile(rb"=([0-9A-Fa-f]{2})")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_B64_JUNK_RE = re.compile(rb"[^A-Za-z0-9+/]")


def _b64_tolerant(data):
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        pass
    cleaned = _B64_JUNK_RE.sub(b"", bytes(data))
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return binascii.a2b_base64(cleaned)
    except (binascii.Error, ValueError):
        return b""


def _decode_word(encoding, text):
    raw = text.encode("utf-8", "replace")
    if encoding in "bB":
        return _b64_tolerant(raw)
    raw = raw.replace(b"_", b" ")
    return _QP_ESCAPE_RE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def decode_header_text(value):
    """Decode RFC 2047 encoded words in an (unfolded) header value; tolerant.

    Adjacent words in the same charset are joined *before* charset decoding,
    because broken encoders split multi-byte characters across words.
    Encoded words glued to text (forbidden by the RFC, common in practice)
    are decoded too. Control characters become spaces.
    """
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = _decode_header_bytes(bytes(value))[0]
    value = str(value)
    if value.isprintable() and "=?" not in value:
        return value  # nearly every header: nothing to decode or clean
    if "=?" in value:
        out = []
        pending = None  # [charset, bytearray]
        pos = 0

        def flush():
            if pending is not None:
                out.append(decode_text(bytes(pending[1]), pending[0]))

        for match in _ENCODED_WORD_RE.finditer(value):
            between = value[pos:match.start()]
            if pending is None or between.strip():
                flush()
                pending = None
                out.append(between)
            charset = match.group(1).split("*", 1)[0]
            data = _decode_word(match.group(2), match.group(3))
            if pending is not None and pending[0].lower() == charset.lower():
                pending[1] += data
            else:
                flush()
                pending = [charset, bytearray(data)]
            pos = match.end()
        flush()
        out.append(value[pos:])
        value = "".join(out)
    value = value.replace("\x00", "").replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return _CONTROL_RE.sub(" ", value)


def _parse_header_block(raw, start, end, defects, where):
    """Parse header lines of the entity starting at ``start``.

    Returns ([(name, value_bytes)], body_start). Like the stdlib feedparser, a
    line that is neither a field nor a continuation ends the headers (missing
    blank line): losing the body would be worse than losing a junk line.
    """
    headers = []
    pos = start
    first = True
    while pos < end:
        nl = raw.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl
        next_pos = end if nl < 0 else nl + 1
        line = raw[pos:line_end]
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            return _joined(headers), next_pos
        if line[:1] in (b" ", b"\t"):
            if headers:
                headers[-1][1].append(line)
            elif first:
                defects.append("%s: headers start with a continuation line" % where)
        else:
            match = _HEADER_LINE_RE.match(line)
            if match:
                headers.append([match.group(1).decode("ascii"), [line[match.end():]]])
            elif first and line.startswith(b"From "):
                defects.append("%s: mbox 'From ' line skipped" % where)
            else:
                defects.append("%s: missing blank line after headers" % where)
                return _joined(headers), pos
        first = False
        pos = next_pos
    return _joined(headers), end


def _joined(headers):
    return [(name, b"".join(pieces)) for name, pieces in headers]


def _decoded_headers(raw_headers, defects, where):
    decoded = []
    for name, value in raw_headers:
        text, fallback = _decode_header_bytes(bytes(value).strip())
        if fallback:
            defects.append("%s: 8-bit header %s decoded as %s" % (where, name, fallback))
        decoded.append((name, text))
    return decoded


# ---------------------------------------------------------------- message ids

_MSGID_TOKEN_RE = re.compile(r"<([^<>]*)>")


def normalize_message_id(value):
    """Normalize one Message-ID (see module docstring); None if empty."""
    if value is None:
        return None
    value = str(value).replace("\x00", "")
    tokens = [t for t in _MSGID_TOKEN_RE.findall(value) if t.strip()]
    if tokens:
        ident = re.sub(r"\s+", "", tokens[0])
    else:
        parts = value.split()
        ident = parts[0].strip("<>") if parts else ""
    ident = _CONTROL_RE.sub("", ident).strip("<>")
    if not ident:
        return None
    local, at, domain = ident.rpartition("@")
    if at and local:
        ident = "%s@%s" % (local, domain.lower())
    return ident


def format_message_id(message_id):
    """``<id>`` form, as stored in mail.message.message_id."""
    return "<%s>" % message_id if message_id else message_id


def _message_id_list(values):
    ids = []
    for value in values:
        tokens = [t for t in _MSGID_TOKEN_RE.findall(value) if t.strip()]
        if not tokens:
            tokens = [t for t in re.split(r"[\s,]+", value) if t]
        for token in tokens:
            ident = normalize_message_id("<%s>" % token)
            if ident and ident not in ids:
                ids.append(ident)
    return ids


def _canonical_header(raw_headers, name):
    lname = name.lower()
    for key, value in raw_headers:
        if key.lower() == lname:
            return re.sub(rb"\s+", b" ", bytes(value)).strip()
    return b""


def synthetic_message_id(raw_headers, body_prefix):
    """Stable id for mail without Message-ID.

    ``raw_headers``: [(name, raw value bytes)]; ``body_prefix``: the first
    bytes of the raw body (only the first 1024 are used, line endings
    normalized so a CRLF and an LF copy agree).
    """
    digest = hashlib.sha256(b"imap-sent-sync/synthetic-id/v1")
    for name in ("Date", "From", "To", "Subject"):
        part = _canonical_header(raw_headers, name)
        digest.update(b"%d:" % len(part) + part)
    prefix = bytes(body_prefix[:SYNTHETIC_BODY_PREFIX]).replace(b"\r\n", b"\n").rstrip(b"\r")
    digest.update(b"%d:" % len(prefix) + prefix)
    return "%s@%s" % (digest.hexdigest(), SYNTHETIC_ID_DOMAIN)


# ---------------------------------------------------------------- dates

def _parse_date(value):
    if not value:
        return None
    value = value.strip()
    try:
        parts = parsedate_tz(value)
    except Exception:  # parsedate_tz has raised on odd input in some releases
        parts = None
    if parts:
        try:
            year, month, day, hour, minute, second = parts[:6]
            dt = datetime(year, month, day, hour, minute, min(second, 59))
            offset = parts[9] or 0
            try:
                tz = timezone(timedelta(seconds=offset))
            except (ValueError, OverflowError):
                tz = timezone.utc
            return dt.replace(tzinfo=tz).astimezone(timezone.utc)
        except (ValueError, OverflowError, TypeError):
            pass
    try:  # some scripts write ISO 8601 dates
        dt = datetime.fromisoformat(value)
    except (ValueError, TypeError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


# ---------------------------------------------------------------- html / text

class _HtmlText(HTMLParser):
    _SKIP = {"script", "style", "head", "title", "template"}
    _BLOCK = {"p", "div", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
              "blockquote", "pre", "section", "article", "header", "footer", "hr", "dl",
              "dt", "dd", "address", "center"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self.skip += 1
        elif tag == "body":
            self.skip = 0  # an unclosed <head> must not swallow the body
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append("\t")
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def _tidy_text(text):
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[ \t\xa0]+\n", "\n", text)
    text = re.sub(r"\n[ ]+", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def html_to_text(html):
    """Readable plain text from HTML (for content="text")."""
    if not html:
        return ""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # HTMLParser is lenient, but be certain
        text = htmllib.unescape(re.sub(r"<[^>]*>", " ", html))
    return _tidy_text(text)


def text_to_html(text):
    """Minimal HTML for a plain-text piece placed next to HTML pieces."""
    return "<div>%s</div>" % htmllib.escape(text or "").replace("\n", "<br>\n")


def _unflow(text, delsp):
    """RFC 3676 format=flowed: rejoin soft-broken lines."""
    out = []
    current = None
    current_depth = None
    for line in text.split("\n"):
        line = line.rstrip("\r")
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        if current is not None and depth == current_depth:
            current += content
        else:
            if current is not None:
                out.append(">" * current_depth + (" " if current_depth else "") + current)
            current, current_depth = content, depth
        if content.endswith(" ") and content != "-- ":
            if delsp:
                current = current[:-1]
            continue
        out.append(">" * current_depth + (" " if current_depth else "") + current)
        current = None
    if current is not None:
        out.append(">" * current_depth + (" " if current_depth else "") + current)
    return "\n".join(out)


# ---------------------------------------------------------------- RTF

_RTF_TOKEN_RE = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?"  # 1,2: control word + parameter
    rb"|\\'([0-9a-fA-F]{2})"  # 3: hex byte
    rb"|\\([^a-zA-Z'])"  # 4: control symbol
    rb"|([{}])"  # 5: group
    rb"|([\r\n]+)"  # 6: ignorable line breaks
    rb"|([^\\{}\r\n]+)"  # 7: text
    rb"|(\\)",  # 8: stray backslash at end of data
    re.S,
)
_RTF_DESTINATIONS = {
    b"fonttbl", b"colortbl", b"stylesheet", b"info", b"pict", b"object", b"header",
    b"headerl", b"headerr", b"headerf", b"footer", b"footerl", b"footerr", b"footerf",
    b"themedata", b"colorschememapping", b"datastore", b"latentstyles", b"xmlnstbl",
    b"listtable", b"listoverridetable", b"rsidtbl", b"generator", b"filetbl", b"revtbl",
    b"pgdsctbl", b"mmathPr", b"fldinst", b"nonshppict", b"bkmkstart", b"bkmkend",
    b"xe", b"tc", b"txe", b"private", b"userprops", b"docvar", b"wgrffmtfilter",
    b"author", b"operator", b"title", b"subject", b"comment", b"doccomm", b"keywords",
    b"company", b"falt", b"panose", b"listtext", b"pntext", b"pntxta", b"pntxtb",
}
_RTF_SYMBOLS = {
    b"par": "\n", b"line": "\n", b"sect": "\n\n", b"page": "\n\n", b"tab": "\t",
    b"cell": "\t", b"row": "\n", b"emdash": "\u2014", b"endash": "\u2013",
    b"bullet": "\u2022", b"lquote": "\u2018", b"rquote": "\u2019",
    b"ldblquote": "\u201c", b"rdblquote": "\u201d", b"emspace": " ", b"enspace": " ",
    b"qmspace": " ", b"zwj": "", b"zwnj": "",
}


def _rtf_convert(data):
    """Returns (kind, text): kind "html" for HTML encapsulated by Outlook
    (\\fromhtml1, MS-OXRTFEX), else "text"."""
    if isinstance(data, str):
        data = data.encode("latin-1", "replace")
    data = bytes(data or b"")
    fromhtml = b"\\fromhtml1" in data[:2048]
    out = []
    pending = bytearray()
    codepage = "cp1252"
    # group state: skip destination, \ucN, in \*\htmltag, \htmlrtf suppression
    state = {"skip": False, "uc": 1, "tag": False, "suppress": False}
    stack = []
    star = False
    skip_ansi = 0
    pos = 0
    length = len(data)

    def emit(text):
        if state["skip"]:
            return
        if fromhtml and not state["tag"]:
            if state["suppress"]:
                return
            text = htmllib.escape(text, quote=False)
        out.append(text)

    def flush():
        if pending:
            emit(decode_text(bytes(pending), codepage))
            pending.clear()

    while pos < length:
        match = _RTF_TOKEN_RE.match(data, pos)
        if match is None:  # cannot happen with the catch-all alternatives; be safe
            pos += 1
            continue
        pos = match.end()
        word, param, hexbyte, symbol, group, _nl, text, _stray = match.groups()
        if text is not None:
            star = False
            if skip_ansi:
                drop = min(skip_ansi, len(text))
                skip_ansi -= drop
                text = text[drop:]
            pending.extend(text)
            continue
        if hexbyte is not None:
            if skip_ansi:
                skip_ansi -= 1
            else:
                pending.append(int(hexbyte, 16))
            continue
        if _nl is not None or _stray is not None:
            continue
        flush()
        if group is not None:
            star = False
            if group == b"{":
                stack.append(dict(state))
            elif stack:
                state = stack.pop()
            continue
        if symbol is not None:
            if symbol == b"*":
                star = True
                continue
            star = False
            if skip_ansi:
                skip_ansi -= 1
                continue
            if symbol in (b"\\", b"{", b"}"):
                emit(symbol.decode("ascii"))
            elif symbol == b"~":
                emit("\xa0")
            elif symbol == b"_":
                emit("-")
            elif symbol in (b"\n", b"\r"):
                emit("\n")
            continue
        # control word
        if star:
            star = False
            if fromhtml and word == b"htmltag":
                state["tag"] = True
                state["suppress"] = False
            else:
                state["skip"] = True
            continue
        if word in _RTF_DESTINATIONS:
            state["skip"] = True
        elif word == b"bin":
            pos += max(0, int(param or 0))
        elif word == b"ansicpg" and param:
            codepage = "cp%d" % abs(int(param))
            if _lookup_charset(codepage) is None:
                codepage = "cp1252"
        elif word == b"uc":
            state["uc"] = max(0, int(param or 1))
        elif word == b"u" and param is not None:
            code = int(param)
            if code < 0:
                code += 65536
            try:
                emit(chr(code))
            except (ValueError, OverflowError):
                pass
            skip_ansi = state["uc"]
        elif word == b"htmlrtf":
            state["suppress"] = param != b"0"
        elif word in _RTF_SYMBOLS:
            if not (fromhtml and state["tag"] and word == b"par"):
                emit(_RTF_SYMBOLS[word])
            else:
                out.append("\n")
    flush()
    result = "".join(out).replace("\x00", "")
    if fromhtml:
        return "html", result.strip()
    return "text", _tidy_text(result)


def rtf_to_text(data):
    """Plain text of an RTF document (HTML-encapsulating RTF is flattened)."""
    kind, text = _rtf_convert(data)
    return html_to_text(text) if kind == "html" else text


def rtf_to_html(data):
    """The HTML encapsulated in Outlook RTF (\\fromhtml1), else None."""
    kind, text = _rtf_convert(data)
    return text if kind == "html" else None


# ---------------------------------------------------------------- structure

class _Node:
    __slots__ = ("path", "headers", "ctype", "msg", "start", "end", "children",
                 "cte", "disposition", "filename", "content_id")


def _collapse_param(value):
    if isinstance(value, tuple) and len(value) == 3:
        charset, _lang, text = value
        raw = text.encode("raw-unicode-escape") if isinstance(text, str) else bytes(text)
        return decode_text(raw, charset or "utf-8")
    return value


def _param(msg, name, header):
    try:
        value = msg.get_param(name, None, header=header)
    except Exception:
        return None
    if value is None:
        return None
    try:
        return unquote(str(_collapse_param(value)))
    except Exception:
        return None


def _content_id(value):
    # Unlike Message-IDs, case is kept: it must match cid: references verbatim.
    if not value:
        return None
    value = re.sub(r"\s+", "", str(value)).replace("\x00", "")
    tokens = _MSGID_TOKEN_RE.findall(value)
    value = (tokens[0] if tokens else value).strip("<>")
    return value or None


def _clean_filename(name):
    if not name:
        return None
    name = decode_header_text(name) if "=?" in name else _CONTROL_RE.sub("", name.replace("\x00", ""))
    name = re.split(r"[\\/]", name)[-1].strip().strip("\"'").strip()
    return name if name.strip(".") else None


def _make_node(raw, start, end, path, default_type, defects):
    node = _Node()
    node.path = path
    raw_headers, body_start = _parse_header_block(raw, start, end, defects, "part %s" % path)
    node.headers = _decoded_headers(raw_headers, defects, "part %s" % path)
    node.start, node.end = body_start, end
    node.children = None
    msg = Message(policy=compat32)
    msg.set_default_type(default_type)
    for name, value in node.headers:
        if name.lower().startswith("content-"):
            msg.set_raw(name, value)
    node.msg = msg
    try:
        node.ctype = msg.get_content_type()
    except Exception:
        node.ctype = default_type
    cte = (msg.get("content-transfer-encoding") or "").strip().strip("\"'").strip().lower()
    node.cte = cte.split()[0].rstrip(";") if cte else ""
    try:
        node.disposition = msg.get_content_disposition()
    except Exception:
        node.disposition = None
    filename = _param(msg, "filename", "content-disposition") or _param(msg, "name", "content-type")
    node.filename = _clean_filename(filename)
    node.content_id = _content_id(msg.get("content-id"))
    return node, raw_headers


def _split_multipart(raw, start, end, boundary, defects, where):
    """Offsets of the body parts between ``--boundary`` lines; None if the
    boundary never occurs. Tolerates a missing close delimiter."""
    delim = b"--" + boundary
    parts = []
    pos = start
    cur = None
    closed = False
    while True:
        idx = raw.find(delim, pos, end)
        if idx < 0:
            break
        if idx != start and raw[idx - 1:idx] != b"\n":
            pos = idx + 1
            continue
        after = idx + len(delim)
        is_close = raw[after:after + 2] == b"--"
        rest_start = after + 2 if is_close else after
        nl = raw.find(b"\n", rest_start, min(end, rest_start + 256))
        rest_end = nl if nl >= 0 else min(end, rest_start + 256)
        if raw[rest_start:rest_end].strip(b" \t\r"):
            pos = after  # a longer boundary sharing this prefix, or text
            continue
        if nl < 0:
            nl = raw.find(b"\n", rest_end, end)
        if cur is not None:
            part_end = idx - 1 if idx > start else idx
            if part_end > cur and raw[part_end - 1:part_end] == b"\r":
                part_end -= 1
            parts.append((cur, max(cur, part_end)))
        if is_close:
            closed = True
            break
        cur = (nl + 1) if nl >= 0 else end
        pos = cur
    if cur is None and not closed:
        return None
    if not closed:
        parts.append((cur, end))
        defects.append("%s: multipart without closing boundary" % where)
    return parts


_GUESS_BOUNDARY_RE = re.compile(rb"(?m)^--([^\s]{1,200}?)(--)?[ \t]*\r?$")


def _build(raw, start, end, path, default_type, depth, defects, counter, node=None):
    if node is None:
        node, _ = _make_node(raw, start, end, path, default_type, defects)
    counter[0] += 1
    where = "part %s" % path
    if not node.ctype.startswith("multipart/"):
        return node
    if depth >= MAX_DEPTH or counter[0] > MAX_PARTS:
        defects.append("%s: nesting/part limit reached, kept as a file" % where)
        node.ctype = "application/octet-stream"
        return node
    boundary = None
    try:
        boundary = node.msg.get_boundary()
    except Exception:
        pass
    if boundary:
        boundary = boundary.encode("utf-8", "replace")
    else:
        match = _GUESS_BOUNDARY_RE.search(raw, node.start, min(end, node.start + 65536))
        if match is None:
            defects.append("%s: multipart without boundary, read as text" % where)
            node.ctype = "text/plain"
            return node
        boundary = match.group(1)
        defects.append("%s: multipart boundary missing, guessed" % where)
    spans = _split_multipart(raw, node.start, node.end, boundary, defects, where)
    if spans is None:
        defects.append("%s: multipart boundary not found, read as text" % where)
        node.ctype = "text/plain"
        return node
    child_default = "message/rfc822" if node.ctype == "multipart/digest" else "text/plain"
    node.children = []
    for index, (s, e) in enumerate(spans, start=1):
        if counter[0] > MAX_PARTS:
            defects.append("%s: too many parts, rest ignored" % where)
            break
        child_path = "%d" % index if path == "0" else "%s.%d" % (path, index)
        node.children.append(_build(raw, s, e, child_path, child_default, depth + 1, defects, counter))
    return node


# ---------------------------------------------------------------- payloads

def _payload(raw, node, defects):
    """Transfer-decoded bytes of a leaf, straight from the raw buffer."""
    view = memoryview(raw)[node.start:node.end]
    try:
        if node.cte == "base64":
            try:
                return binascii.a2b_base64(view)
            except (binascii.Error, ValueError):
                defects.append("part %s: bad base64 repaired" % node.path)
                return _b64_tolerant(view)
        if node.cte == "quoted-printable":
            return binascii.a2b_qp(view)
        if node.cte in ("x-uuencode", "uuencode", "x-uue"):
            return _uudecode(bytes(view))
        if node.cte not in ("", "7bit", "8bit", "binary"):
            defects.append("part %s: unknown transfer encoding %r" % (node.path, node.cte[:30]))
        return bytes(view)
    finally:
        view.release()


def _uudecode(data):
    out = bytearray()
    for line in data.splitlines():
        if line.startswith((b"begin ", b"end")) or not line.strip():
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            try:  # some encoders miscount the last line
                nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
                out += binascii.a2b_uu(line[:nbytes])
            except (binascii.Error, IndexError):
                continue
    return bytes(out)


def _estimated_size(raw, node):
    length = node.end - node.start
    if node.cte == "base64":
        ws = sum(raw.count(c, node.start, node.end) for c in (b"\n", b"\r", b" ", b"\t"))
        pad = raw.count(b"=", max(node.start, node.end - 8), node.end)
        return max(0, (length - ws) * 3 // 4 - pad)
    return length


# ---------------------------------------------------------------- walking

# src="data:image/png;base64,...": the only data URLs worth keeping (Odoo's
# sanitizer drops the others). Quoted values only, as mail clients write them.
_DATA_IMAGE_SRC_RE = re.compile(
    r"""src\s*=\s*(["'])\s*data:(image/[a-z0-9.+-]+)\s*;\s*base64\s*,([a-z0-9+/=\s]*)\1""", re.I)
_HTML_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_BODY_TYPES = {"text/plain", "text/html", "text/rtf", "application/rtf", "text/enriched"}
_TNEF_TYPES = {"application/ms-tnef", "application/vnd.ms-tnef"}


class _Walker:
    def __init__(self, raw, content, include_attachments, max_bytes, defects):
        self.raw = raw
        self.prefer_text = content == "text"
        self.include = include_attachments
        self.max = max_bytes
        self.defects = defects
        self.pieces = []  # [("html"|"text", str)] in document order
        self.rtf = []  # RTF bodies, used only when nothing better exists
        self.tnef = []  # TnefContent with a body, same
        self.attachments = []
        self.skipped = []

    def _is_body_candidate(self, node):
        return (node.children is None and node.ctype in _BODY_TYPES and not node.filename
                and node.disposition != "attachment")

    def _score(self, node):
        """How good an alternative is: a rendering we can show beats one we cannot."""
        if node.children is not None:
            return max((self._score(c) for c in node.children), default=0)
        if not self._is_body_candidate(node):
            return 0
        if node.ctype == "text/html":
            return 2 if self.prefer_text else 3
        if node.ctype in ("text/plain", "text/enriched"):
            return 3 if self.prefer_text else 2
        return 1

    def walk(self, node, body_allowed=True):
        if node.children is not None:
            if node.ctype == "multipart/alternative" and node.children:
                scores = [self._score(c) for c in node.children]
                best_score = max(scores)
                # RFC 2046: the last alternative is the richest among equals.
                best = max(i for i, s in enumerate(scores) if s == best_score) if best_score else None
                for index, child in enumerate(node.children):
                    self.walk(child, body_allowed and index == best)
            else:
                for child in node.children:
                    self.walk(child, body_allowed)
            return
        self.leaf(node, body_allowed)

    def leaf(self, node, body_allowed):
        ctype = node.ctype
        if ctype in _TNEF_TYPES or (node.filename or "").lower() == "winmail.dat":
            self.tnef_part(node)
            return
        if self._is_body_candidate(node):
            if body_allowed:
                self.body_part(node)
            return  # a rendering of another alternative, not a file
        self.attachment_part(node)

    def body_part(self, node):
        data = _payload(self.raw, node, self.defects)
        if node.ctype in ("text/rtf", "application/rtf"):
            self.rtf.append(data)
            return
        charset = _param(node.msg, "charset", "content-type")
        if not charset and node.ctype == "text/html":
            match = _HTML_META_CHARSET_RE.search(data, 0, 4096)
            if match:
                charset = match.group(1).decode("ascii")
        text = decode_text(data, charset, self.defects, "part %s" % node.path)
        text = text.replace("\x00", "")
        if node.ctype == "text/html":
            self.pieces.append(("html", text))
            return
        if node.ctype == "text/enriched":
            text = re.sub(r"<[^<>]*>", "", text).replace("<<", "<")
        fmt = (_param(node.msg, "format", "content-type") or "").lower()
        if fmt == "flowed":
            delsp = (_param(node.msg, "delsp", "content-type") or "").lower() == "yes"
            text = _unflow(text.replace("\r\n", "\n"), delsp)
        self.pieces.append(("text", text.replace("\r\n", "\n")))

    def _name_for(self, node):
        if node.filename:
            return node.filename
        if node.ctype == "message/rfc822":
            subject = self._inner_subject(node)
            return _clean_filename((subject or "message")[:120] + ".eml") or "message.eml"
        if node.ctype == "text/calendar":
            return "invite.ics"  # what mail clients call it; the path suffix would only confuse
        ext = mimetypes.guess_extension(node.ctype) or ".bin"
        prefix = "image" if node.ctype.startswith("image/") else "attachment"
        return "%s-%s%s" % (prefix, node.path.replace(".", "-"), ext)

    def _inner_subject(self, node):
        scratch = []
        headers, _ = _parse_header_block(self.raw, node.start, min(node.end, node.start + 65536),
                                         scratch, "inner")
        for name, value in headers:
            if name.lower() == "subject":
                return decode_header_text(_decode_header_bytes(bytes(value).strip())[0]).strip()
        return None

    def _inline(self, node):
        if node.disposition == "attachment":
            return False
        return bool(node.content_id) or (node.disposition == "inline" and node.ctype.startswith("image/"))

    def _skip(self, filename, size, ctype, reason):
        self.skipped.append(SkippedAttachment(filename=filename, size=size,
                                              content_type=ctype, reason=reason))

    def _too_large(self, size):
        return self.max is not None and size > self.max

    def attachment_part(self, node):
        name = self._name_for(node)
        if not self.include:
            self._skip(name, _estimated_size(self.raw, node), node.ctype, "excluded")
            return
        # The estimate is exact up to padding for clean base64, so decoding
        # is avoided only when the part is certainly over the limit. Counting
        # the whitespace of a big part costs as much as decoding it, so it is
        # done only when the encoded length alone does not settle it.
        if self._too_large((node.end - node.start) * 3 // 4 - 3):
            estimate = _estimated_size(self.raw, node)
            if self._too_large(estimate - 3):
                self._skip(name, estimate, node.ctype, "too_large")
                return
        data = _payload(self.raw, node, self.defects)
        if self._too_large(len(data)):
            self._skip(name, len(data), node.ctype, "too_large")
            return
        self.attachments.append(Attachment(
            filename=name, content_type=node.ctype, data=data, size=len(data),
            content_id=node.content_id, inline=self._inline(node)))

    def tnef_part(self, node):
        # Always unpacked, whatever the size limit: the container is not what
        # the user sees, its files (limited one by one below) and body are.
        name = node.filename or "winmail.dat"
        data = _payload(self.raw, node, self.defects)
        content = _tnef.extract(data)
        if content is None:
            self.defects.append("part %s: unreadable TNEF kept as a file" % node.path)
            if not self.include:
                self._skip(name, len(data), node.ctype, "excluded")
            elif self._too_large(len(data)):
                self._skip(name, len(data), node.ctype, "too_large")
            else:
                self.attachments.append(Attachment(
                    filename=name, content_type=node.ctype, data=data, size=len(data)))
            return
        del data
        self.defects.extend("part %s: %s" % (node.path, d) for d in content.defects)
        for item in content.attachments:
            filename = _clean_filename(item.filename) or "attachment.bin"
            ctype = item.content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
            if not self.include:
                self._skip(filename, len(item.data), ctype, "excluded")
            elif self._too_large(len(item.data)):
                self._skip(filename, len(item.data), ctype, "too_large")
            else:
                self.attachments.append(Attachment(
                    filename=filename, content_type=ctype, data=item.data, size=len(item.data),
                    content_id=item.content_id, inline=bool(item.content_id)))
        if content.body_html or content.body_text or content.body_rtf:
            self.tnef.append(content)

    def data_images(self, html):
        """Move the images written into the HTML as ``data:`` URLs to
        attachments, referenced by ``cid:`` like inline parts.

        Odoo's mail gateway does the same when it posts a body (mail.message
        turns such images into attachments): kept in the body they would sit
        in the database and in every chatter read. The attachment rules
        apply: with attachments off or over the size limit the image is left
        out of the body and listed as skipped.
        """
        count = [0]

        def repl(match):
            quote, ctype = match.group(1), match.group(2).lower()
            data = _b64_tolerant(match.group(3).encode("ascii"))
            count[0] += 1
            name = "image%d.%s" % (count[0], ctype.split("/", 1)[1].split("+", 1)[0])
            if not self.include or self._too_large(len(data)):
                self._skip(name, len(data), ctype, "excluded" if not self.include else "too_large")
                return "src=%s%s" % (quote, quote)
            content_id = "mailsync-data-image-%d" % count[0]
            self.attachments.append(Attachment(
                filename=name, content_type=ctype, data=data, size=len(data),
                content_id=content_id, inline=True))
            return "src=%scid:%s%s" % (quote, content_id, quote)

        return _DATA_IMAGE_SRC_RE.sub(repl, html)

    def bodies(self):
        """(html, text) from the collected pieces, with TNEF/RTF fallbacks."""
        pieces = [(k, t) for k, t in self.pieces if t.strip()]
        if not pieces:
            pieces = self._fallback_pieces()
        if not pieces:
            return None, None
        if self.prefer_text:
            texts = [t if k == "text" else html_to_text(t) for k, t in pieces]
            return None, "\n\n".join(texts)
        html = None
        if any(k == "html" for k, _ in pieces):
            html = "\n".join(t if k == "html" else text_to_html(t) for k, t in pieces)
        texts = [t for k, t in pieces if k == "text"]
        return html, ("\n\n".join(texts) if texts else None)

    def _fallback_pieces(self):
        for content in self.tnef:
            if content.body_html and content.body_html.strip():
                return [("html", content.body_html.replace("\x00", ""))]
            if content.body_rtf:
                kind, text = _rtf_convert(content.body_rtf)
                if text.strip():
                    return [(kind, text)]
            if content.body_text and content.body_text.strip():
                return [("text", content.body_text.replace("\x00", ""))]
        for data in self.rtf:
            kind, text = _rtf_convert(data)
            if text.strip():
                return [(kind, text)]
        return []


# ---------------------------------------------------------------- entry points

_LEADING_WS_RE = re.compile(rb"[ \t\r\n]*")


def _as_bytes(raw):
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, (bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    raise MimeParseError("not bytes: %s" % type(raw).__name__)


def _addresses_of(index, *names):
    result = []
    for name in names:
        for value in index.get(name, ()):
            result.extend(_addresses.parse_address_list(value))
    return result


def _fill_headers(msg, headers, raw_headers, body_prefix, defects):
    msg.headers = [(name, decode_header_text(value)) for name, value in headers]
    index = {}  # lowercased name -> values, in order
    for name, value in headers:
        index.setdefault(name.lower(), []).append(value)

    def first(name):
        values = index.get(name)
        return values[0] if values else None

    mid = first("message-id")
    msg.message_id = normalize_message_id(mid)
    if not msg.message_id:
        msg.message_id = synthetic_message_id(raw_headers, body_prefix)
        msg.message_id_synthetic = True
        defects.append("missing Message-ID, synthetic id used" if mid is None
                       else "unusable Message-ID, synthetic id used")
    in_reply_to = _message_id_list(index.get("in-reply-to", ()))
    msg.in_reply_to = in_reply_to[0] if in_reply_to else None
    msg.references = _message_id_list(index.get("references", ()))
    msg.subject = decode_header_text(first("subject") or "").strip()
    date_value = first("date")
    msg.date = _parse_date(date_value)
    if msg.date is None:
        defects.append("missing Date" if date_value is None else "unparseable Date")
    msg.from_ = _addresses_of(index, "from")
    if not msg.from_:
        msg.from_ = _addresses_of(index, "sender")
        defects.append("missing From" + (", Sender used" if msg.from_ else ""))
    msg.to = _addresses_of(index, "to")
    msg.cc = _addresses_of(index, "cc")
    msg.bcc = _addresses_of(index, "bcc")
    msg.reply_to = _addresses_of(index, "reply-to")


def parse_message(raw, *, content="full", include_attachments=True, max_attachment_bytes=None):
    """Parse raw RFC 822 bytes (as from ``BODY.PEEK[]``) into a ParsedMessage.

    content: "full" (HTML preferred, ``body_text`` holds plain parts when
    present), "text" (``body_html`` None; HTML-only mail converted to text) or
    "headers" (no body, no attachments). Attachments are left out when
    ``include_attachments`` is false or they exceed ``max_attachment_bytes``
    and are then listed in ``skipped_attachments``.
    """
    if content not in CONTENT_MODES:
        raise ValueError("content must be one of %s" % (CONTENT_MODES,))
    raw = _as_bytes(raw)
    start = _LEADING_WS_RE.match(raw).end()
    if start >= len(raw):
        raise MimeParseError("empty message")
    defects = []
    if start:
        defects.append("leading blank lines skipped")
    node, raw_headers = _make_node(raw, start, len(raw), "0", "text/plain", defects)
    if not raw_headers:
        raise MimeParseError("no header fields: not an email message")
    msg = ParsedMessage(message_id="", size=len(raw), content=content, defects=defects)
    _fill_headers(msg, node.headers, raw_headers,
                  raw[node.start:node.start + SYNTHETIC_BODY_PREFIX], defects)
    if content == "headers":
        return msg
    node = _build(raw, start, len(raw), "0", "text/plain", 0, defects, [0], node=node)
    walker = _Walker(raw, content, include_attachments, max_attachment_bytes, defects)
    walker.walk(node)
    msg.body_html, msg.body_text = walker.bodies()
    if msg.body_html and "data:" in msg.body_html:
        msg.body_html = walker.data_images(msg.body_html)
    msg.attachments = walker.attachments
    msg.skipped_attachments = walker.skipped
    return msg


def parse_headers(raw_header_bytes, *, body_prefix=b""):
    """Parse a header-only FETCH (``BODY.PEEK[HEADER]``).

    Pass ``body_prefix`` = ``BODY.PEEK[TEXT]<0.1024>`` to get the same
    synthetic Message-ID as a full parse of that message would.
    """
    raw = _as_bytes(raw_header_bytes)
    start = _LEADING_WS_RE.match(raw).end()
    if start >= len(raw):
        raise MimeParseError("empty header block")
    defects = []
    raw_headers, _body_start = _parse_header_block(raw, start, len(raw), defects, "part 0")
    if not raw_headers:
        raise MimeParseError("no header fields: not an email message")
    headers = _decoded_headers(raw_headers, defects, "part 0")
    msg = ParsedMessage(message_id="", size=len(raw), content="headers", defects=defects)
    _fill_headers(msg, headers, raw_headers, _as_bytes(body_prefix or b"")[:SYNTHETIC_BODY_PREFIX],
                  defects)
    return msg
