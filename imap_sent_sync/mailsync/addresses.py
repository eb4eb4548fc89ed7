"""Email address normalization for inbound sync (no Odoo import).

Matching mail to contacts is the privacy gate of the product: only mail whose
participants are known contacts enters Odoo. So the rules here must agree with
how Odoo stores ``res.partner.email_normalized`` (``odoo.tools.email_normalize``):

* ASCII local part -> lowercased; non-ASCII local part kept as is (SMTPUTF8
  local parts are case-sensitive in practice), exactly like Odoo.
* domain -> lowercased, like Odoo. Unlike Odoo, an internationalized domain is
  converted to its punycode (``xn--``) form, because the same domain reaches us
  both ways (our own outgoing mail is punycoded by Odoo's ``formataddr``,
  other clients send UTF-8). Odoo keeps the Unicode form in
  ``email_normalized``; :func:`lookup_forms` returns both spellings so the
  caller can search partners with ``email_normalized in lookup_forms(addr)``.
"""
import functools
import re
from email.utils import getaddresses

try:  # the ``idna`` package (IDNA 2008 + UTS46) is an Odoo requirement
    import idna as _idna
except ImportError:  # pragma: no cover - the stdlib codec (IDNA 2003) is the fallback
    _idna = None

__all__ = [
    "normalize_address", "normalize_domain", "parse_address_list",
    "extract_addresses", "domain_of", "is_blocked", "message_participants",
    "lookup_forms",
]

# RFC 2047 encoded words must not be split by the address parser even when a
# broken encoder left a comma or '<' in them ("=?utf-8?q?Doe,_John?=").
_ENCODED_WORD_RE = re.compile(r"=\?[^?\s]+\?[bBqQ]\?.*?\?=")
# Fallback scanner for headers getaddresses cannot make sense of. Deliberately
# broader than Odoo's email_re (Unicode, no TLD requirement) since its hits are
# normalized and validated afterwards.
_LOOSE_ADDR_RE = re.compile(r"[^\s<>()\[\],;:\"'@]+@[^\s<>()\[\],;:\"'@]+")
_PLACEHOLDER = "ZZENCWORD%dZZ"
_PLACEHOLDER_RE = re.compile(r"ZZENCWORD(\d+)ZZ")

# Fast path for the address lists nearly all mail carries: ``addr``,
# ``<addr>``, ``Name <addr>`` and ``"Quoted, Name" <addr>`` items with
# dot-atom addresses. The stdlib parser is pure Python and was the largest
# single cost of importing mail; what this grammar accepts it parses to the
# very same pairs (tests/test_addresses.py checks that differentially), and
# anything else still goes to the stdlib.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PHRASE_WORD = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+"   # obs-phrase: "John Q. Public"
_DOT_ATOM_ADDR = r"%s(?:\.%s)*@[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*" % (_ATEXT, _ATEXT)
_FAST_ITEM_RE = re.compile(r"""
    [ \t]*
    (?:
        (?P<bare>%(addr)s)
      | (?: "(?P<quoted>[^"\\]*)" | (?P<phrase>%(word)s(?:[ \t]+%(word)s)*) )?
        [ \t]* <(?P<angle>%(addr)s)>
    )
    [ \t]* (?P<sep>,|$)
""" % {"addr": _DOT_ATOM_ADDR, "word": _PHRASE_WORD}, re.X)


def _fast_getaddresses(value):
    """``getaddresses([value])`` for simple lists, or None to use the stdlib."""
    pairs = []
    pos, end = 0, len(value)
    while True:
        match = _FAST_ITEM_RE.match(value, pos)
        if not match:
            return None
        if match.group("bare"):
            pairs.append(("", match.group("bare")))
        else:
            name = match.group("quoted")
            if name is None:
                name = " ".join((match.group("phrase") or "").split())
            pairs.append((name, match.group("angle")))
        pos = match.end()
        if not match.group("sep"):
            return pairs if pos >= end else None
        if pos >= end:
            return pairs  # trailing comma: the stdlib ignores it too


def _has_non_ascii(text):
    return not text.isascii()


