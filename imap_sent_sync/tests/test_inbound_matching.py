"""Matching mail to contacts: normalization, internal users, shared addresses,
blocklist, Bcc of own sent mail. No partner is ever created."""
from odoo.tests import tagged

from .inbound_common import InboundCase, make_mail


@tagged("post_install", "-at_install")
class TestInboundMatching(InboundCase):

    def test_normalized_addresses_match_and_no_partner_is_created(self):
        mailbox, rig_user = self._connected_mailbox()
        local = self._uniq("jane")
        jane = self._contact("Jane <%s@Example.COM>" % local.upper())
        idn = self._contact("%s@bücher.example" % self._uniq("idn"))
        partners_before = self.Partner.search_count([])
        raws = [
            make_mail('"Doe, Jane" <  %s@example.com >' % local, rig_user.address, "display name"),
            make_mail(rig_user.address, "%s@EXAMPLE.com" % local.upper(), "upper case"),
            make_mail(idn.email.replace("bücher", "xn--bcher-kva"), rig_user.address, "punycode"),
            make_mail("%s@nowhere.test" % self._uniq(), rig_user.address, "stranger"),
        ]
        self.rig.append_many(rig_user, "INBOX", raws)
        self._backfill(mailbox)
        self.assertEqual(sorted(self._entries(jane).mapped("subject")), ["display name", "upper case"])
        self.assertEqual(self._entries(idn).mapped("subject"), ["punycode"])
        self.assertEqual(self.Partner.search_count([]), partners_before, "no partner created")

    def test_internal_users_count_only_with_the_option(self):
        colleague = self.user_rep2.partner_id
        for include in (False, True):
            mailbox, rig_user = self._connected_mailbox(import_internal=include)
            subject = "internal %s" % include
            self.rig.append(rig_user, "INBOX", make_mail(colleague.email, rig_user.address, subject))
            self._backfill(mailbox)
            found = self._entries(colleague).filtered(lambda m: m.subject == subject)
            self.assertEqual(len(found), 1 if include else 0, include)
            if include:
                self.assertEqual(found.author_id, colleague)

    def test_internal_sender_is_author_but_not_a_target(self):
        mailbox, rig_user = self._connected_mailbox()
        self.user_rep.partner_id.email = rig_user.address
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        self.rig.append(rig_user, "Sent", make_mail(rig_user.address, jane.email, "from the rep"))
        self._backfill(mailbox)
        entry = self._entries(jane)
        self.assertEqual(entry.author_id, self.user_rep.partner_id)
        self.assertFalse(self._entries(self.user_rep.partner_id))

    def test_shared_address_posts_on_every_contact_with_it(self):
        """Defined behaviour (README): every active contact whose normalized
        email is a participant gets its own entry; we never guess which of two
        contacts sharing an address is the right one."""
        mailbox, rig_user = self._connected_mailbox()
        email = "%s@example.com" % self._uniq("shared")
        company = self._contact(email, "ACME", is_company=True)
        person = self._contact(email, "Ann at ACME", parent_id=company.id)
        duplicate = self._contact(email.upper(), "Ann (duplicate)")
        archived = self._contact(email, "Ann (archived)", active=False)
        self.rig.append(rig_user, "INBOX", make_mail(email, rig_user.address, "shared"))
        self._backfill(mailbox)
        for partner in (company, person, duplicate):
            self.assertEqual(len(self._entries(partner)), 1, partner.name)
        self.assertFalse(self._entries(archived))
        # author: the oldest of them
        self.assertEqual(self._entries(duplicate).author_id, company)

    def test_other_company_contacts_do_not_match(self):
        other_company = self.env["res.company"].create({"name": "Other Co"})
        mailbox, rig_user = self._connected_mailbox()
        email = "%s@example.com" % self._uniq("co")
        theirs = self._contact(email, company_id=other_company.id)
        self.rig.append(rig_user, "INBOX", make_mail(email, rig_user.address, "not ours"))
        self._backfill(mailbox)
        self.assertFalse(self._entries(theirs))
        self.assertEqual(mailbox.backfill_matched, 0)

    def test_blocklist_addresses_and_domains_are_never_imported(self):
        domain = "%s.test" % self._uniq("hr")
        vip = self._contact("%s@example.com" % self._uniq("vip"))
        hr = self._contact("boss@sub.%s" % domain)
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        self.env["ir.config_parameter"].sudo().set_param(
            "imap_sent_sync.blocklist", "%s\n*.%s" % (vip.email.upper(), domain))
        mailbox, rig_user = self._connected_mailbox()
        self.rig.append_many(rig_user, "INBOX", [
            make_mail(vip.email, rig_user.address, "vip"),
            make_mail(hr.email, rig_user.address, "hr", cc=jane.email),
            make_mail(jane.email, rig_user.address, "fine"),
        ])
        self._backfill(mailbox)
        self.assertFalse(self._entries(vip))
        self.assertFalse(self._entries(hr))
        self.assertEqual(self._entries(jane).mapped("subject"), ["fine"],
                         "a message involving a blocked address is skipped for everyone")

    def test_bcc_counts_on_own_sent_mail_only(self):
        mailbox, rig_user = self._connected_mailbox()
        jane = self._contact("%s@example.com" % self._uniq("jane"))
        stranger = "%s@nowhere.test" % self._uniq()
        self.rig.append(rig_user, "Sent", make_mail(rig_user.address, stranger, "own with bcc",
                                                    bcc=jane.email))
        self.rig.append(rig_user, "INBOX", make_mail(stranger, rig_user.address, "their bcc",
                                                     bcc=jane.email))
        self._backfill(mailbox)
        self.assertEqual(self._entries(jane).mapped("subject"), ["own with bcc"])
