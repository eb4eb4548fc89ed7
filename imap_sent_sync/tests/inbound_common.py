"""Shared helpers of the inbound sync tests: real Dovecot (mailrig), real
PostgreSQL/Odoo; mail is seeded with rig.append / rig.append_many."""
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from unittest.mock import patch

from odoo.modules.registry import Registry

from odoo.addons.imap_sent_sync.models import mailsync_sync

from .common import MailsyncCase


def delete_committed_sync_data(db, mailbox_ids, partner_ids):
    """Remove what a test that really commits (crash, cron, concurrency) left in
    the shared test database: the contacts' imported mail and attachments, the
    mailboxes (their folders, links and log cascade) and the contacts."""
    with Registry(db).cursor() as cr:
        if partner_ids:
            cr.execute("DELETE FROM mail_message WHERE model = 'res.partner' AND res_id = ANY(%s)",
                       (list(partner_ids),))
            cr.execute("DELETE FROM ir_attachment WHERE res_model = 'res.partner' AND res_id = ANY(%s)",
                       (list(partner_ids),))
        if mailbox_ids:
            cr.execute("DELETE FROM mail_message WHERE model = 'mailsync.mailbox' AND res_id = ANY(%s)",
                       (list(mailbox_ids),))
            cr.execute("DELETE FROM mailsync_mailbox WHERE id = ANY(%s)", (list(mailbox_ids),))
        if partner_ids:
            cr.execute("DELETE FROM res_partner WHERE id = ANY(%s)", (list(partner_ids),))
        cr.commit()


def make_mail(frm, to, subject="Hello", body="Hello there", *, cc=None, bcc=None, date=None,
              msgid=True, in_reply_to=None, references=None, html=None, attachments=(),
              extra_headers=()):
    """Raw RFC 822 bytes. ``msgid``: True = a fresh one, str = that one, False = none."""
    msg = EmailMessage()
    msg["From"] = frm
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    if bcc:
        msg["Bcc"] = bcc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(timezone.utc))
    if msgid:
        msg["Message-ID"] = msgid if isinstance(msgid, str) else make_msgid(domain="example.com")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in extra_headers:
        msg[name] = value
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    for filename, data, mimetype in attachments:
        maintype, subtype = mimetype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def message_id_of(raw):
    for line in raw.split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    return None


class InboundCase(MailsyncCase):
    """A connected mailbox on a fresh rig user, contacts to match, helpers to sync."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Partner = cls.env["res.partner"]
        cls.Message = cls.env["mail.message"]

    def _connected_mailbox(self, layout="standard", user=None, **overrides):
        rig_user = self.rig.add_user(layout=layout)
        mailbox = self._create_rig_mailbox(user or self.user_rep, rig_user, **overrides)
        mailbox.action_test_connection()
        self.assertEqual(mailbox.state, "connected", mailbox.last_error)
        return mailbox, rig_user

    def _contact(self, email, name=None, **values):
        return self.Partner.create(dict(name=name or email.split("@")[0].title(), email=email,
                                        **values))

    def _uniq(self, prefix="c"):
        """A unique address local part, so tests sharing the rig never collide."""
        return "%s-%s" % (prefix, uuid.uuid4().hex[:10])

    def _sync(self, mailbox, **kwargs):
        """Run the engine in the test transaction (no commits)."""
        kwargs.setdefault("commit", False)
        return mailbox._sync_inbound(**kwargs)

    def _backfill(self, mailbox):
        mailbox.action_start_backfill()
        stats = self._sync(mailbox)
        self.assertEqual(mailbox.backfill_state, "done")
        return stats

    def _entries(self, record, message_id=None):
        domain = [("model", "=", record._name), ("res_id", "=", record.id),
                  ("message_type", "=", "email")]
        if message_id:
            domain.append(("message_id", "=", message_id))
        return self.Message.search(domain, order="id")

    def _days_ago(self, days):
        return datetime.now(timezone.utc) - timedelta(days=days)

    @contextmanager
    def _batch_sizes(self, scan=None, import_=None, poll=None):
        """Smaller batches, to see batching and ordering with a few messages."""
        with patch.object(mailsync_sync, "SCAN_BATCH", scan or mailsync_sync.SCAN_BATCH), \
                patch.object(mailsync_sync, "IMPORT_BATCH", import_ or mailsync_sync.IMPORT_BATCH), \
                patch.object(mailsync_sync, "POLL_BATCH", poll or mailsync_sync.POLL_BATCH):
            yield
