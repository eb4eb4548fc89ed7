"""Pinned, realistic mailbox corpus for the benchmarks (pure Python, no Odoo import).

``generate(n, seed)`` builds ``n`` mailbox items (a message in a folder) for one mailbox
owner: conversations (replies threaded with In-Reply-To / References), newsletters and
notifications, plain text, multipart/alternative, HTML only, ~10 % with PDF/PNG-like
attachments (20 KB - 2 MB, a few of 3-8 MB), utf-8 / iso-8859-1 / us-ascii bodies in
quoted-printable, base64, 8bit and 7bit, RFC 2047 encoded headers, RFC 2231 file names,
Date headers spread over the 60 days before a fixed anchor. About half of the messages
involve one of the exported *contacts* (``corpus.contacts``, so a benchmark can create the
matching res.partner records), the other half only strangers. A few outgoing messages
reach a contact only through Bcc, some contact addresses appear with other letter case,
and ~1 % of sent messages (owner in Cc) also sit in INBOX with the same Message-ID.

The corpus is pinned: the same (n, seed, anchor, owner) gives the same bytes, which
``corpus.checksum`` (sha256 over folder + bytes of every item, in order) proves. Nothing
depends on the clock, the hash seed or the platform.

``load_into_rig(rig, user, items)`` APPENDs items into a mailrig user with MULTIAPPEND in
chunks (INTERNALDATE = Date header, flags as generated or none).

CLI: ``python -m bench.corpus --messages 10000 [--seed N] [--out DIR]`` prints a summary
and the checksum; ``--out`` also writes every item as DIR/<folder>/<index>.eml and
DIR/contacts.csv.
"""
import argparse
import base64
import binascii
import csv
import hashlib
import os
import random
import re
import sys
import time
import urllib.parse
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

DEFAULT_MESSAGES = 10_000
DEFAULT_SEED = 20261120
# Fixed so that the bytes never depend on the day the corpus is generated. Benchmarks
# set the sync window to cover [anchor - WINDOW_DAYS, now] (see window_days_needed()).
DEFAULT_ANCHOR = datetime(2026, 11, 20, 9, 0, 0, tzinfo=timezone.utc)
DEFAULT_OWNER = ("Robin Rep", "rep@rig.test")
WINDOW_DAYS = 60
CRLF = b"\r\n"

# --------------------------------------------------------------------------- vocabulary
FIRST = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
         "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Thomas", "Jessica",
         "Charles", "Sarah", "Daniel", "Karen", "Matthew", "Nancy", "Anthony", "Lisa", "Mark",
         "Sandra", "Paul", "Ashley", "Steven", "Emily", "Andrew", "Donna", "Kenneth", "Michelle",
         "Joshua", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "George", "Deborah",
         "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Laura", "Edward", "Helen"]
FIRST_INTL = ["José", "François", "Zoë", "Jürgen", "Søren", "Chloé", "Ingrid", "Łukasz",
              "Renée", "Agnès", "Björn", "Mónica", "Noël", "Ana", "Ömer", "Hélène",
              "Åsa", "Grégoire", "Iñigo", "Dagný"]
FIRST_CJK = ["太郎", "花子", "伟", "静", "민준", "서연"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
        "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
        "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
        "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
        "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores"]
LAST_INTL = ["Müller", "Dubois", "Lefèvre", "Østergaard", "Nowak", "García", "Šimek",
             "Ferrández", "Öztürk", "Hämäläinen", "Brontë", "Ibáñez", "Løvland", "Fernández"]
LAST_CJK = ["山田", "王", "김", "佐藤"]
COMPANY_WORDS = ["acme", "globex", "initech", "umbrella", "stark", "wayne", "hooli",
                 "vandelay", "soylent", "tyrell", "wonka", "cyberdyne", "aperture", "oscorp",
                 "massive", "dunder", "prestige", "sterling", "gringotts", "monarch", "nakatomi",
                 "pied-piper", "buy-n-large", "virtucon", "blue-sun", "zorg", "ollivander",
                 "duff", "krusty", "bluth", "gekko", "rekall", "sirius", "weyland", "yoyodyne",
                 "kwik-e", "paper-st", "lacuna", "frobozz", "spacely"]
COMPANY_SUFFIX = ["corp", "inc", "gmbh", "sarl", "ltd", "group", "labs", "industries",
                  "systems", "partners"]
FREEMAIL = ["gmail.example", "outlook.example", "yahoo.example", "proton.example",
            "icloud.example", "gmx.example", "web.example", "orange.example"]
NEWSLETTER_SENDERS = [
    ("Product Updates", "news"), ("Billing", "billing"), ("Notifications", "no-reply"),
    ("The Weekly Digest", "digest"), ("Security Alerts", "security"), ("Events", "events"),
    ("Customer Success", "success"), ("Webinars", "webinar")]
WORDS = ("the quote proposal contract invoice delivery schedule meeting call agenda "
         "pricing discount renewal license seats onboarding training project milestone "
         "deadline budget forecast pipeline order shipment warehouse inventory support "
         "ticket issue feedback review draft final version attached please find below "
         "thanks regards follow up next week tomorrow today monday friday confirm update "
         "team customer account manager sales marketing product feature roadmap release "
         "integration api migration backup server cloud security compliance audit report "
         "quarter annual revenue margin target volume terms conditions payment net thirty "
         "days signature legal approval procurement vendor partner demo trial pilot scope "
         "requirements estimate hours rate travel visit office site workshop slides notes "
         "minutes action items owner status risk blocker dependency timeline phase").split()
