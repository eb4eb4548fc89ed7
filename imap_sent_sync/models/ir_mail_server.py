import logging
import smtplib

from odoo import _, api, fields, models, modules
from odoo.exceptions import UserError
from odoo.tools import email_normalize

from ..mailsync.errors import explain

_logger = logging.getLogger(__name__)

CRLF = b"\r\n"


class MailboxSMTPSession:
    """An SMTP session opened for a mailbox-linked outgoing server.

    It behaves like Odoo's own ``SMTPConnection`` wrapper (every smtplib
    attribute is forwarded, ``from_filter``/``smtp_from`` are set by
    ``connect``) and additionally remembers the exact bytes of each message
    the server accepted, so that the Sent copy is the message that was sent,
    not a rebuild of it.
    """

    def __init__(self, smtp, mailbox_id):
        self.__obj__ = smtp
        self.mailsync_mailbox_id = mailbox_id
        self.from_filter = False
        self.smtp_from = False
        self.accepted = []  # [(envelope from, [envelope recipients], bytes)]
        original = smtp.sendmail

        def sendmail(from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
            # smtplib.send_message() flattens the email.message with a
            # BytesGenerator (CRLF) and ends here with the bytes it puts after
            # DATA; recording them after the server's 250 means a refused
            # message has no copy to keep.
            refused = original(from_addr, to_addrs, msg, mail_options, rcpt_options)
            data = msg if isinstance(msg, bytes) else smtplib._fix_eols(msg).encode("ascii")
            if not data.endswith(CRLF):
                data += CRLF  # smtplib.SMTP.data() adds it on the wire too
            if isinstance(to_addrs, str):
                to_addrs = [to_addrs]
            self.accepted.append((from_addr, [a for a in to_addrs if a not in (refused or {})],
                                  data))
            return refused

        # An instance attribute shadows the method: send_message() calls self.sendmail().
        smtp.sendmail = sendmail

    def __getattr__(self, name):
        return getattr(self.__obj__, name)

    def quit(self):
        try:
            return self.__obj__.quit()
        except smtplib.SMTPServerDisconnected:
            return None


class IrMailServer(models.Model):
    """Outgoing servers that belong to a synced mailbox.

    The server record carries host, port, security and login (so Odoo's usual
    routing by ``from_filter`` picks it for mail from the mailbox address), but
    never the password: Odoo stores ``smtp_pass`` in clear. The connection is
    opened by ``mailsync.smtp.connect_smtp`` with the secret read from the
    vault at that moment and the mailbox's TLS policy and custom CA.
    """

    _inherit = "ir.mail_server"

    mailsync_mailbox_id = fields.Many2one(
        "mailsync.mailbox", string="Synced Mailbox", index="btree_not_null",
        ondelete="cascade", readonly=True,
        help="This server sends as the mailbox's owner; its password is kept encrypted "
             "in the mailbox, and a copy of what it sends is filed in the mailbox's "
             "Sent folder.")

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    def write(self, vals):
        # smtp_pass is a clear-text column: a mailbox server never keeps one,
        # even if someone types it in the server form (the vault has it).
        if vals.get("smtp_pass") and (vals.get("mailsync_mailbox_id")
                                      or any(self.mapped("mailsync_mailbox_id"))):
            vals = dict(vals, smtp_pass=False)
        return super().write(vals)

    # ------------------------------------------------------------
    # Routing and connection
    # ------------------------------------------------------------

    def _find_mail_server(self, email_from, mail_servers=None):
        """A mailbox's server sends the mail of that address, and nothing else.

        Odoo falls back to "any server" when none matches an address (even one
        configured for another domain). A rep's own SMTP must never carry
        someone else's mail -- it would go out under the rep's login and land
        in the rep's Sent folder -- so mailbox servers take part only in the
        exact-address match.
        """
        if mail_servers is None:
            mail_servers = self.sudo().search([], order="sequence")
        linked = mail_servers.filtered("mailsync_mailbox_id")
        if not linked:
            return super()._find_mail_server(email_from, mail_servers=mail_servers)
        normalized = email_normalize(email_from)
        if normalized:
            for server in linked:
                if server.active and any(email_normalize(part) == normalized
                                         for part in (server.from_filter or "").split(",")):
                    return server, email_from
        return super()._find_mail_server(email_from, mail_servers=mail_servers - linked)

    def connect(self, host=None, port=None, user=None, password=None, encryption=None,
                smtp_from=None, ssl_certificate=None, ssl_private_key=None, smtp_debug=False,
                mail_server_id=None, allow_archived=False):
        # Same test-mode rule as Odoo: no connection at all while tests run,
        # unless a test lifts it on purpose.
        if modules.module.current_test:
            return None
        mail_server = self.env["ir.mail_server"]
        if mail_server_id:
            mail_server = self.sudo().browse(mail_server_id)
        elif not host:
            mail_server, smtp_from = self.sudo()._find_mail_server(smtp_from)
        if not (mail_server and mail_server.mailsync_mailbox_id):
            return super().connect(
                host=host, port=port, user=user, password=password, encryption=encryption,
                smtp_from=smtp_from, ssl_certificate=ssl_certificate,
                ssl_private_key=ssl_private_key, smtp_debug=smtp_debug,
                mail_server_id=mail_server_id, allow_archived=allow_archived)
        if not allow_archived and not mail_server.active:
            raise UserError(_('The server "%s" cannot be used because it is archived.',
                              mail_server.display_name))
        session = mail_server._mailsync_connect()
        session.from_filter = mail_server.from_filter
        session.smtp_from = smtp_from
        return session

    def _mailsync_connect(self):
        """Open the SMTP session of a mailbox-linked server (vault secret, mailbox TLS)."""
        from ..mailsync.errors import MailsyncError
        from ..mailsync.smtp import connect_smtp

        self.ensure_one()
        mailbox = self.mailsync_mailbox_id.sudo()
        endpoint = mailbox._get_smtp_endpoint()
        try:
            smtp = connect_smtp(endpoint)
        except MailsyncError as error:
            # Message and hint are ours and never contain the secret.
            raise UserError(explain(error)) from None
        return MailboxSMTPSession(smtp, mailbox.id)

    # ------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------

    @api.model
    def send_email(self, message, mail_server_id=None, smtp_server=None, smtp_port=None,
                   smtp_user=None, smtp_password=None, smtp_encryption=None,
                   smtp_ssl_certificate=None, smtp_ssl_private_key=None,
                   smtp_debug=False, smtp_session=None):
        own_session = None
        if smtp_session is None and not modules.module.current_test:
            # Open the session here rather than inside super(): it is the only
            # way to see what a mailbox-linked session accepted. Same call as
            # super() makes, so the same server is chosen; closed below as
            # super() would have.
            smtp_session = own_session = self.connect(
                smtp_server, smtp_port, smtp_user, smtp_password, smtp_encryption,
                smtp_from=message["From"], ssl_certificate=smtp_ssl_certificate,
                ssl_private_key=smtp_ssl_private_key, smtp_debug=smtp_debug,
                mail_server_id=mail_server_id)
        mailbox_session = smtp_session if isinstance(smtp_session, MailboxSMTPSession) else None
        if mailbox_session:
            mailbox_session.accepted = []
        try:
            result = super().send_email(
                message, mail_server_id=mail_server_id, smtp_server=smtp_server,
                smtp_port=smtp_port, smtp_user=smtp_user, smtp_password=smtp_password,
                smtp_encryption=smtp_encryption, smtp_ssl_certificate=smtp_ssl_certificate,
                smtp_ssl_private_key=smtp_ssl_private_key, smtp_debug=smtp_debug,
                smtp_session=smtp_session)
        finally:
            if own_session is not None:
                own_session.quit()
        if mailbox_session and mailbox_session.accepted:
            self._mailsync_record_sent(mailbox_session, message)
        return result

    def _mailsync_record_sent(self, session, message):
        """Queue the Sent copy of what ``session`` just sent, in this transaction.

        Runs after the server accepted the message: whatever happens here must
        not turn a sent mail into a failed one, so errors are logged, and the
        insert runs in a savepoint so that a failure cannot poison the
        transaction that records the send.
        """
        accepted, session.accepted = session.accepted, []
        try:
            with self.env.cr.savepoint():
                mailbox = self.env["mailsync.mailbox"].sudo().browse(session.mailsync_mailbox_id)
                Outbox = self.env["mailsync.outbox"].sudo()
                mail = Outbox._current_sending_mail(message)
                for envelope_from, recipients, data in accepted:
                    Outbox._enqueue_sent(mailbox, data, recipients=recipients, mail=mail)
        except Exception:
            _logger.exception("Email Sync: could not queue the Sent copy of %s (mailbox %s); "
                              "the mail itself was sent.", message["Message-Id"],
                              session.mailsync_mailbox_id)