def normalize_domain(domain):
    """Lowercase ``domain``; IDN -> punycode. Returns '' for an empty domain."""
    domain = (domain or "").strip().strip(".").rstrip(">").strip()
    if not domain:
        return ""
    if not _has_non_ascii(domain):
        # Same as Odoo for ASCII: no IDNA validation, so odd but real domains
        # (underscores, leading hyphens) still match their contact.
        return domain.lower()
    labels = []
    for label in domain.split("."):
        labels.append(_normalize_label(label))
    return ".".join(labels)


def _normalize_label(label):
    if not _has_non_ascii(label):
        return label.lower()
    if _idna is not None:
        try:
            return _idna.encode(label, uts46=True).decode("ascii")
        except Exception:  # idna raises several unrelated exception types
            pass
    try:
        return label.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return label.lower()


def _unicode_domain(domain):
    labels = []
    for label in domain.split("."):
        if label.startswith("xn--"):
            try:
                label = _idna.decode(label) if _idna else label.encode("ascii").decode("idna")
            except Exception:
                pass
        labels.append(label.lower())
    return ".".join(labels)


def normalize_address(addr):
    """Return the normalized address, or None when ``addr`` holds none.

    Accepts a bare address, ``Name <addr>``, ``<addr>`` or a ``(name, addr)``
    pair. When several addresses are present the first one is used.
    """
    if addr is None:
        return None
    if isinstance(addr, tuple) and len(addr) == 2:
        addr = addr[1]
    if isinstance(addr, (bytes, bytearray)):
        addr = _decode_bytes(bytes(addr))
    if not isinstance(addr, str):
        return None
    addr = addr.strip()
    if not addr:
        return None
    if _is_bare(addr):
        return _normalize_bare(addr)
    for _name, found in parse_address_list(addr):
        normalized = _normalize_bare(found)
        if normalized:
            return normalized
    return None


def _is_bare(addr):
    return addr.count("@") == 1 and not re.search(r"[\s<>(),;:\"]", addr)


@functools.lru_cache(maxsize=16384)
def _normalize_bare(addr):
    addr = addr.strip().strip("<>").strip()
    if addr.lower().startswith("mailto:"):
        addr = addr[7:]
    local, at, domain = addr.rpartition("@")
    local = local.strip()
    if not at or not local or not domain.strip():
        return None
    if re.search(r"\s", local):
        return None
    domain = normalize_domain(domain)
    if not domain or re.search(r"[\s@<>]", domain):
        return None
    if not _has_non_ascii(local):
        local = local.lower()
    return "%s@%s" % (local, domain)


def lookup_forms(addr):
    """All spellings under which Odoo may store ``addr`` in ``email_normalized``.

    For ASCII domains that is the normalized address alone; for IDN domains
    both the punycode and the Unicode (Odoo-style) spelling.
    """
    normalized = normalize_address(addr)
    if not normalized:
        return set()
    local, _, domain = normalized.rpartition("@")
    return {normalized, "%s@%s" % (local, _unicode_domain(domain))}