WORDS_LATIN1 = ("réunion devis facture livraison échéance équipe déjà très été prêt "
                "reçu bientôt semaine année problème Grüße Bestätigung Lösung Änderung "
                "größer mañana señor reunión información año pequeño niño façade naïve "
                "coöperation Ålesund smørbrød").split()
WORDS_UTF8 = ("会議 見積もり 請求書 ありがとう 合同 发票 报价 회의 감사합니다 "
              "Спасибо встреча счёт договор Ευχαριστώ συνάντηση ✔ ✈ ☕ 🙂 🚀 📎 €").split()
SUBJECTS = [
    "Quote for {n} seats", "Renewal of your {w} contract", "Meeting on {d}",
    "Re-scheduling our {w} call", "Invoice {n}", "Question about the {w}",
    "Proposal: {w} {w2}", "Follow-up on {w} demo", "Order {n} shipped",
    "{w} onboarding next steps", "Updated {w} timeline", "Feedback on the {w} draft",
    "Purchase order {n}", "Intro: {w} partnership", "Your {w} trial", "Agenda for {d}",
    "Signed {w} agreement", "{w} requirements v{v}", "Budget {w} Q{q}", "Site visit {d}"]
SUBJECTS_LATIN1 = ["Réunion du {d}", "Facture n° {n}", "Devis — {w}", "Bestätigung: Auftrag {n}",
                   "Información del pedido {n}", "Échéancier {w}"]
SUBJECTS_UTF8 = ["会議の件 {n}", "报价单 {n}", "Счёт {n}", "Project {w} 🚀", "✔ {w} approved",
                 "Déjà vu: {w} ☕"]
NEWSLETTER_SUBJECTS = ["Your weekly summary", "New features in {w}", "Invitation: {w} webinar",
                       "Your invoice is available", "Security notice for your account",
                       "{n} things you missed", "Last chance: {w} offer", "Release notes {v}"]
TZ_OFFSETS = [0, 60, 60, 120, -300, -240, -420, 330, 540, 600, -180]
MAILERS = ["Microsoft Outlook 16.0", "Apple Mail (2.3774)", "Mozilla Thunderbird 115.5",
           "Roundcube Webmail/1.6.5", None, None, None]


# --------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class Person:
    name: str
    email: str          # canonical, lower case
    company: str = ""


@dataclass
class CorpusItem:
    """One message as it sits in one folder of the owner's mailbox."""
    index: int                  # position in the corpus (0..n-1), append order per folder
    folder: str                 # "INBOX" or "Sent"
    raw: bytes
    message_id: str             # "<...>" as in the header
    date: datetime              # Date header (timezone-aware), also the INTERNALDATE
    flags: tuple                # IMAP flags as generated (bytes)
    kind: str                   # plain | alternative | html | newsletter (+attachments)
    direction: str              # "in" (received) or "out" (sent by the owner)
    thread: int
    participants: tuple         # normalized addresses in From/To/Cc (+Bcc when in the header)
    contacts: tuple             # normalized contact addresses among them
    attachments: int = 0
    attachment_bytes: int = 0   # decoded size of the attachments

    @property
    def size(self):
        return len(self.raw)

    @property
    def involves_contact(self):
        return bool(self.contacts)


@dataclass
class Corpus:
    seed: int
    anchor: datetime
    owner: Person
    contacts: list                   # [Person], exported for res.partner creation
    strangers: list                  # [Person]
    items: list = field(default_factory=list)   # [CorpusItem] in generation (index) order
    checksum: str = ""
    generation_seconds: float = 0.0

    def folder_items(self, folder):
        return [it for it in self.items if it.folder == folder]

    @property
    def folders(self):
        seen = []
        for it in self.items:
            if it.folder not in seen:
                seen.append(it.folder)
        return seen

    def expected_imports(self, folders=None):
        """{message_id: tuple of contact addresses} for every distinct message (in the
        given folders) that involves at least one contact; a message present in two
        folders counts once, with the union of its contacts."""
        out = {}
        for it in self.items:
            if folders is not None and it.folder not in folders:
                continue
            if it.contacts:
                prev = out.get(it.message_id, ())
                out[it.message_id] = tuple(sorted(set(prev) | set(it.contacts)))
        return out

    def summary(self):
        items = self.items
        uniq = {it.message_id for it in items}
        with_att = [it for it in items if it.attachments]
        kinds = {}
        for it in items:
            kinds[it.kind] = kinds.get(it.kind, 0) + 1
        charsets = {}
        for it in items:
            m = re.search(rb'charset="?([A-Za-z0-9_-]+)', it.raw[:20000])
            cs = m.group(1).decode().lower() if m else "none"
            charsets[cs] = charsets.get(cs, 0) + 1
        dates = [it.date for it in items]
        return {
            "seed": self.seed,
            "anchor": self.anchor.isoformat(),
            "owner": self.owner.email,
            "items": len(items),
            "unique_messages": len(uniq),
            "folders": {f: len(self.folder_items(f)) for f in self.folders},
            "involving_contacts": sum(1 for it in items if it.contacts),
            "expected_imports": len(self.expected_imports()),
            "contacts": len(self.contacts),
            "with_attachments": len(with_att),
            "attachment_mb": round(sum(it.attachment_bytes for it in items) / 1e6, 1),
            "total_mb": round(sum(it.size for it in items) / 1e6, 1),
            "largest_kb": max((it.size for it in items), default=0) // 1024,
            "kinds": dict(sorted(kinds.items())),
            "charsets": dict(sorted(charsets.items())),
            "threads": len({it.thread for it in items}),
            "replies": sum(1 for it in items if b"\r\nIn-Reply-To:" in it.raw.split(b"\r\n\r\n", 1)[0]),
            "oldest": min(dates).isoformat() if dates else None,
            "newest": max(dates).isoformat() if dates else None,
            "checksum": self.checksum,
        }


