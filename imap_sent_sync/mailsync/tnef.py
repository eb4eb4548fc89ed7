"""TNEF (winmail.dat, application/ms-tnef) unpacking for inbound sync.

Outlook/Exchange wrap attachments and the rich body of some messages in a TNEF
blob; without unpacking, the contact's chatter would only show an opaque
"winmail.dat". Parsing is delegated to tnefparse; this module shields the
caller from its failure modes (it raises assorted exceptions on damaged input
and decodes names strictly) and decompresses the RTF body itself, because
tnefparse needs the optional ``compressed_rtf`` package for that.
"""
import logging
import struct
from dataclasses import dataclass, field

_logger = logging.getLogger(__name__)

__all__ = ["TnefAttachment", "TnefContent", "extract", "decompress_rtf", "is_tnef"]

TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"

# MAPI property ids (MS-OXPROPS) used below.
_PR_ATTACH_LONG_FILENAME = 0x3707
_PR_ATTACH_FILENAME = 0x3704
_PR_DISPLAY_NAME = 0x3001
_PR_ATTACH_MIME_TAG = 0x370E
_PR_ATTACH_CONTENT_ID = 0x3712


@dataclass
class TnefAttachment:
    filename: str
    data: bytes
    content_type: str = None
    content_id: str = None


@dataclass
class TnefContent:
    attachments: list = field(default_factory=list)
    body_html: str = None
    body_text: str = None
    body_rtf: bytes = None  # decompressed RTF, still to be converted by the caller
    defects: list = field(default_factory=list)


def is_tnef(data):
    return bytes(data[:4]) == TNEF_SIGNATURE


# MS-OXRTFCP 2.1.2.1: the dictionary starts pre-filled with this text.
_RTF_PREBUF = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss "
    b"\\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier"
    b"{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)
_COMPRESSED = 0x75465A4C  # "LZFu"
_UNCOMPRESSED = 0x414C454D  # "MELA"


def decompress_rtf(data):
    """Decompress PR_RTF_COMPRESSED (MS-OXRTFCP). Returns bytes; never raises
    on damaged input (returns what could be decoded)."""
    data = bytes(data)
    if len(data) < 16:
        return b""
    comp_size, raw_size, comp_type, _crc = struct.unpack_from("<IIII", data, 0)
    end = min(len(data), comp_size + 4)
    if comp_type == _UNCOMPRESSED:
        return data[16:16 + raw_size]
    if comp_type != _COMPRESSED:
        return b""
    dictionary = bytearray(4096)
    dictionary[:len(_RTF_PREBUF)] = _RTF_PREBUF
    write = len(_RTF_PREBUF)
    out = bytearray()
    pos = 16
    # raw_size bounds the output so a corrupt stream cannot balloon memory.
    limit = raw_size if raw_size else (end - 16) * 16
    while pos < end and len(out) < limit:
        control = data[pos]
        pos += 1
        for bit in range(8):
            if pos >= end:
                break
            if control & (1 << bit):
                if pos + 1 >= end:
                    pos = end
                    break
                token = (data[pos] << 8) | data[pos + 1]
                pos += 2
                offset, length = token >> 4, (token & 0x0F) + 2
                if offset == write:
                    return bytes(out[:limit])
                for i in range(length):
                    byte = dictionary[(offset + i) & 0xFFF]
                    out.append(byte)
                    dictionary[write] = byte
                    write = (write + 1) & 0xFFF
            else:
                byte = data[pos]
                pos += 1
                out.append(byte)
                dictionary[write] = byte
                write = (write + 1) & 0xFFF
    return bytes(out[:limit])


def _text(value, codepage):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
        return _text(value, codepage)
    if isinstance(value, str):
        return value.rstrip("\x00")
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).rstrip(b"\x00")
        for charset in (codepage, "utf-8", "cp1252"):
            if not charset:
                continue
            try:
                return value.decode(charset)
            except (UnicodeDecodeError, LookupError):
                continue
        return value.decode("latin-1")
    return str(value)


def _attr(attachment, prop_id):
    for attr in getattr(attachment, "mapi_attrs", ()):
        if attr.name == prop_id:
            try:
                return attr.data
            except Exception:  # tnefparse decodes lazily and may fail here
                return None
    return None


def extract(data):
    """Unpack a TNEF blob. Returns a :class:`TnefContent`, or None when
    ``data`` is not TNEF or is too damaged to yield anything."""
    if not is_tnef(data):
        return None
    try:
        from tnefparse.tnef import TNEF
    except ImportError:  # pragma: no cover - tnefparse is a declared dependency
        return None
    content = TnefContent()
    try:
        # Checksums are skipped: Outlook writes wrong ones often enough that
        # verifying them would drop real attachments.
        tnef = TNEF(bytes(data), do_checksum=False)
    except Exception as exc:  # tnefparse raises many unrelated exception types
        _logger.debug("TNEF parse failed: %s", exc)
        return None
    codepage = getattr(tnef, "codepage", None) or "cp1252"
    for index, att in enumerate(getattr(tnef, "attachments", []) or [], start=1):
        try:
            name = (_text(_attr(att, _PR_ATTACH_LONG_FILENAME), codepage)
                    or _text(getattr(att, "_name", None), codepage)
                    or _text(_attr(att, _PR_DISPLAY_NAME), codepage)
                    or "attachment-%d" % index)
            payload = att.data
            if isinstance(payload, (list, tuple)):
                payload = b"".join(bytes(p) for p in payload)
            payload = bytes(payload or b"")
            mime_tag = _text(_attr(att, _PR_ATTACH_MIME_TAG), codepage)
            content_id = _text(_attr(att, _PR_ATTACH_CONTENT_ID), codepage)
        except Exception as exc:
            content.defects.append("TNEF attachment %d unreadable (%s)" % (index, type(exc).__name__))
            continue
        content.attachments.append(TnefAttachment(
            filename=name.strip(), data=payload,
            content_type=(mime_tag or "").strip().lower() or None,
            content_id=(content_id or "").strip().strip("<>") or None,
        ))
    try:
        html = getattr(tnef, "htmlbody", None)
        if html:
            content.body_html = _text(html, codepage)
        body = getattr(tnef, "body", None)
        if body:
            content.body_text = _text(body, codepage)
        rtf = getattr(tnef, "_rtfbody", None)
        if rtf:
            if isinstance(rtf, (list, tuple)):
                rtf = b"".join(bytes(r) for r in rtf)
            content.body_rtf = decompress_rtf(rtf) or None
    except Exception as exc:
        content.defects.append("TNEF body unreadable (%s)" % type(exc).__name__)
    return content
