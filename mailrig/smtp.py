"""SMTP submission servers (aiosmtpd) that deliver into the rig's Dovecot.

Three listeners share one handler:
  submission  STARTTLS required before anything else, AUTH only after it (587-like)
  smtps       implicit TLS, AUTH (465-like)
  plain       no STARTTLS offered at all, AUTH accepted in clear (a misconfigured
              server: the "STARTTLS requested but not offered" case)
Every listener requires AUTH before MAIL FROM, like a real submission service.
"""
import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from email.utils import parseaddr

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

_log = logging.getLogger(__name__)

# aiosmtpd logs every connection at INFO (and a deprecation warning per AUTH) on
# the "mail.log" logger; that floods
# test output when a test configures logging at INFO (Odoo does).
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass
class Delivery:
    """One message accepted by the rig's SMTP server."""
    mail_from: str
    rcpt_tos: list
    data: bytes                 # raw bytes as received after DATA (CRLF line ends)
    login: str = None           # authenticated login, or None
    listener: str = ""          # "submission", "smtps" or "plain"
    delivered_to: list = field(default_factory=list)  # rig addresses it was filed for
    saved_sent: str = None      # Sent folder it was copied to (smtp_saves_sent), if any
    queue_id: str = ""
    time: float = 0.0

    # Compatibility with aiosmtpd-style naming used by some tests.
    @property
    def envelope_from(self):
        return self.mail_from

    @property
    def content(self):
        return self.data


def _addr(address):
    return parseaddr(address or "")[1].lower()


class RigSMTPHandler:
    def __init__(self, rig, listener):
        self.rig = rig
        self.listener = listener

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        if self.rig.smtp_enforce_sender and _addr(address) != (session.auth_data or "").lower():
            return "553 5.7.1 <%s>: Sender address not owned by user %s" % (
                address, session.auth_data)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        addr = _addr(address)
        if addr.endswith("@" + self.rig.domain) and self.rig.get_user(addr) is None:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        fault = self.rig._take_smtp_fault()
        if fault:
            return fault
        data = envelope.original_content
        if data is None:
            data = envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        delivery = Delivery(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=bytes(data),
            login=session.auth_data if session.authenticated else None,
            listener=self.listener,
            queue_id=uuid.uuid4().hex[:12].upper(),
            time=time.time(),
        )
        loop = asyncio.get_running_loop()
        try:
            # Delivery does blocking I/O (LMTP, IMAP APPEND): keep it off the event loop.
            await loop.run_in_executor(None, self.rig._process_delivery, delivery)
        except Exception as exc:  # report as a temporary failure, like a real MTA
            _log.exception("mailrig: delivery failed")
            return "451 4.3.0 Local delivery failed: %s" % exc
        self.rig.deliveries.append(delivery)
        return "250 2.0.0 Ok: queued as %s" % delivery.queue_id


class SMTPServers:
    """The three aiosmtpd controllers of one rig."""

    def __init__(self, rig, ports, tls_context):
        self.rig = rig
        self.ports = ports  # {"submission": p, "smtps": p, "plain": p}
        self.tls_context = tls_context
        self.controllers = {}

    def _authenticator(self, server, session, envelope, mechanism, auth_data):
        try:
            login = auth_data.login.decode("utf-8")
            password = auth_data.password.decode("utf-8")
        except Exception:
            return AuthResult(success=False, handled=False)
        user = self.rig.get_user(login)
        if user is None or user.login != login.lower() or user.password != password:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=user.login)

    def start(self):
        common = dict(
            hostname="127.0.0.1",
            server_hostname=self.rig.domain,
            authenticator=self._authenticator,
            ready_timeout=10.0,
            enable_SMTPUTF8=True,
            data_size_limit=64 * 1024 * 1024,
        )
        specs = {
            "submission": dict(tls_context=self.tls_context, require_starttls=True,
                               auth_require_tls=True),
            # aiosmtpd only knows about STARTTLS-TLS; on an implicit-TLS listener the
            # whole session is encrypted, so allowing AUTH "without TLS" is correct.
            "smtps": dict(ssl_context=self.tls_context, auth_require_tls=False),
            "plain": dict(auth_require_tls=False),
        }
        try:
            for name, extra in specs.items():
                ctl = Controller(RigSMTPHandler(self.rig, name), port=self.ports[name],
                                 **common, **extra)
                ctl.start()
                self.controllers[name] = ctl
        except Exception:
            self.stop()
            raise

    def stop(self):
        for name, ctl in list(self.controllers.items()):
            try:
                ctl.stop()
            except Exception:  # already stopped / never fully started
                _log.debug("mailrig: stopping SMTP %s failed", name, exc_info=True)
            del self.controllers[name]