def window_days_needed(corpus, now=None):
    """Days a "SINCE now - N days" window needs to cover every item of the corpus."""
    now = now or datetime.now(timezone.utc)
    oldest = min(it.date for it in corpus.items)
    return max(1, (now - oldest).days + 2)


# --------------------------------------------------------------------------- encoders
def _ascii(text):
    return all(ord(c) < 128 for c in text)


def encode_word(text, charset="utf-8", mode="B"):
    """RFC 2047 encoded-word(s) for a header value; ASCII text is returned as is."""
    if _ascii(text):
        return text
    try:
        raw = text.encode(charset)
    except UnicodeEncodeError:          # e.g. a Polish name in a Latin-1 message
        charset, raw = "utf-8", text.encode("utf-8")
    if mode == "Q":
        enc = []
        for b in raw:
            ch = chr(b)
            if ch == " ":
                enc.append("_")
            elif ch.isalnum() and b < 128:
                enc.append(ch)
            else:
                enc.append("=%02X" % b)
        body = "".join(enc)
        # keep each encoded word short (RFC 2047: 75 chars max)
        words, cur = [], ""
        for tok in re.findall(r"=[0-9A-F]{2}|.", body):
            if len(cur) + len(tok) > 45:
                words.append(cur)
                cur = ""
            cur += tok
        if cur:
            words.append(cur)
        return " ".join("=?%s?Q?%s?=" % (charset, w) for w in words)
    # B: split on character boundaries so each word decodes on its own
    words, cur = [], b""
    for ch in text:
        b = ch.encode(charset)
        if len(cur) + len(b) > 36:
            words.append(cur)
            cur = b""
        cur += b
    if cur:
        words.append(cur)
    return " ".join("=?%s?B?%s?=" % (charset, base64.b64encode(w).decode()) for w in words)


def fmt_addr(person, charset="utf-8", mode="B", case_variant=False):
    email = person.email
    if case_variant:
        local, _, dom = email.partition("@")
        email = "%s@%s" % (local.title(), dom.upper())
    if not person.name:
        return "<%s>" % email if case_variant else email
    name = person.name
    if _ascii(name):
        if re.search(r'[,.;:@"()<>]', name):
            name = '"%s"' % name.replace('"', "")
        return "%s <%s>" % (name, email)
    return "%s <%s>" % (encode_word(name, charset, mode), email)


def fold(name, value):
    """Header line folded at commas near 78 columns (CRLF + space)."""
    line = "%s: %s" % (name, value)
    if len(line) <= 78 or ", " not in value:
        return line.encode("utf-8") + CRLF
    parts = value.split(", ")
    out, cur = [], "%s: %s" % (name, parts[0])
    for p in parts[1:]:
        if len(cur) + 2 + len(p) > 76:
            out.append(cur + ",")
            cur = " " + p
        else:
            cur += ", " + p
    out.append(cur)
    return ("\r\n".join(out)).encode("utf-8") + CRLF


def b64_lines(data):
    return base64.encodebytes(data).replace(b"\n", CRLF)


def qp(data):
    return binascii.b2a_qp(data, istext=True).replace(b"\r\n", b"\n").replace(b"\n", CRLF)


def encode_body(text, charset, cte):
    """(bytes, Content-Transfer-Encoding) for a text body (text uses \\n line ends)."""
    raw = text.encode(charset, errors="replace")
    if cte == "quoted-printable":
        return qp(raw), cte
    if cte == "base64":
        return b64_lines(raw), cte
    # 7bit / 8bit: CRLF line ends, lines < 998
    return raw.replace(b"\n", CRLF) + CRLF, cte


