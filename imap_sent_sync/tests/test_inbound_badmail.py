"""Bad mail: the MIME corpus of tests/corpus, TNEF, RTF, something that is not an
email, an enormous message. Imported as well as can be, or skipped with a log
line; one bad message never stops its batch."""
import importlib.util
import os

from odoo.tests import tagged

from .inbound_common import InboundCase, make_mail

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "corpus")


def _mime_tests():
    """tests/test_mime.py holds the TNEF builder of the MIME tests; reuse it."""
    spec = importlib.util.spec_from_file_location("mailsync_root_test_mime",
                                                  os.path.join(ROOT, "tests", "test_mime.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@tagged("post_install", "-at_install")
class TestInboundBadMail(InboundCase):

    def test_corpus_tnef_rtf_garbage_and_enormous(self):
        mailbox, rig_user = self._connected_mailbox(import_max_attachment_mb=5)
        bob = self._contact("bob@example.org", "Bob")
        francois = self._contact("francois@example.org", "François")
        renee = self._contact("renee@example.org", "Renée")
        corpus = {}
        for name in sorted(os.listdir(CORPUS)):
            if name.endswith(".eml"):
                with open(os.path.join(CORPUS, name), "rb") as fh:
                    corpus[name] = fh.read()
        mime_tests = _mime_tests()
        tnef = mime_tests._mail_with_tnef(mime_tests.build_tnef(
            attachments=[(b"REPORT~1.PDF", "Quarterly report.pdf", b"%PDF-1.4 tnef")],
            html=b"<html><body><p>From Outlook</p></body></html>"))
        garbage = b"\x00\x01\x02 this is not an email at all \xff\xfe\r\n"
        enormous = make_mail("big@example.net", "bob@example.org", "enormous",
                             body="see the big file " * 1000,
                             attachments=[("huge.bin", os.urandom(12 * 1024 * 1024),
                                           "application/octet-stream"),
                                          ("small.txt", b"small", "text/plain")])
        good_after = make_mail("late@example.net", "bob@example.org", "good after the bad ones")
        messages = list(corpus.values()) + [tnef, garbage, enormous, good_after]
        self.rig.append_many(rig_user, "INBOX", messages)

        self._backfill(mailbox)

        entries = self._entries(bob)
        subjects = set(entries.mapped("subject"))
        # Every corpus message is in the chatter: to Bob, but broken_encoded_words
        # (to François) and raw_8bit_headers (to Renée, in raw latin-1).
        self.assertEqual(len(entries), len(corpus) - 2 + 3, sorted(subjects))
        self.assertEqual(len(self._entries(francois)), 1)
        self.assertEqual(len(self._entries(renee)), 1)
        self.assertIn("good after the bad ones", subjects)
        by_mid = {m.message_id: m for m in entries}
        rtf = by_mid["<rtf-only@example.com>"]
        self.assertIn("Café au lait", rtf.body)
        no_from = by_mid["<no-from@example.com>"]
        self.assertIn("mailer@example.net", no_from.email_from)
        no_date = by_mid["<no-date@example.com>"]
        self.assertTrue(no_date.date, "dated by INTERNALDATE")
        no_id = entries.filtered(lambda m: m.subject == "no id")
        self.assertTrue(no_id.message_id.endswith("@imap-sent-sync.invalid>"))
        eight_bit = self._entries(renee)
        self.assertIn("Grüße", eight_bit.subject)
        self.assertEqual(eight_bit.author_id, self.Partner, "zoe@example.com is no contact")
        self.assertIn("Zoë", eight_bit.email_from)
        tnef_entry = entries.filtered(lambda m: m.subject == "winmail")
        self.assertEqual(tnef_entry.attachment_ids.mapped("name"), ["Quarterly report.pdf"],
                         "winmail.dat is unpacked into its real attachments")
        self.assertIn("From Outlook", tnef_entry.body)
        big = entries.filtered(lambda m: m.subject == "enormous")
        self.assertEqual(big.attachment_ids.mapped("name"), ["small.txt"])
        self.assertIn("huge.bin", big.body)
        # The garbage was skipped, logged by folder and UID only.
        skipped = mailbox.log_ids.filtered(lambda l: l.outcome == "failure")
        self.assertEqual(len(skipped), 1, skipped.mapped("message"))
        self.assertIn("Skipped message UID", skipped.message)
        self.assertIn("INBOX", skipped.message)
        self.assertEqual(mailbox.backfill_state, "done")

    def test_a_failing_import_is_retried_alone(self):
        """A message that makes the database refuse the batch (here: a
        reserved id out of range) is skipped alone; the rest is imported."""
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        self.rig.append_many(rig_user, "INBOX", [
            make_mail(jane.email, rig_user.address, "m%d" % i, date=self._days_ago(i + 1))
            for i in range(3)])
        mailbox.action_start_backfill()
        while mailbox.backfill_state == "scanning":
            self._sync(mailbox, max_steps=1)
        link = self.env["mailsync.link"].search([("mailbox_id", "=", mailbox.id)], order="date desc",
                                                limit=1)
        link.reserved_ids = [2 ** 40]   # no int4 column takes that
        self._sync(mailbox)
        self.assertEqual(mailbox.backfill_state, "done")
        self.assertEqual(sorted(self._entries(jane).mapped("subject")), ["m1", "m2"])
        self.assertTrue(mailbox.log_ids.filtered(lambda l: l.outcome == "failure"))
        self.assertFalse(link.exists(), "the failed plan is dropped; a later backfill retries it")
