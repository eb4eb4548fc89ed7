"""From parsed server messages to chatter entries: matching, dedupe, creation.

This is the Odoo half of inbound sync; it never speaks IMAP (see
``mailsync.sync`` for the runner and ``mailsync.inbound`` for the protocol).
Everything works on batches: one SQL query matches the participants of a
whole batch against res.partner, one query finds what already exists, and the
chatter entries, attachments and links of a batch are created with one ORM
``create`` per model. ``message_post`` is deliberately not used: it notifies
followers, subscribes the author and runs per message, and imported mail must
reach nobody's inbox.
"""
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from markupsafe import Markup

from odoo import _, api, models
from odoo.tools import formataddr, plaintext2html

from ..mailsync import addresses, mime

_logger = logging.getLogger(__name__)

CONTENT_SELECTION = [
    ("full", "Full content"),
    ("text", "Text only"),
    ("headers", "Headers only"),
]
DEFAULT_BACKFILL_DAYS = 60
DEFAULT_MAX_ATTACHMENT_MB = 25

_CID_SRC_RE = re.compile(r"""(src\s*=\s*["']?)cid:([^"'\s>]+)""", re.I)


class ConcurrentImport(Exception):
    """Another transaction imported the same email for the same record
    meanwhile: roll the step back and run it again (it will then find it)."""


@dataclass
class SyncOptions:
    """Resolved import options of one mailbox (global defaults applied)."""
    content: str = "full"
    attachments: bool = True
    max_attachment_bytes: int = None
    include_internal: bool = False
    blocklist: tuple = ()
    own_addresses: tuple = ()
    company_id: int = None


@dataclass
class Candidate:
    """One server copy on its way into Odoo.

    ``parsed`` is a mime.ParsedMessage: from the headers only during matching,
    from the full message (per the content options) when imported.
    """
    folder_id: int
    uid: int
    parsed: object
    internaldate: datetime = None
    size: int = 0
    partner_ids: tuple = ()
    author_id: int = None
    link_id: int = None        # pending link (backfill plan) to complete
    reserved_ids: list = field(default_factory=list)   # mail.message ids kept for it
    targets: list = field(default_factory=list)

    @property
    def message_id(self):
        return self.parsed.message_id

    @property
    def date(self):
        value = self.parsed.date or self.internaldate
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.replace(microsecond=0)

    @property
    def parent_ref(self):
        if self.parsed.in_reply_to:
            return self.parsed.in_reply_to
        return self.parsed.references[-1] if self.parsed.references else None


def message_id_forms(parsed):
    """Spellings under which mail.message may hold this message's id: ours
    (``<normalized>``) and the header as written (Odoo stores what it sent)."""
    forms = {mime.format_message_id(parsed.message_id)}
    for name, value in getattr(parsed, "headers", None) or ():
        if name.lower() == "message-id" and value:
            raw = value.strip()
            if raw:
                forms.add(raw)
            break
    return forms