def _decode_bytes(raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _decode_encoded_words(text):
    # Imported lazily: mime imports this module.
    from .mime import decode_header_text
    return decode_header_text(text)


def parse_address_list(value):
    """Parse one address header value into ``[(display_name, address)]``.

    Tolerant: groups are flattened, encoded words in names are decoded (after
    splitting, so an encoded comma cannot split a name), and headers the RFC
    parser cannot read fall back to scanning for anything shaped like an
    address. Addresses are returned as written (stripped), not normalized.
    """
    if value is None:
        return []
    if isinstance(value, (bytes, bytearray)):
        value = _decode_bytes(bytes(value))
    return list(_parse_address_text(str(value)))


# The same correspondents fill most From/To/Cc headers of a mailbox: a
# backfill parses each distinct header value once. Results are tuples of
# tuples, so a caller cannot change what the cache holds.
@functools.lru_cache(maxsize=8192)
def _parse_address_text(value):
    value = value.replace("\r", " ").replace("\n", " ").replace("\x00", "")
    if not value.strip():
        return ()
    words = []

    def _protect(match):
        words.append(match.group(0))
        return _PLACEHOLDER % (len(words) - 1)

    protected = _ENCODED_WORD_RE.sub(_protect, value)

    def _restore(text):
        return _PLACEHOLDER_RE.sub(lambda m: words[int(m.group(1))], text)

    pairs = _fast_getaddresses(protected)
    if pairs is None:
        try:
            pairs = getaddresses([protected])
        except Exception:  # the stdlib parser has raised on odd input in the past
            pairs = []
    result = []
    broken = not pairs
    for name, address in pairs:
        name, address = _restore(name), _restore(address)
        if "=?" in address:
            address = _decode_encoded_words(address)
        address = address.strip()
        if not address and not name:
            continue  # empty group such as "undisclosed-recipients:;"
        if "@" not in address or re.search(r"\s", address) or address.startswith("@"):
            broken = True
            continue
        if "=?" in name:
            name = _decode_encoded_words(name)
        result.append((name.strip(), address))
    if broken:
        seen = {a.lower() for _n, a in result}
        plain = _decode_encoded_words(value) if "=?" in value else value
        for match in _LOOSE_ADDR_RE.finditer(plain):
            address = match.group(0).strip(".")
            if address.lower() not in seen and _normalize_bare(address):
                seen.add(address.lower())
                result.append(("", address))
    return tuple(result)


def extract_addresses(value):
    """Normalized, de-duplicated addresses (in order) from header value(s).

    ``value`` may be a header string or bytes, a list of them (repeated
    headers), ``(name, address)`` pairs as in :class:`ParsedMessage`, or None.
    """
    found = []
    seen = set()
    for item in _iter_values(value):
        if isinstance(item, tuple):
            candidates = [normalize_address(item)]
        else:
            candidates = [_normalize_bare(addr) for _n, addr in parse_address_list(item)]
        for normalized in candidates:
            if normalized and normalized not in seen:
                seen.add(normalized)
                found.append(normalized)
    return found


def _iter_values(value, nested=False):
    if value is None:
        return
    if isinstance(value, (str, bytes, bytearray)):
        yield value
    elif (nested and isinstance(value, tuple) and len(value) == 2
          and all(isinstance(v, str) for v in value)):
        # A (name, address) pair: the name must not be scanned for addresses.
        yield value
    else:
        try:
            items = iter(value)
        except TypeError:
            yield str(value)
            return
        for item in items:
            yield from _iter_values(item, nested=True)


def domain_of(addr):
    """Normalized domain of ``addr`` (punycode for IDN), or None."""
    normalized = normalize_address(addr)
    if not normalized:
        return None
    return normalized.rpartition("@")[2]


def is_blocked(addr, blocklist_entries):
    """Whether ``addr`` matches one of ``blocklist_entries``.

    Entries: a full address (``jane@example.com``), a domain (``example.com``
    or ``@example.com``) matching that domain only, or ``*.example.com``
    matching example.com and every subdomain (a user blocking "*.example.com"
    means the whole organisation, including its apex). Case-insensitive;
    IDN entries are compared in punycode. Blank or unparsable entries are
    ignored.
    """
    normalized = normalize_address(addr)
    if not normalized or not blocklist_entries:
        return False
    domain = normalized.rpartition("@")[2]
    if isinstance(blocklist_entries, str):
        blocklist_entries = re.split(r"[\s,;]+", blocklist_entries)
    for entry in blocklist_entries:
        if not entry or not isinstance(entry, str):
            continue
        entry = entry.strip()
        if entry.startswith("@"):
            entry = entry[1:].strip()
        if not entry:
            continue
        if "@" in entry:
            if _normalize_bare(entry) == normalized:
                return True
            continue
        if entry.startswith("*."):
            suffix = normalize_domain(entry[2:])
            if suffix and (domain == suffix or domain.endswith("." + suffix)):
                return True
            continue
        if normalize_domain(entry) == domain:
            return True
    return False


def message_participants(parsed, *, own_addresses, include_bcc_when_sent=True):
    """Normalized From/To/Cc of ``parsed``, plus Bcc on mail we sent.

    Bcc is only trustworthy (and only present) on the sender's own copy, hence
    "From is one of ``own_addresses``". Own addresses are not removed: the
    caller decides whether internal users count (internal notifications
    option).
    """
    participants = set()
    for field in ("from_", "to", "cc"):
        participants.update(extract_addresses(getattr(parsed, field, None) or []))
    if include_bcc_when_sent:
        own = set(extract_addresses(list(own_addresses or [])))
        senders = set(extract_addresses(getattr(parsed, "from_", None) or []))
        if own & senders:
            participants.update(extract_addresses(getattr(parsed, "bcc", None) or []))
    return participants
