"""Shared base of the outbound tests: a rep whose Odoo address is a rig mailbox.

Sending for real: Odoo never opens SMTP while tests run
(``odoo.modules.module.current_test``). ``real_smtp()`` lifts exactly that
flag for the block and restores it, and nothing else: the thread's
``testing`` flag stays on, so Odoo still sends chatter mail synchronously in
the test transaction instead of after a commit that never comes.
"""
import contextlib
import email
import email.policy

import odoo

from .common import MailsyncCase


@contextlib.contextmanager
def real_smtp():
    """Let Odoo really connect to SMTP servers inside the block (tests only)."""
    saved = odoo.modules.module.current_test
    odoo.modules.module.current_test = False
    try:
        yield
    finally:
        odoo.modules.module.current_test = saved


class OutboundCase(MailsyncCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Reps write on contacts (chatter replies) like any employee does with
        # Odoo's default user rights ("Contact Creation").
        partner_manager = cls.env.ref("base.group_partner_manager")
        (cls.user_rep | cls.user_rep2).write({"groups_id": [(4, partner_manager.id)]})

    def _connected_mailbox(self, user=None, layout="standard", rig=None, **overrides):
        """A connected mailbox of ``user`` (default: the rep) on a fresh rig user,
        the user's Odoo address being the mailbox address so that Odoo routes
        their mail through the mailbox's SMTP (ir.mail_server from_filter).

        The state is set directly: the connection test has its own tests and
        costs a round of network steps per call.
        """
        user = user or self.user_rep
        rig = rig or self.rig
        rig_user = rig.add_user(layout=layout)
        user.partner_id.email = rig_user.address
        values = {
            "imap_host": rig.host, "imap_port": rig.imaps_port,
            "smtp_host": rig.host, "smtp_port": rig.smtps_port,
            "ca_pem": rig.ca_pem, "state": "connected",
        }
        values.update(overrides)
        mailbox = self._create_rig_mailbox(user, rig_user, **values)
        return mailbox, rig_user

    def _customer(self, rig_user=None, name="Carla Customer"):
        """A contact; with ``rig_user`` its address is a real rig mailbox, so the
        test can find the delivered mail in that INBOX."""
        rig_user = rig_user or self.rig.add_user()
        partner = self.env["res.partner"].create({"name": name, "email": rig_user.address})
        return partner, rig_user

    def _outbox(self, mailbox):
        return self.env["mailsync.outbox"].search([("mailbox_id", "=", mailbox.id)], order="id")

    def _run_cron(self):
        return self.env["mailsync.outbox"]._cron_process_outbox()

    @staticmethod
    def _parse(raw):
        return email.message_from_bytes(raw, policy=email.policy.default)

    def _post_as(self, user, record, body, partners, **kwargs):
        """message_post as ``user`` (a chatter reply), emailing ``partners``."""
        return record.with_user(user).message_post(
            body=body, partner_ids=partners.ids, message_type="comment",
            subtype_xmlid="mail.mt_comment", **kwargs)
