from . import models


def uninstall_hook(env):
    # Outbound: the outgoing servers made for mailboxes hold no password (it
    # lives in the mailbox's vault). Left behind they could only fail, while
    # Odoo kept routing the reps' mail to them.
    env["ir.mail_server"].with_context(active_test=False).search(
        [("mailsync_mailbox_id", "!=", False)]).unlink()