# --------------------------------------------------------------------------- generator
class _Gen:
    def __init__(self, seed, anchor, owner):
        self.rng = random.Random(seed)
        self.seed = seed
        self.anchor = anchor
        self.owner = Person(owner[0], owner[1].lower(), "")
        self.mid_counter = 0
        self.boundary_counter = 0
        self._pool = None

    # ---- people
    def _name(self, style):
        r = self.rng
        if style == "cjk":
            return r.choice(LAST_CJK) + r.choice(FIRST_CJK)
        if style == "intl":
            return "%s %s" % (r.choice(FIRST_INTL + FIRST), r.choice(LAST_INTL + LAST))
        return "%s %s" % (r.choice(FIRST), r.choice(LAST))

    def _local(self, name, pattern):
        import unicodedata
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        parts = [p.lower() for p in re.findall(r"[A-Za-z]+", ascii_name)] or ["user"]
        first, last = parts[0], parts[-1]
        if pattern == 0:
            return "%s.%s" % (first, last)
        if pattern == 1:
            return "%s%s" % (first[0], last)
        if pattern == 2:
            return first
        return "%s_%s%d" % (first, last, self.rng.randint(1, 99))

    def people(self, n_contacts, n_strangers):
        r = self.rng
        companies = []
        for w in COMPANY_WORDS:
            companies.append((w, "%s-%s.example" % (w, r.choice(COMPANY_SUFFIX))))
        used = {self.owner.email}

        def make(domain, company, style):
            name = self._name(style)
            for attempt in range(50):
                local = self._local(name, r.randrange(4) if attempt == 0 else 3)
                email = "%s@%s" % (local, domain)
                if email not in used:
                    used.add(email)
                    return Person(name, email, company)
            raise RuntimeError("could not make a unique address")

        def style():
            x = r.random()
            return "cjk" if x < 0.04 else "intl" if x < 0.25 else "plain"

        contacts = []
        for i in range(n_contacts):
            if r.random() < 0.8:
                company, domain = companies[i % 25]          # 25 customer companies
                contacts.append(make(domain, company.replace("-", " ").title(), style()))
            else:
                contacts.append(make(r.choice(FREEMAIL), "", style()))
        strangers = []
        for i in range(n_strangers):
            x = r.random()
            if x < 0.45:
                company, domain = companies[25 + i % (len(companies) - 25)]
                strangers.append(make(domain, company.title(), style()))
            elif x < 0.55:
                # a colleague of a contact: same company domain, but not a contact
                company, domain = companies[i % 25]
                strangers.append(make(domain, company.title(), style()))
            else:
                strangers.append(make(r.choice(FREEMAIL), "", style()))
        newsletters = []
        for i, (label, local) in enumerate(NEWSLETTER_SENDERS * 3):
            company, domain = companies[(i * 7) % len(companies)]
            newsletters.append(Person("%s %s" % (company.title(), label),
                                      "%s@mail.%s" % (local, domain), company.title()))
        return contacts, strangers, newsletters

    # ---- text
    def words(self, n, charset):
        r = self.rng
        pool = WORDS
        extra = None
        if charset == "iso-8859-1":
            extra = WORDS_LATIN1
        elif charset == "utf-8":
            extra = WORDS_UTF8 + WORDS_LATIN1
        out = []
        for _ in range(n):
            if extra and r.random() < 0.12:
                out.append(r.choice(extra))
            else:
                out.append(r.choice(pool))
        return out

    def paragraph(self, charset, lo=12, hi=70):
        ws = self.words(self.rng.randint(lo, hi), charset)
        ws[0] = ws[0].capitalize()
        text, line = [], ""
        for i, w in enumerate(ws):
            w = w + ("." if i == len(ws) - 1 else ("," if self.rng.random() < 0.06 else ""))
            if len(line) + len(w) + 1 > 72:
                text.append(line)
                line = w
            else:
                line = (line + " " + w) if line else w
        text.append(line)
        return "\n".join(text)

    def subject(self, charset, newsletter=False):
        r = self.rng
        if newsletter:
            tpl = r.choice(NEWSLETTER_SUBJECTS)
        elif charset == "utf-8" and r.random() < 0.3:
            tpl = r.choice(SUBJECTS_UTF8)
        elif charset in ("utf-8", "iso-8859-1") and r.random() < 0.3:
            tpl = r.choice(SUBJECTS_LATIN1)
        else:
            tpl = r.choice(SUBJECTS)
        d = (self.anchor - timedelta(days=r.randint(-20, 60))).strftime("%d %b")
        return tpl.format(n=r.randint(1000, 99999), w=r.choice(WORDS), w2=r.choice(WORDS),
                          d=d, v="%d.%d" % (r.randint(1, 9), r.randint(0, 9)), q=r.randint(1, 4))

    def text_body(self, sender, charset, quoted=None, newsletter=False):
        r = self.rng
        paras = [self.paragraph(charset) for _ in range(r.randint(1, 4 if not newsletter else 8))]
        greet = r.choice(["Hi", "Hello", "Dear", "Bonjour", "Hallo", "Hi all"])
        first = sender.name.split()[0] if sender.name else ""
        body = "%s,\n\n%s\n\n%s\n%s\n" % (greet, "\n\n".join(paras),
                                          r.choice(["Best regards,", "Thanks,", "Cheers,",
                                                    "Kind regards,", "Cordialement,"]),
                                          first)
        if r.random() < 0.5:
            body += "--\n%s\n%s\nPhone +1 555 %04d\n" % (sender.name, sender.company or "",
                                                       r.randint(0, 9999))
        if quoted:
            qlines = quoted.splitlines()[:r.randint(4, 30)]
            body += "\nOn earlier date, someone wrote:\n" + "\n".join(">" + (" " + l if l else "")
                                                                 for l in qlines) + "\n"
        return body

    def html_from_text(self, text, newsletter=False):
        import html as htmlmod
        r = self.rng
        blocks = [b for b in text.split("\n\n") if b.strip()]
        parts = []
        for b in blocks:
            esc = htmlmod.escape(b).replace("\n", "<br>\n")
            if r.random() < 0.2:
                esc = "<b>%s</b>" % esc
            parts.append("<p style=\"margin:0 0 12px 0;font-family:Arial,sans-serif\">%s</p>" % esc)
        if newsletter:
            rows = "".join(
                "<tr><td style=\"padding:8px;border-bottom:1px solid #eee\">"
                "<a href=\"https://news.example/%d?utm_source=mail&amp;utm_medium=%s\">%s</a>"
                "</td><td><img src=\"https://cdn.example/i/%d.png\" width=\"120\" height=\"80\" "
                "alt=\"\"></td></tr>\n" % (r.randrange(10 ** 6), r.choice(WORDS),
                                          htmlmod.escape(" ".join(self.words(6, "us-ascii"))),
                                          r.randrange(10 ** 6))
                for _ in range(r.randint(6, 30)))
            parts.append("<table width=\"100%%\" cellpadding=\"0\" cellspacing=\"0\">\n%s</table>" % rows)
            parts.append("<p style=\"font-size:11px;color:#888\">You receive this email because "
                         "you signed up. <a href=\"https://news.example/unsubscribe\">"
                         "Unsubscribe</a></p>")
        return ("<!DOCTYPE html>\n<html><head><meta http-equiv=\"Content-Type\" "
                "content=\"text/html; charset=utf-8\"><style>p{margin:0}</style></head>\n"
                "<body>\n<div dir=\"ltr\">\n%s\n</div>\n</body></html>\n" % "\n".join(parts))

    # ---- attachments
    def blob(self, kind, size):
        r = self.rng
        if kind == "pdf":
            head = (b"%%PDF-1.5\n%%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\n"
                    b"endobj\n4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % size)
            tail = b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
        else:
            head = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x04\x00\x00\x00\x03\x00"
                    b"\x08\x06\x00\x00\x00" + r.randbytes(4) + b"\x00\x00\x00\x00IDAT")
            tail = b"\x00\x00\x00\x00IEND\xaeB`\x82"
        body = max(0, size - len(head) - len(tail))
        return head + self.noise(body) + tail

    def noise(self, n):
        """n incompressible bytes, unique per call: slices of a seeded 8 MB pool at
        random offsets (much faster than randbytes(n) for hundreds of MB)."""
        r = self.rng
        if self._pool is None:
            self._pool = random.Random(self.seed ^ 0x5EED).randbytes(8 << 20)
        pool = self._pool
        out = [r.randbytes(64)]
        left = n - 64
        while left > 0:
            take = min(left, r.randint(64 << 10, 1 << 20))
            off = r.randrange(len(pool) - take)
            out.append(pool[off:off + take])
            left -= take
        return b"".join(out)[:n]

    def attachment_size(self):
        r = self.rng
        if r.random() < 0.012:                    # "a few larger"
            return r.randint(3_000_000, 8_000_000)
        # log-uniform 20 KB .. 2 MB
        lo, hi = 20_000, 2_000_000
        return int(lo * (hi / lo) ** r.random())

    def boundary(self):
        self.boundary_counter += 1
        return "----=_Part_%d_%08x.%d" % (self.boundary_counter, self.rng.getrandbits(32),
                                          self.rng.randrange(10 ** 9))

    def message_id(self, sender):
        self.mid_counter += 1
        r = self.rng
        dom = sender.email.split("@", 1)[1]
        style = r.randrange(4)
        tok = "%016x%04x" % (r.getrandbits(64), self.mid_counter)
        if style == 0:
            return "<CA+%s%s@mail.%s>" % (base64.b32encode(bytes.fromhex(tok)).decode().rstrip("="),
                                           "", "gmail.example" if "gmail" in dom else dom)
        if style == 1:
            return "<%s.%d@%s>" % (tok, self.mid_counter, dom)
        if style == 2:
            return "<DB%sPR0%s@EUR%02d.prod.outlook.example>" % (tok[:10].upper(), tok[10:].upper(),
                                                               r.randint(1, 9))
        return "<%s-%s@%s>" % (tok[:8], tok[8:], dom)

    # ---- one message
    def build(self, *, sender, to, cc, bcc, subject, date, mid, in_reply_to, references,
              kind, charset, cte, text, html, attachments, inbound, newsletter, self_copy=False):
        r = self.rng
        hmode = "Q" if charset == "iso-8859-1" else "B"
        hcharset = charset if charset != "us-ascii" else "utf-8"
        h = []
        if inbound:
            h.append(b"Return-Path: <%s>\r\n" % sender.email.encode())
            h.append(b"Delivered-To: " + self.owner.email.encode() + CRLF)
            hops = r.randint(1, 3)
            for i in range(hops):
                t = date + timedelta(seconds=(hops - i) * r.randint(1, 20))
                h.append(("Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\r\n\tby mail.rig.test "
                          "with ESMTPS id %08X\r\n\tfor <%s>; %s\r\n" % (
                              i + 1, sender.email.split("@")[1], i + 1, sender.email.split("@")[1],
                              r.randint(1, 254), r.getrandbits(32), self.owner.email,
                              format_datetime(t))).encode())
            if r.random() < 0.6:
                h.append(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s;\r\n"
                         b"\ts=sel1; h=from:to:subject:date:message-id;\r\n\tbh=%s;\r\n\tb=%s\r\n" % (
                             sender.email.split("@")[1].encode(),
                             base64.b64encode(r.randbytes(32)),
                             b"\r\n\t ".join(base64.b64encode(r.randbytes(48)) for _ in range(4))))
        h.append(fold("From", fmt_addr(sender, hcharset, hmode)))
        case_variant = r.random() < 0.04
        if to:
            h.append(fold("To", ", ".join(fmt_addr(p, hcharset, hmode, case_variant) for p in to)))
        if cc:
            h.append(fold("Cc", ", ".join(fmt_addr(p, hcharset, hmode) for p in cc)))
        if bcc:
            h.append(fold("Bcc", ", ".join(fmt_addr(p, hcharset, hmode) for p in bcc)))
        h.append(("Subject: %s\r\n" % encode_word(subject, hcharset, hmode)).encode())
        h.append(("Date: %s\r\n" % format_datetime(date)).encode())
        h.append(("Message-ID: %s\r\n" % mid).encode())
        if in_reply_to:
            h.append(("In-Reply-To: %s\r\n" % in_reply_to).encode())
            refs = references[-10:]
            lines = [" ".join(refs[i:i + 2]) for i in range(0, len(refs), 2)]
            h.append(("References: %s\r\n" % "\r\n ".join(lines)).encode())
        h.append(b"MIME-Version: 1.0\r\n")
        mailer = r.choice(MAILERS)
        if mailer and not newsletter:
            h.append(("X-Mailer: %s\r\n" % mailer).encode())
        if newsletter:
            h.append(b"List-Unsubscribe: <https://news.example/u/%d>, <mailto:unsub@%s>\r\n" % (
                r.randrange(10 ** 8), sender.email.split("@")[1].encode()))
            h.append(b"Precedence: bulk\r\n")
        if r.random() < 0.3:
            h.append(b"Content-Language: en-US\r\n")

        def text_part(t, subtype):
            body, enc = encode_body(t, charset, cte)
            return (b"Content-Type: text/%s; charset=\"%s\"\r\nContent-Transfer-Encoding: %s\r\n\r\n"
                    % (subtype.encode(), charset.encode(), enc.encode()) + body)

        if kind == "plain":
            content = text_part(text, "plain")
        elif kind == "html":
            content = text_part(html, "html")
        else:
            bnd = self.boundary().encode()
            content = (b"Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
                       b"--%s\r\n%s\r\n--%s\r\n%s\r\n--%s--\r\n"
                       % (bnd, bnd, text_part(text, "plain"), bnd, text_part(html, "html"), bnd))
        if attachments:
            bnd = self.boundary().encode()
            parts = [content]
            for filename, ctype, data in attachments:
                if _ascii(filename):
                    disp = b'attachment; filename="%s"' % filename.encode()
                    ct = b'%s; name="%s"' % (ctype.encode(), filename.encode())
                else:
                    quoted = urllib.parse.quote(filename.encode("utf-8"), safe="")
                    disp = b"attachment;\r\n filename*=utf-8''%s" % quoted.encode()
                    ct = b'%s; name="%s"' % (ctype.encode(), encode_word(filename).encode())
                parts.append(b"Content-Type: %s\r\nContent-Disposition: %s\r\n"
                             b"Content-Transfer-Encoding: base64\r\n\r\n" % (ct, disp) + b64_lines(data))
            content = (b"Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
                       b"This is a multi-part message in MIME format.\r\n" % bnd
                       + b"".join(b"--%s\r\n%s\r\n" % (bnd, p) for p in parts)
                       + b"--%s--\r\n" % bnd)
        return b"".join(h) + content


