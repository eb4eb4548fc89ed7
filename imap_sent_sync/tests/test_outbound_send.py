"""Sending through the mailbox's own SMTP, and the outbox entry of every send.

These tests really send: inside ``real_smtp()`` Odoo's test-mode SMTP guard
(``odoo.modules.module.current_test``) is lifted, only for that block, and
restored after. The rig's SMTP server delivers rig recipients into Dovecot,
where the tests find the message.
"""
import base64

from odoo.tests import tagged

from .outbound_common import OutboundCase, real_smtp


@tagged("post_install", "-at_install")
class TestOutboundSend(OutboundCase):

    def test_mail_server_follows_the_mailbox(self):
        mailbox, rig_user = self._connected_mailbox()
        server = mailbox.mail_server_id
        self.assertTrue(server.active)
        self.assertEqual(server.mailsync_mailbox_id, mailbox)
        self.assertEqual(server.from_filter, rig_user.address)
        self.assertEqual((server.smtp_host, server.smtp_port, server.smtp_encryption),
                         (self.rig.host, self.rig.smtps_port, "ssl"))
        self.assertEqual(server.smtp_user, rig_user.login)
        # The password is not copied: ir.mail_server stores it in clear.
        self.assertFalse(server.smtp_pass)
        self.env.cr.execute("SELECT smtp_pass FROM ir_mail_server WHERE id = %s", (server.id,))
        self.assertIsNone(self.env.cr.fetchone()[0])
        # Typed in the server form, a password is still not stored in clear.
        server.smtp_pass = "typed-by-an-admin"
        server.flush_recordset()
        self.env.cr.execute("SELECT smtp_pass FROM ir_mail_server WHERE id = %s", (server.id,))
        self.assertIsNone(self.env.cr.fetchone()[0])
        # Routing: Odoo picks it for mail from the mailbox address.
        found, _from = self.env["ir.mail_server"]._find_mail_server(
            '"Rita Rep" <%s>' % rig_user.address)
        self.assertEqual(found, server)

        mailbox.smtp_port = self.rig.smtp_port
        mailbox.smtp_security = "starttls"
        self.assertEqual((server.smtp_port, server.smtp_encryption),
                         (self.rig.smtp_port, "starttls"))
        mailbox.state = "disconnected"
        self.assertFalse(server.active)
        mailbox.state = "connected"
        self.assertTrue(server.active)
        self.assertEqual(mailbox.mail_server_id, server, "the same server is reused")

    def test_a_mailbox_server_never_carries_someone_elses_mail(self):
        mailbox, rig_user = self._connected_mailbox()
        Server = self.env["ir.mail_server"]
        others = Server.search([("mailsync_mailbox_id", "=", False)])
        others.active = False
        # Without any other server Odoo would fall back on any server at all.
        found, _from = Server._find_mail_server('"Olga" <olga@example.com>')
        self.assertFalse(found)
        generic = Server.create({"name": "Company", "smtp_host": "smtp.example.com"})
        found, _from = Server._find_mail_server('"Olga" <olga@example.com>')
        self.assertEqual(found, generic)
        found, _from = Server._find_mail_server(rig_user.address.upper())
        self.assertEqual(found, mailbox.mail_server_id)

    def test_uninstall_removes_the_mailbox_servers(self):
        from odoo.addons.imap_sent_sync import uninstall_hook

        mailbox, _rig_user = self._connected_mailbox()
        server = mailbox.mail_server_id
        generic = self.env["ir.mail_server"].create({"name": "Company", "smtp_host": "smtp.example.com"})
        uninstall_hook(self.env)
        self.assertFalse(server.exists())
        self.assertTrue(generic.exists())

    def test_draft_mailbox_has_no_server(self):
        rig_user = self.rig.add_user()
        mailbox = self._create_rig_mailbox(self.user_rep, rig_user)
        self.assertEqual(mailbox.state, "draft")
        self.assertFalse(mailbox.mail_server_id)

    def test_chatter_reply_goes_out_through_the_mailbox_smtp(self):
        mailbox, rep_box = self._connected_mailbox()
        customer, customer_box = self._customer()
        with real_smtp():
            message = self._post_as(self.user_rep, customer, "<p>Here is the quote.</p>", customer)
        deliveries = [d for d in self.rig.deliveries_to(customer_box.address)
                      if message.message_id.encode() in d.data]
        self.assertEqual(len(deliveries), 1)
        delivery = deliveries[0]
        # Same identity on both sides: AUTH as the mailbox, From the mailbox address.
        self.assertEqual(delivery.login, rep_box.login)
        self.assertEqual(delivery.mail_from, rep_box.address)
        self.assertEqual(delivery.delivered_to, [customer_box.address])
        self.assertEqual(self.rig.search(customer_box, "INBOX",
                                         ["HEADER", "Message-ID", message.message_id]),
                         self.rig.folder_uids(customer_box, "INBOX"))

        # The outbox holds the exact bytes the server received, queued in this
        # very transaction (nothing has been committed by the test).
        rows = self._outbox(mailbox)
        self.assertEqual(len(rows), 1)
        row = rows
        self.assertEqual(base64.b64decode(row.raw_message), delivery.data)
        self.assertEqual(row.message_id, message.message_id)
        self.assertEqual(row.mail_message_id, message)
        self.assertEqual(row.state, "queued")
        self.assertEqual(row.kind, "new")
        self.assertEqual(row.recipients, customer_box.address)
        self.assertEqual(row.size, len(delivery.data))
        trigger = self.env["ir.cron.trigger"].search(
            [("cron_id", "=", self.env.ref("imap_sent_sync.ir_cron_mailsync_outbox").id)])
        self.assertTrue(trigger, "immediate mode triggers the cron after the commit")

    def test_outbox_row_shares_the_send_transaction(self):
        """A send whose transaction rolls back leaves no outbox row behind, and
        the row exists as soon as the mail is marked sent (same transaction)."""
        mailbox, _rep_box = self._connected_mailbox()
        customer, _customer_box = self._customer()
        mail = self.env["mail.mail"].sudo().create({
            "email_from": self.user_rep.email_formatted,
            "recipient_ids": [(4, customer.id)],
            "subject": "Rolled back", "body_html": "<p>x</p>",
        })
        try:
            with self.env.cr.savepoint(), real_smtp():
                mail.send()
                self.assertEqual(mail.state, "sent")
                self.assertEqual(len(self._outbox(mailbox)), 1)
                raise RuntimeError("the sending transaction fails after the send")
        except RuntimeError:
            pass
        self.env.invalidate_all()
        self.assertFalse(self._outbox(mailbox))
        self.assertEqual(mail.state, "outgoing")

    def test_composer_and_template_sends_are_queued(self):
        mailbox, _rep_box = self._connected_mailbox()
        customer, customer_box = self._customer()
        composer = self.env["mail.compose.message"].with_user(self.user_rep).with_context(
            default_model="res.partner", default_res_ids=customer.ids,
            default_composition_mode="comment").create({
                "subject": "From the composer", "body": "<p>Composer body</p>",
                "partner_ids": [(6, 0, customer.ids)],
            })
        template = self.env["mail.template"].create({
            "name": "Quote follow-up", "model_id": self.env.ref("base.model_res_partner").id,
            "subject": "Template for {{ object.name }}",
            "email_from": "{{ user.email_formatted }}",
            "partner_to": "{{ object.id }}", "body_html": "<p>Template body</p>",
        })
        with real_smtp():
            composer._action_send_mail()
            template.with_user(self.user_rep).send_mail(customer.id, force_send=True)
        rows = self._outbox(mailbox)
        self.assertEqual(sorted(rows.mapped("subject")),
                         ["From the composer", "Template for Carla Customer"])
        inbox = self.rig.fetch_messages(customer_box, "INBOX")
        self.assertEqual(len(inbox), 2)
        self.assertEqual(sorted(self._parse(raw)["Message-ID"] for raw in inbox.values()),
                         sorted(rows.mapped("message_id")))

    def test_internal_notifications_only_when_enabled(self):
        mailbox, _rep_box = self._connected_mailbox()
        colleague_box = self.rig.add_user()
        self.user_rep2.partner_id.email = colleague_box.address
        customer, customer_box = self._customer()
        customer.message_subscribe(partner_ids=self.user_rep2.partner_id.ids)
        self.user_rep2.notification_type = "email"
        with real_smtp():
            message = self._post_as(self.user_rep, customer, "<p>One</p>", customer)
        # Two SMTP sends (customer, colleague following the record), one copy.
        self.assertEqual(len(self.rig.deliveries_to(colleague_box.address)), 1)
        self.assertEqual(len(self.rig.deliveries_to(customer_box.address)), 1)
        rows = self._outbox(mailbox)
        self.assertEqual(rows.mapped("recipients"), [customer_box.address])

        mailbox.sent_copy_internal = True
        with real_smtp():
            self._post_as(self.user_rep, customer, "<p>Two</p>", customer)
        rows = self._outbox(mailbox) - rows
        self.assertEqual(sorted(rows.mapped("kind")), ["internal", "new"])
        self.assertEqual(rows.filtered(lambda r: r.kind == "internal").recipients,
                         colleague_box.address)
        self.assertTrue(message)

    def test_reply_to_a_customer_is_classified_as_reply(self):
        mailbox, _rep_box = self._connected_mailbox()
        customer, _customer_box = self._customer()
        # The customer wrote first (an incoming email on the record).
        customer.message_post(body="<p>Can I get a quote?</p>", message_type="email",
                              author_id=customer.id, subtype_xmlid="mail.mt_comment")
        with real_smtp():
            self._post_as(self.user_rep, customer, "<p>Sure.</p>", customer)
        self.assertEqual(self._outbox(mailbox).kind, "reply")

    def test_copies_off_and_other_senders_are_not_queued(self):
        mailbox, _rep_box = self._connected_mailbox()
        mailbox.sent_copy_enabled = False
        customer, _customer_box = self._customer()
        with real_smtp():
            self._post_as(self.user_rep, customer, "<p>No copy wanted</p>", customer)
        self.assertFalse(self._outbox(mailbox))
        # Mail that does not go through a mailbox server is none of our business.
        self.assertFalse(self.env["mailsync.outbox"].search(
            [("recipients", "ilike", customer.email)]))

    def test_smtp_failure_is_a_failed_mail_and_no_copy(self):
        mailbox, _rep_box = self._connected_mailbox()
        customer, _customer_box = self._customer()
        with real_smtp():
            mailbox.sudo().write({"smtp_port": self.rig.closed_port()})
            message = self._post_as(self.user_rep, customer, "<p>Lost?</p>", customer)
        notification = message.notification_ids
        self.assertEqual(notification.notification_status, "exception")
        self.assertIn("refused", notification.mail_mail_id.failure_reason or
                      notification.failure_reason or "")
        self.assertFalse(self._outbox(mailbox))
