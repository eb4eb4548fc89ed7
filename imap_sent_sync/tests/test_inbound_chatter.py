"""Chatter entries: fields, sanitizing, attachments, threading, no notification,
content options."""
from datetime import datetime, timezone

from odoo.tests import tagged

from .inbound_common import InboundCase, make_mail, message_id_of

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
       b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
       b"\x00\x00IEND\xaeB`\x82")


@tagged("post_install", "-at_install")
class TestInboundChatter(InboundCase):

    def test_entry_fields_sanitized_html_and_attachments(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"), "Jane Doe")
        sent = datetime(2026, 11, 18, 9, 30, 5, tzinfo=timezone.utc)
        raw = make_mail(
            "Jane Doe <%s>" % jane.email.upper(), rig_user.address, "Quote for Q4",
            body="plain alternative", date=sent,
            html='<p onclick="steal()">Here is the <b>quote</b></p><script>alert(1)</script>',
            attachments=[("quote.pdf", b"%PDF-1.4 quote", "application/pdf")])
        self.rig.append(rig_user, "INBOX", raw, msg_time=self._days_ago(3))
        self._backfill(mailbox)

        entry = self._entries(jane)
        self.assertEqual(len(entry), 1)
        self.assertEqual(entry.message_type, "email")
        self.assertEqual(entry.subtype_id, self.env.ref("mail.mt_comment"))
        self.assertEqual(entry.date, sent.replace(tzinfo=None), "dated by the Date header")
        self.assertEqual(entry.author_id, jane)
        self.assertEqual(entry.subject, "Quote for Q4")
        self.assertEqual(entry.message_id, message_id_of(raw))
        self.assertIn("<b>quote</b>", entry.body)
        self.assertNotIn("script", entry.body)
        self.assertNotIn("onclick", entry.body)
        self.assertEqual(entry.attachment_ids.mapped("name"), ["quote.pdf"])
        self.assertEqual(entry.attachment_ids.raw, b"%PDF-1.4 quote")
        self.assertEqual((entry.attachment_ids.res_model, entry.attachment_ids.res_id),
                         ("res.partner", jane.id))

    def test_plain_text_is_converted_and_unknown_sender_is_email_from(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        outsider = "Omar Outsider <%s@outside.test>" % self._uniq("omar")
        raw = make_mail(outsider, "%s, %s" % (rig_user.address, jane.email), "cc'd",
                        body="Line one\nLine <two> & more")
        self.rig.append(rig_user, "INBOX", raw)
        self._backfill(mailbox)
        entry = self._entries(jane)
        self.assertFalse(entry.author_id)
        self.assertIn("outside.test", entry.email_from)
        self.assertRegex(str(entry.body), r"Line one<br/?>Line &lt;two&gt; &amp; more")

    def test_threading_parent_whatever_the_import_order(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        first = make_mail(jane.email, rig_user.address, "Question", date=self._days_ago(4))
        first_id = message_id_of(first)
        reply = make_mail(rig_user.address, jane.email, "Re: Question", date=self._days_ago(3),
                          in_reply_to=first_id, references=first_id)
        reply_id = message_id_of(reply)
        again = make_mail(jane.email, rig_user.address, "Re: Re: Question", date=self._days_ago(2),
                          in_reply_to=reply_id, references="%s %s" % (first_id, reply_id))
        self.rig.append(rig_user, "INBOX", first, msg_time=self._days_ago(4))
        self.rig.append(rig_user, "Sent", reply, msg_time=self._days_ago(3))
        self.rig.append(rig_user, "INBOX", again, msg_time=self._days_ago(2))
        # One message per import batch: newest first means children before parents.
        with self._batch_sizes(import_=1):
            self._backfill(mailbox)
        entries = {m.subject: m for m in self._entries(jane)}
        self.assertFalse(entries["Question"].parent_id)
        self.assertEqual(entries["Re: Question"].parent_id, entries["Question"])
        self.assertEqual(entries["Re: Re: Question"].parent_id, entries["Re: Question"])
        # New mail found by the poll threads onto what is there already.
        last = make_mail(jane.email, rig_user.address, "Re: thanks", in_reply_to=message_id_of(again))
        self.rig.append(rig_user, "INBOX", last)
        mailbox.action_sync_now()
        self._sync(mailbox)
        self.assertEqual(self._entries(jane, message_id_of(last)).parent_id, entries["Re: Re: Question"])

    def test_importing_notifies_nobody(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        # Followers with every reason to be told: the rep, a colleague, the contact.
        jane.message_subscribe(partner_ids=[self.user_rep.partner_id.id,
                                            self.user_rep2.partner_id.id, jane.id])
        followers = jane.message_follower_ids
        mails_before = self.env["mail.mail"].sudo().search_count([])
        notifs_before = self.env["mail.notification"].sudo().search_count([])
        self.rig.append_many(rig_user, "INBOX", [
            make_mail(jane.email, rig_user.address, "n%d" % i) for i in range(3)])
        self._backfill(mailbox)
        entries = self._entries(jane)
        self.assertEqual(len(entries), 3)
        self.assertEqual(self.env["mail.mail"].sudo().search_count([]), mails_before)
        self.assertEqual(self.env["mail.notification"].sudo().search_count([]), notifs_before)
        self.assertFalse(entries.notification_ids)
        self.assertFalse(entries.partner_ids, "no recipient, no inbox entry")
        self.assertEqual(jane.message_follower_ids, followers, "nobody subscribed")
        self.assertFalse(entries.filtered("needaction"))

    def test_content_text_only_and_headers_only(self):
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        for content in ("text", "headers"):
            mailbox, rig_user = self._connected_mailbox(import_content=content)
            raw = make_mail(jane.email, rig_user.address, "content %s" % content,
                            body="the plain words", html="<p>the <i>html</i> words</p>",
                            attachments=[("a.txt", b"hello", "text/plain")])
            self.rig.append(rig_user, "INBOX", raw)
            self._backfill(mailbox)
            entry = self._entries(jane).filtered(lambda m: m.subject == "content %s" % content)
            self.assertEqual(len(entry), 1)
            if content == "text":
                self.assertIn("the plain words", entry.body)
                self.assertNotIn("<i>", entry.body)
                self.assertEqual(entry.attachment_ids.mapped("name"), ["a.txt"])
            else:
                self.assertNotIn("words", entry.body)
                self.assertIn("headers only", entry.body)
                self.assertFalse(entry.attachment_ids)

    def test_attachments_off_and_size_limit_are_named_in_the_entry(self):
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        small, big = b"s" * 1000, b"B" * (2 * 1024 * 1024 + 10)
        cases = {"off": dict(import_attachments=False),
                 "limit": dict(import_max_attachment_mb=1)}
        for name, options in cases.items():
            mailbox, rig_user = self._connected_mailbox(**options)
            raw = make_mail(jane.email, rig_user.address, "att %s" % name, body="see files",
                            attachments=[("small.bin", small, "application/octet-stream"),
                                         ("big.bin", big, "application/octet-stream")])
            self.rig.append(rig_user, "INBOX", raw)
            self._backfill(mailbox)
            entry = self._entries(jane).filtered(lambda m: m.subject == "att %s" % name)
            if name == "off":
                self.assertFalse(entry.attachment_ids)
                self.assertIn("small.bin", entry.body)
            else:
                self.assertEqual(entry.attachment_ids.mapped("name"), ["small.bin"])
                self.assertNotIn("small.bin", entry.body)
            self.assertIn("big.bin", entry.body)
            self.assertIn("2.0 MB", entry.body)

    def test_inline_images_point_at_their_attachment(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        from email.message import EmailMessage
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = jane.email, rig_user.address, "logo"
        msg["Message-ID"] = "<logo-%s@example.com>" % self._uniq()
        msg.set_content("logo below")
        msg.add_alternative('<p>Logo: <img src="cid:logo123"></p>', subtype="html")
        msg.get_payload()[1].add_related(PNG, "image", "png", cid="<logo123>", filename="logo.png")
        self.rig.append(rig_user, "INBOX", msg.as_bytes())
        self._backfill(mailbox)
        entry = self._entries(jane)
        image = entry.attachment_ids.filtered(lambda a: a.name == "logo.png")
        self.assertTrue(image)
        self.assertIn("/web/image/%s?access_token=%s" % (image.id, image.access_token), entry.body)
        self.assertNotIn("cid:", entry.body)

    def test_data_url_images_become_attachments_as_in_odoos_gateway(self):
        # mail.message turns data: images of a posted body into attachments;
        # the importer writes bodies itself, so the MIME layer does it.
        import base64
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        html = '<p>Chart: <img src="data:image/png;base64,%s"></p>' % base64.b64encode(PNG).decode()
        self.rig.append(rig_user, "INBOX", make_mail(jane.email, rig_user.address, "chart",
                                                     html=html))
        self._backfill(mailbox)
        entry = self._entries(jane)
        image = entry.attachment_ids.filtered(lambda a: a.name == "image1.png")
        self.assertEqual(image.raw, PNG)
        self.assertEqual((image.res_model, image.res_id), ("res.partner", jane.id))
        self.assertIn("/web/image/%s?access_token=%s" % (image.id, image.access_token), entry.body)
        self.assertNotIn("data:", entry.body)