class MailsyncImporter(models.AbstractModel):
    _name = "mailsync.importer"
    _description = "Email Sync: Import Into Chatter"

    # ------------------------------------------------------------
    # Options
    # ------------------------------------------------------------

    @api.model
    def _get_options(self, mailbox):
        ICP = self.env["ir.config_parameter"].sudo()
        blocklist = tuple(
            entry.strip() for entry in re.split(r"[\s,;]+", ICP.get_param(
                "imap_sent_sync.blocklist", "") or "") if entry.strip())
        own = {mailbox.email, mailbox.login, mailbox.user_id.email}
        max_mb = mailbox.import_max_attachment_mb
        return SyncOptions(
            content=mailbox.import_content or "full",
            attachments=bool(mailbox.import_attachments),
            max_attachment_bytes=int(max_mb * 1024 * 1024) if max_mb and max_mb > 0 else None,
            include_internal=bool(mailbox.import_internal),
            blocklist=blocklist,
            own_addresses=tuple(addr for addr in own if addr),
            company_id=mailbox.company_id.id,
        )

    # ------------------------------------------------------------
    # Matching
    # ------------------------------------------------------------

    @api.model
    def _participants(self, parsed, options, memo=None):
        """Normalized From/To/Cc, plus Bcc on the mailbox's own sent mail: the
        rule of ``addresses.message_participants``, with every distinct
        address normalized once per batch (the mailbox's own address is in
        nearly every message)."""
        memo = {} if memo is None else memo

        def norm(pair):
            raw = pair[1] if isinstance(pair, tuple) else pair
            if raw not in memo:
                memo[raw] = addresses.normalize_address(raw)
            return memo[raw]

        people = {norm(p) for field in (parsed.from_, parsed.to, parsed.cc) for p in field or ()}
        own = memo.get(("own", options.own_addresses))
        if own is None:
            own = memo[("own", options.own_addresses)] = {
                norm(a) for a in options.own_addresses} - {None}
        if parsed.bcc and own & {norm(p) for p in parsed.from_ or ()}:
            people.update(norm(p) for p in parsed.bcc)
        people.discard(None)
        return people

    @api.model
    def _match_candidates(self, candidates, options):
        """Fill ``partner_ids``/``author_id``/``targets`` of every candidate.

        Returns the candidates that match at least one contact. A candidate
        with any participant on the blocklist never matches. One SQL query for
        the whole batch.
        """
        memo, blocked, forms = {}, {}, {}
        participants = []
        lookup = set()
        for cand in candidates:
            people = self._participants(cand.parsed, options, memo)
            if options.blocklist:
                for addr in people:
                    if addr not in blocked:
                        blocked[addr] = addresses.is_blocked(addr, options.blocklist)
                if any(blocked[addr] for addr in people):
                    people = set()
            participants.append(people)
            for addr in people:
                if addr not in forms:
                    # Only IDN domains have a second spelling (punycode/Unicode).
                    forms[addr] = ({addr} if addr.isascii() and "xn--" not in addr
                                   else addresses.lookup_forms(addr))
                lookup.update(forms[addr])
        partners_by_addr = self._partners_by_address(lookup, options)
        by_addr = {addr: self._partners_for(forms[addr], partners_by_addr) for addr in forms}
        matched = []
        all_partner_ids = set()
        for cand, people in zip(candidates, participants):
            if not people:
                continue
            partner_ids = set()
            for addr in people:
                for pid, internal in by_addr[addr]:
                    if internal and not options.include_internal:
                        continue
                    partner_ids.add(pid)
            if not partner_ids:
                continue
            cand.partner_ids = tuple(sorted(partner_ids))
            sender = memo.get(cand.parsed.from_[0][1]) if cand.parsed.from_ else None
            cand.author_id = self._author_for(by_addr.get(sender) or ())
            all_partner_ids.update(partner_ids)
            matched.append(cand)
        targets = self._targets_for_partners(all_partner_ids)
        for cand in matched:
            cand.targets = self._candidate_targets(cand, targets)
        return matched

    @api.model
    def _partners_for(self, forms, partners_by_addr):
        found = {}
        for form in forms:
            for pid, internal in partners_by_addr.get(form, ()):
                found[pid] = internal
        return sorted(found.items())

    @api.model
    def _partners_by_address(self, lookup, options):
        """{email_normalized: [(partner id, is internal user)]} for active
        partners of the mailbox's company (or shared between companies)."""
        if not lookup:
            return {}
        self.env["res.partner"].flush_model(["email_normalized", "active", "company_id"])
        self.env["res.users"].flush_model(["partner_id", "share", "active"])
        self.env.cr.execute("""
            SELECT p.id, p.email_normalized,
                   EXISTS(SELECT 1 FROM res_users u
                           WHERE u.partner_id = p.id AND u.share IS NOT TRUE AND u.active)
              FROM res_partner p
             WHERE p.email_normalized = ANY(%s)
               AND p.active
               AND (p.company_id IS NULL OR p.company_id = %s)
             ORDER BY p.id
        """, (list(lookup), options.company_id))
        result = defaultdict(list)
        for pid, email, internal in self.env.cr.fetchall():
            result[email].append((pid, internal))
        return result

    @api.model
    def _author_for(self, found):
        """The sender's partner among ``found`` [(partner id, internal)]: an
        internal user's partner first (mail the rep sent is theirs), else the
        oldest contact with that address."""
        if not found:
            return None
        internal = [pid for pid, is_internal in found if is_internal]
        return (internal or [pid for pid, _i in found])[0]

    @api.model
    def _targets_for_partners(self, partner_ids):
        """{partner id: [(model, res_id)]}: the records a message matched to
        that partner is posted on. The contact itself; the CRM bridge adds the
        contact's open opportunities."""
        return {pid: [("res.partner", pid)] for pid in partner_ids}

    @api.model
    def _candidate_targets(self, cand, targets_by_partner):
        seen = []
        for pid in cand.partner_ids:
            for target in targets_by_partner.get(pid, ()):
                if target not in seen:
                    seen.append(target)
        return seen

    # ------------------------------------------------------------
    # Import
    # ------------------------------------------------------------

    @api.model
    def _import_candidates(self, mailbox, candidates, options, *, state="synced"):
        """Create the chatter entries, attachments and links of a batch.

        ``candidates`` are matched (``targets`` set) and fully parsed. Copies
        of one message (same Message-ID) share their chatter entries; a record
        that already has an entry with that Message-ID (imported from another
        copy or mailbox, or sent from Odoo) gets no second one. Returns the
        number of mail.message records created.
        """
        if not candidates:
            return 0
        groups = defaultdict(list)
        for cand in candidates:
            groups[cand.message_id].append(cand)
        existing = self._existing_entries(groups)
        # Newest first within the batch would invert the chatter (it sorts by
        # id); oldest first gives ids in date order where no slot is reserved.
        order = sorted(groups, key=lambda mid: (groups[mid][0].date or datetime.min, mid))
        parents = self._find_parents(groups)
        to_create = []      # (message id, target, values)
        entry_ids = {mid: dict() for mid in groups}   # mid -> {target: mail.message id}
        for mid in order:
            first = groups[mid][0]
            reserved = next((list(c.reserved_ids) for c in groups[mid] if c.reserved_ids), [])
            targets = []
            for target in first.targets:
                found = existing.get((mid,) + target)
                if found:
                    entry_ids[mid][target] = found
                else:
                    targets.append(target)
            if not targets:
                continue
            for index, target in enumerate(targets):
                forced = reserved[index] if index < len(reserved) else None
                to_create.append((mid, target, forced, first))
        created = self._create_entries(mailbox, to_create, parents, options)
        for (mid, target), message_id in created.items():
            entry_ids[mid][target] = message_id
        self._write_links(mailbox, groups, entry_ids, state)
        if created:
            self._link_children(list(groups))
        return len(created)

    @api.model
    def _existing_entries(self, groups):
        """{(normalized id, model, res_id): mail.message id} already in Odoo."""
        forms = {}
        for mid, cands in groups.items():
            for form in message_id_forms(cands[0].parsed):
                forms[form] = mid
        if not forms:
            return {}
        self.env["mail.message"].flush_model(["message_id", "model", "res_id"])
        self.env.cr.execute("""
            SELECT message_id, model, res_id, MIN(id)
              FROM mail_message
             WHERE message_id = ANY(%s) AND model IS NOT NULL
             GROUP BY message_id, model, res_id
        """, (list(forms),))
        result = {}
        for form, model, res_id, msg_id in self.env.cr.fetchall():
            key = (forms[form], model, res_id)
            result[key] = min(result.get(key, msg_id), msg_id)
        return result

    @api.model
    def _find_parents(self, groups):
        """{(normalized id, model, res_id): parent mail.message id} from
        In-Reply-To, then References newest first, on the same record."""
        wanted = {}
        for mid, cands in groups.items():
            parsed = cands[0].parsed
            chain = []
            if parsed.in_reply_to:
                chain.append(parsed.in_reply_to)
            chain.extend(ref for ref in reversed(parsed.references or []) if ref not in chain)
            if chain:
                wanted[mid] = [ref for ref in chain if ref != mid]
        refs = {mime.format_message_id(ref) for chain in wanted.values() for ref in chain}
        if not refs:
            return {}
        self.env.cr.execute("""
            SELECT message_id, model, res_id, MIN(id)
              FROM mail_message
             WHERE message_id = ANY(%s) AND model IS NOT NULL
             GROUP BY message_id, model, res_id
        """, (list(refs),))
        by_ref = defaultdict(dict)
        for ref, model, res_id, msg_id in self.env.cr.fetchall():
            by_ref[ref][(model, res_id)] = msg_id
        parents = {}
        for mid, chain in wanted.items():
            for target in groups[mid][0].targets:
                for ref in chain:
                    parent = by_ref.get(mime.format_message_id(ref), {}).get(target)
                    if parent:
                        parents[(mid,) + target] = parent
                        break
        return parents

    @api.model
    def _create_entries(self, mailbox, to_create, parents, options):
        """Create attachments and mail.message records; {(mid, target): id}."""
        if not to_create:
            return {}
        subtype_id = self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_comment")
        names = self._record_names({target for _mid, target, _f, _c in to_create})
        # Attachments first: they need their record, the body needs their ids (cid:).
        att_vals, att_index = [], []
        for pos, (mid, target, _forced, cand) in enumerate(to_create):
            for att in cand.parsed.attachments or ():
                att_vals.append({
                    "name": att.filename or _("attachment"),
                    "raw": att.data,
                    "mimetype": att.content_type or "application/octet-stream",
                    "res_model": target[0],
                    "res_id": target[1],
                })
                att_index.append((pos, att))
        attachments_by_pos = defaultdict(list)
        if att_vals:
            Attachment = self.env["ir.attachment"].sudo()
            records = Attachment.create(att_vals)
            for record, (pos, att) in zip(records, att_index):
                attachments_by_pos[pos].append((record, att))
        values, forced_ids, bodies = [], [], []
        sanitized = {}
        body_field = self.env["mail.message"]._fields["body"]
        Message = self.env["mail.message"].sudo()
        for pos, (mid, target, forced, cand) in enumerate(to_create):
            parsed = cand.parsed
            atts = attachments_by_pos.get(pos, [])
            inline = {att.content_id: record for record, att in atts if att.content_id}
            if mid not in sanitized:
                raw_body, from_mail = self._body_html(parsed, options)
                note = self._skipped_note(parsed, options)
                if not from_mail:
                    body = raw_body
                elif inline and "cid:" in raw_body:
                    body = None  # per record: cid: images point at its own attachments
                else:
                    body = body_field.convert_to_column(raw_body, Message)
                sanitized[mid] = (raw_body, body, note)
            raw_body, body, note = sanitized[mid]
            if body is None:
                body = body_field.convert_to_column(self._replace_cids(raw_body, inline), Message)
            bodies.append((str(body) if body else "") + note)
            email_from = self._email_from(parsed)
            values.append({
                "model": target[0],
                "res_id": target[1],
                "record_name": names.get(target, False),
                "message_type": "email",
                "subtype_id": subtype_id,
                "is_internal": False,
                "author_id": cand.author_id or False,
                "email_from": email_from,
                "reply_to": email_from,
                "date": cand.date or datetime.utcnow().replace(microsecond=0),
                "subject": parsed.subject or False,
                "message_id": mime.format_message_id(mid),
                "parent_id": parents.get((mid,) + target, False),
                "attachment_ids": [(6, 0, [record.id for record, _att in atts])],
            })
            forced_ids.append(forced)
        messages = Message.with_context(
            mail_create_nosubscribe=True, mail_notrack=True, tracking_disable=True,
            mailsync_forced_ids=forced_ids if any(forced_ids) else None).create(values)
        # The body is written after the create, already sanitized exactly as the
        # field would (convert_to_column above): creating with it would
        # sanitize every body twice (column, then cache), the costliest part
        # of an import. One statement for the batch.
        messages.flush_recordset()
        self.env.cr.execute("""
            UPDATE mail_message m SET body = v.body
              FROM unnest(%s::int[], %s::text[]) AS v(id, body)
             WHERE m.id = v.id
        """, (messages.ids, bodies))
        messages.invalidate_recordset(["body"])
        # The unique key that makes concurrent imports of one email safe (see
        # mailsync.entry): a plain INSERT, so that a clash raises.
        keys = [(target[0], target[1], mid, message.id)
                for (mid, target, _f, _c), message in zip(to_create, messages)]
        self.env.cr.execute("""
            INSERT INTO mailsync_entry (model, res_id, message_id, mail_message_id)
            SELECT * FROM unnest(%s::varchar[], %s::int[], %s::varchar[], %s::int[])
        """, tuple(list(column) for column in zip(*keys)))
        return {(mid, target): message.id
                for (mid, target, _f, _c), message in zip(to_create, messages)}

    @api.model
    def _record_names(self, targets):
        by_model = defaultdict(set)
        for model, res_id in targets:
            by_model[model].add(res_id)
        names = {}
        for model, ids in by_model.items():
            for record in self.env[model].sudo().browse(sorted(ids)).exists():
                names[(model, record.id)] = record.display_name
        return names

    @api.model
    def _email_from(self, parsed):
        """The sender as shown in the chatter: readable Unicode, as Odoo's own
        mail gateway stores it (odoo.tools.formataddr with utf-8)."""
        if not parsed.from_:
            return False
        name, addr = parsed.from_[0]
        if not addr:
            return name or False
        try:
            return formataddr((name or "", addr))
        except Exception:  # noqa: BLE001 - odd names or domains must not stop the import
            return addr

    @api.model
    def _body_html(self, parsed, options):
        """Chatter body for the content options, as ``(html, from_mail)``.

        ``from_mail``: the HTML comes from the email and must be sanitized.
        Otherwise it was built here from escaped text (plaintext2html, our
        notes) and is safe as it is: sanitizing it again would only cost time.
        """
        content = options.content
        from_mail = False
        if content == "headers" or parsed.content == "headers":
            body = Markup("<p><em>%s</em></p>") % _(
                "Email content not imported (headers only).")
        elif content == "text" or not parsed.body_html:
            body = plaintext2html(parsed.body_text or "")
        else:
            body, from_mail = parsed.body_html, True
        return str(body), from_mail

    @api.model
    def _skipped_note(self, parsed, options):
        """HTML listing the attachments left out, or ''."""
        skipped = parsed.skipped_attachments or ()
        if not skipped or options.content == "headers":
            return ""
        items = Markup("").join(
            Markup("<li>%s (%s)</li>") % (s.filename or _("unnamed"), _human_size(s.size))
            for s in skipped)
        reason = (_("Attachments not imported (larger than the limit or attachments off):")
                  if any(s.reason == "too_large" for s in skipped)
                  else _("Attachments not imported (attachments are off for this mailbox):"))
        return str(Markup("<p><em>%s</em></p><ul>%s</ul>") % (reason, items))

    @api.model
    def _replace_cids(self, body, inline):
        def repl(match):
            record = inline.get(match.group(2).strip("<>"))
            if not record:
                return match.group(0)
            if not record.access_token:
                record.generate_access_token()
            return "%s/web/image/%s?access_token=%s" % (match.group(1), record.id, record.access_token)
        return _CID_SRC_RE.sub(repl, body)

    @api.model
    def _write_links(self, mailbox, groups, entry_ids, state):
        """One link per server copy, pointing at every chatter entry of its
        message. Planned (pending) links are completed with two SQL
        statements for the whole batch: one ORM write per link would cost
        more than the import itself."""
        Link = self.env["mailsync.link"].sudo()
        new_vals, planned, rel_rows = [], [], []
        for mid, cands in groups.items():
            ids = sorted(set(entry_ids[mid].values()))
            for cand in cands:
                if cand.link_id:
                    planned.append(cand.link_id)
                    rel_rows.extend((cand.link_id, msg_id) for msg_id in ids)
                else:
                    new_vals.append({
                        "mailbox_id": mailbox.id,
                        "folder_id": cand.folder_id,
                        "uid": cand.uid,
                        "message_id": mid,
                        "size": cand.size,
                        "state": state,
                        "date": cand.date,
                        "parent_ref": cand.parent_ref,
                        "mail_message_ids": [(6, 0, ids)],
                    })
        if new_vals:
            Link.create(new_vals)
        if planned:
            Link.flush_model()
            self.env.cr.execute("""
                UPDATE mailsync_link
                   SET state = %s, partner_ids_json = NULL, reserved_ids = NULL,
                       write_uid = %s, write_date = (now() AT TIME ZONE 'UTC')
                 WHERE id = ANY(%s)
            """, (state, self.env.uid, planned))
            if rel_rows:
                self.env.cr.execute("""
                    INSERT INTO mailsync_link_mail_message_rel (link_id, mail_message_id)
                    SELECT * FROM unnest(%s::int[], %s::int[])
                    ON CONFLICT DO NOTHING
                """, ([r[0] for r in rel_rows], [r[1] for r in rel_rows]))
            Link.browse(planned).invalidate_recordset(
                ["state", "partner_ids_json", "reserved_ids", "mail_message_ids",
                 "write_uid", "write_date"])
        return True

    @api.model
    def _link_children(self, message_ids):
        """Give a parent to entries imported before their parent (backfill runs
        newest first): children whose copy says it replies to one of
        ``message_ids`` and that have no parent yet, on the same record."""
        self.env.flush_all()
        self.env.cr.execute("""
            UPDATE mail_message child
               SET parent_id = parent.id
              FROM mailsync_link l
              JOIN mailsync_link_mail_message_rel r ON r.link_id = l.id
              JOIN mail_message parent ON parent.message_id = '<' || l.parent_ref || '>'
             WHERE l.parent_ref = ANY(%s)
               AND child.id = r.mail_message_id
               AND child.parent_id IS NULL
               AND parent.model = child.model AND parent.res_id = child.res_id
               AND parent.id <> child.id
        """, (list(message_ids),))
        if self.env.cr.rowcount:
            self.env["mail.message"].invalidate_model(["parent_id", "child_ids"])


def _human_size(size):
    size = float(size or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (size, unit)
        size /= 1024
    return "%d B" % size
