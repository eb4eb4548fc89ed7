# Run by scripts/demo.sh inside `odoo-bin shell` (``env`` is given by the shell).
# Connects the demo user's mailbox to the local mail server started by
# `python -m mailrig serve --demo`, whose details are in $DEMO_RIG_INFO. Idempotent.
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.getcwd())  # scripts/demo.sh runs this from the repository root
from mailrig import demo as rig_demo  # noqa: E402

info = json.loads(Path(os.environ["DEMO_RIG_INFO"]).read_text().splitlines()[0])
demo_account = next(u for u in info["users"] if u["login"].startswith("demo@"))
ca_pem = Path(info["ca_file"]).read_text()

rep = env.ref("base.user_demo")
manager = env.ref("base.user_admin")
rep.write({"groups_id": [(4, env.ref("imap_sent_sync.group_mailsync_user").id)]})
manager.write({"groups_id": [(4, env.ref("imap_sent_sync.group_mailsync_manager").id)]})

# The demo mail is exchanged with these contacts: make sure they exist with the
# addresses the mail uses (Odoo's demo data changes them between apps).
Partner = env["res.partner"].sudo()
for name, address in (rig_demo.AZURE, rig_demo.BRANDON, rig_demo.DECO, rig_demo.WOOD):
    partner = Partner.search([("name", "=", name)], limit=1)
    if not partner:
        Partner.create({"name": name, "email": address})
    elif partner.email_normalized != address.lower():
        partner.email = address

Mailbox = env["mailsync.mailbox"].sudo()
mailbox = Mailbox.search([("email", "=", demo_account["login"])], limit=1)
values = {
    "name": "Demo mailbox (local Dovecot)",
    "email": demo_account["login"],
    "user_id": rep.id,
    "provider": "custom",
    "imap_host": info["host"],
    "imap_port": info["imaps_port"],
    "imap_security": "ssl",
    "smtp_host": info["host"],
    "smtp_port": info["smtp_port"],
    "smtp_security": "starttls",
    "login": demo_account["login"],
    "secret": demo_account["password"],
    "ca_pem": ca_pem,
}
if mailbox:
    mailbox.write(values)
else:
    mailbox = Mailbox.create(values)
mailbox.action_test_connection()
print(f"demo mailbox {mailbox.email}: {mailbox.state}"
      + (f" ({mailbox.last_error})" if mailbox.state != "connected" else ""))
env.cr.commit()
if mailbox.state == "connected" and not mailbox.link_count:
    # First run: import the demo mail with Odoo's demo contacts right away, so the
    # contacts' chatter shows it when the newcomer logs in (the private message
    # from a stranger stays out).
    mailbox.action_start_backfill()
    env.cr.commit()
    stats = mailbox._sync_inbound(commit=True)
    print(f"demo backfill: {stats.as_dict().get('imported', 0)} emails imported into contacts' chatter")
