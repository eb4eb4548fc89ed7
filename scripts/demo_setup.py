# Run by scripts/demo.sh inside `odoo-bin shell` (``env`` is given by the shell).
# Connects the demo user's mailbox to the local mail server started by
# `python -m mailrig serve --demo`, whose details are in $DEMO_RIG_INFO. Idempotent.
import json
import os
from pathlib import Path

info = json.loads(Path(os.environ["DEMO_RIG_INFO"]).read_text().splitlines()[0])
demo_account = next(u for u in info["users"] if u["login"].startswith("demo@"))
ca_pem = Path(info["ca_file"]).read_text()

rep = env.ref("base.user_demo")
manager = env.ref("base.user_admin")
rep.write({"groups_id": [(4, env.ref("imap_sent_sync.group_mailsync_user").id)]})
manager.write({"groups_id": [(4, env.ref("imap_sent_sync.group_mailsync_manager").id)]})

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