def generate(n=DEFAULT_MESSAGES, seed=DEFAULT_SEED, anchor=DEFAULT_ANCHOR, owner=DEFAULT_OWNER,
             contact_share=0.5, attachment_share=0.10, n_contacts=None):
    """Build the corpus: ``n`` mailbox items (see the module docstring)."""
    t0 = time.monotonic()
    g = _Gen(seed, anchor, owner)
    r = g.rng
    if n_contacts is None:
        n_contacts = max(20, min(600, n // 20))
    contacts, strangers, newsletters = g.people(n_contacts, max(60, min(4000, n // 3)))
    contact_emails = {p.email for p in contacts}
    owner_p = g.owner
    items = []
    raw_items = []       # (date, folder, ...) before sorting
    thread_no = 0
    window = timedelta(days=WINDOW_DAYS)

    def pick_charset():
        x = r.random()
        if x < 0.72:
            cs = "utf-8"
            cte = r.choices(["quoted-printable", "base64", "8bit"], [0.5, 0.25, 0.25])[0]
        elif x < 0.88:
            cs = "iso-8859-1"
            cte = r.choices(["quoted-printable", "8bit"], [0.7, 0.3])[0]
        else:
            cs, cte = "us-ascii", "7bit"
        return cs, cte

    def make_attachments():
        out = []
        for _ in range(1 if r.random() < 0.85 else r.randint(2, 3)):
            kind = r.choice(["pdf", "pdf", "png"])
            size = g.attachment_size()
            stem = r.choice(["Quote", "Invoice", "Contract", "Report", "Scan", "Screenshot",
                             "Présentation", "Angebot", "見積書", "Proposal", "Slides"])
            name = "%s_%d.%s" % (stem, r.randint(1, 9999), kind)
            out.append((name, "application/pdf" if kind == "pdf" else "image/png", g.blob(kind, size)))
        return out

    budget = n
    while budget > 0:
        thread_no += 1
        involve_contact = r.random() < contact_share
        newsletter = (not involve_contact) and r.random() < 0.4
        start = anchor - timedelta(seconds=r.uniform(3600, window.total_seconds() - 3600))
        tz = timezone(timedelta(minutes=r.choice(TZ_OFFSETS)))
        if newsletter:
            sender = r.choice(newsletters)
            cs, cte = ("utf-8", r.choice(["quoted-printable", "base64"]))
            subject = g.subject(cs, newsletter=True)
            text = g.text_body(sender, "us-ascii", newsletter=True)
            html = g.html_from_text(text, newsletter=True)
            mid = g.message_id(sender)
            date = start.astimezone(tz).replace(microsecond=0)
            raw = g.build(sender=sender, to=[owner_p], cc=[], bcc=[], subject=subject, date=date,
                          mid=mid, in_reply_to=None, references=[],
                          kind=r.choice(["html", "alternative"]), charset=cs, cte=cte, text=text,
                          html=html, attachments=[], inbound=True, newsletter=True)
            raw_items.append(dict(date=date, folder="INBOX", raw=raw, mid=mid, kind="newsletter",
                                  direction="in", thread=thread_no, parts=[sender.email, owner_p.email],
                                  attachments=[], flags=(b"\\Seen",) if r.random() < 0.5 else ()))
            budget -= 1
            continue
        # a conversation between the owner and one or two people (+ maybe someone in Cc)
        if involve_contact:
            others = [r.choice(contacts)]
            if r.random() < 0.15:
                others.append(r.choice(contacts))
            cc_pool = [r.choice(strangers)] if r.random() < 0.25 else []
        else:
            others = [r.choice(strangers)]
            if r.random() < 0.1:
                others.append(r.choice(strangers))
            cc_pool = [r.choice(strangers)] if r.random() < 0.15 else []
        length = 1
        while length < 8 and r.random() < 0.55:
            length += 1
        outbound = r.random() < 0.35
        cs, cte = pick_charset()
        subject = g.subject(cs)
        refs = []
        prev_text = None
        date = start
        for k in range(length):
            if budget <= 0 or date >= anchor:
                break
            tz = timezone(timedelta(minutes=r.choice(TZ_OFFSETS)))
            d = date.astimezone(tz).replace(microsecond=0)
            if outbound:
                sender = owner_p
                to = list(others)
                cc = list(cc_pool)
                bcc = []
                if not involve_contact and r.random() < 0.03:
                    bcc = [r.choice(contacts)]      # contact reached only through Bcc
            else:
                sender = others[k % len(others)] if len(others) > 1 and r.random() < 0.5 else others[0]
                to = [owner_p] + [p for p in others if p != sender]
                cc = list(cc_pool)
                bcc = []
            self_cc = outbound and r.random() < 0.012
            if self_cc:
                cc = cc + [owner_p]
            text = g.text_body(sender, cs, quoted=prev_text)
            kind = "plain" if r.random() < 0.4 else "alternative"
            html = g.html_from_text(text) if kind == "alternative" else None
            atts = make_attachments() if r.random() < attachment_share else []
            mid = g.message_id(sender)
            subj = subject if k == 0 else ("Re: " + subject if r.random() < 0.9 else "RE: " + subject)
            raw = g.build(sender=sender, to=to, cc=cc, bcc=bcc, subject=subj, date=d, mid=mid,
                          in_reply_to=refs[-1] if refs else None, references=list(refs),
                          kind=kind, charset=cs, cte=cte, text=text, html=html,
                          attachments=atts, inbound=not outbound, newsletter=False)
            parts = [sender.email] + [p.email for p in to + cc + bcc]
            seen_flag = (b"\\Seen",) if (outbound or r.random() < 0.8) else ()
            if not outbound and r.random() < 0.05:
                seen_flag = seen_flag + (b"\\Flagged",)
            raw_items.append(dict(date=d, folder="Sent" if outbound else "INBOX", raw=raw, mid=mid,
                                  kind=kind, direction="out" if outbound else "in", thread=thread_no,
                                  parts=parts, attachments=atts, flags=seen_flag))
            budget -= 1
            if self_cc and budget > 0:
                # the owner's own copy, delivered to INBOX: same Message-ID, delivery headers
                # added, Bcc gone (as a server delivers it)
                inbox_raw = (b"Return-Path: <%s>\r\nDelivered-To: %s\r\n" % (
                    owner_p.email.encode(), owner_p.email.encode())
                    + re.sub(rb"\r\nBcc: [^\r]*(\r\n[ \t][^\r]*)*", b"", raw, count=1))
                raw_items.append(dict(date=d, folder="INBOX", raw=inbox_raw, mid=mid, kind=kind,
                                      direction="out", thread=thread_no,
                                      parts=[p for p in parts if not bcc or p not in [b.email for b in bcc]],
                                      attachments=atts, flags=()))
                budget -= 1
            refs.append(mid)
            prev_text = text
            outbound = (not outbound) if r.random() < 0.85 else outbound
            date = date + timedelta(seconds=min(r.expovariate(1 / 21600.0), 5 * 86400) + 60)
    # mailbox order: by date, generation order breaking ties (stable sort)
    raw_items.sort(key=lambda d: d["date"].timestamp())
    h = hashlib.sha256()
    for i, d in enumerate(raw_items):
        parts = []
        for a in d["parts"]:
            a = a.lower()
            if a not in parts:
                parts.append(a)
        matched = tuple(a for a in parts if a in contact_emails)
        item = CorpusItem(
            index=i, folder=d["folder"], raw=d["raw"], message_id=d["mid"], date=d["date"],
            flags=tuple(d["flags"]), kind=d["kind"] + ("+attachments" if d["attachments"] else ""),
            direction=d["direction"], thread=d["thread"], participants=tuple(parts),
            contacts=matched, attachments=len(d["attachments"]),
            attachment_bytes=sum(len(a[2]) for a in d["attachments"]))
        items.append(item)
        h.update(d["folder"].encode() + b"\0" + str(len(d["raw"])).encode() + b"\0")
        h.update(d["raw"])
    corpus = Corpus(seed=seed, anchor=anchor, owner=owner_p, contacts=contacts,
                    strangers=strangers, items=items, checksum=h.hexdigest())
    corpus.generation_seconds = time.monotonic() - t0
    return corpus


# --------------------------------------------------------------------------- loading
def load_into_rig(rig, user, items, *, flags=True, chunk_messages=200, chunk_bytes=24_000_000,
                  folder_map=None):
    """APPEND ``items`` into ``user``'s mailbox on a mailrig, MULTIAPPEND in chunks.

    flags=True keeps the generated flags (\\Seen, \\Flagged), False appends everything
    unseen (what fetchmail needs: it only fetches UNSEEN). INTERNALDATE = Date header.
    folder_map maps corpus folders to the user's folders (default: INBOX -> INBOX,
    Sent -> the user's Sent-role folder). Returns {"seconds", "messages", "mb", "commands"}.
    """
    folder_map = dict(folder_map or {})
    folder_map.setdefault("INBOX", "INBOX")
    if "Sent" not in folder_map:
        try:
            folder_map["Sent"] = user.sent_folder
        except Exception:
            folder_map["Sent"] = "Sent"
    t0 = time.monotonic()
    commands = 0
    total = 0
    by_folder = {}
    for it in items:
        by_folder.setdefault(folder_map.get(it.folder, it.folder), []).append(it)
    with rig.imap_client(user, timeout=120) as c:
        for folder, its in by_folder.items():
            batch, size = [], 0
            for it in its + [None]:
                if it is not None:
                    batch.append({"msg": it.raw, "flags": it.flags if flags else (),
                                  "date": it.date})
                    size += len(it.raw)
                    total += len(it.raw)
                if batch and (it is None or len(batch) >= chunk_messages or size >= chunk_bytes):
                    c.multiappend(folder, batch)
                    commands += 1
                    batch, size = [], 0
    return {"seconds": time.monotonic() - t0, "messages": len(items), "mb": total / 1e6,
            "commands": commands}


def big_message(size=25_000_000, seed=DEFAULT_SEED, anchor=DEFAULT_ANCHOR, owner=DEFAULT_OWNER,
                sender=None):
    """One message of about ``size`` bytes (a short text part and one large PDF-like
    attachment, base64), from ``sender`` (a Person; default: the corpus's first contact)."""
    g = _Gen(seed + 1, anchor, owner)
    if sender is None:
        contacts, _s, _n = _Gen(seed, anchor, owner).people(20, 60)
        sender = contacts[0]
    payload = int(size * 57 / 78) - 4000       # base64 with CRLF every 76 chars
    data = g.blob("pdf", payload)
    date = (anchor - timedelta(days=1)).replace(microsecond=0)
    raw = g.build(sender=sender, to=[g.owner], cc=[], bcc=[], subject="Signed contract scan (large)",
                  date=date, mid="<big-%d@%s>" % (size, sender.email.split("@")[1]),
                  in_reply_to=None, references=[], kind="plain", charset="utf-8",
                  cte="quoted-printable", text="Here is the full scan.\n", html=None,
                  attachments=[("contract_scan.pdf", "application/pdf", data)], inbound=True,
                  newsletter=False)
    return raw, sender


# --------------------------------------------------------------------------- CLI
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out", help="write DIR/<folder>/<n>.eml and DIR/contacts.csv")
    args = ap.parse_args(argv)
    corpus = generate(args.messages, args.seed)
    s = corpus.summary()
    for k, v in s.items():
        print("%-20s %s" % (k, v))
    print("%-20s %.1f s" % ("generated_in", corpus.generation_seconds))
    if args.out:
        for it in corpus.items:
            d = os.path.join(args.out, it.folder)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "%05d.eml" % it.index), "wb") as fh:
                fh.write(it.raw)
        with open(os.path.join(args.out, "contacts.csv"), "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["name", "email", "company"])
            for p in corpus.contacts:
                w.writerow([p.name, p.email, p.company])
    return 0


if __name__ == "__main__":
    sys.exit(main())
