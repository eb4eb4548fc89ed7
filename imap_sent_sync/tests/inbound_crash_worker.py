"""Subprocess of test_inbound_crash: runs the inbound sync on a real, committed
database so that the test can SIGKILL it mid-batch and start it again.

    python inbound_crash_worker.py setup  DB ADDONS JSON   -> prints {"mailbox": id, "partners": [...]}
    python inbound_crash_worker.py run    DB ADDONS MAILBOX_ID [import_batch] [scan_batch]

``run`` works one step at a time (each step is one transaction, committed at
its end, exactly as the cron does it) and prints "BEGIN n" before and "END n
<state> <imported>" after every step, flushed, so the test can kill it while a
step is in flight and then prove it was.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _env(db, addons):
    import odoo
    from odoo.tools import config
    config.parse_config(["--addons-path=%s" % addons, "-d", db, "--log-level=warn"])
    registry = odoo.modules.registry.Registry(db)
    return odoo, registry


def setup(db, addons, spec):
    odoo, registry = _env(db, addons)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        partners = env["res.partner"].create([{"name": "Crash Contact %d" % i, "email": email}
                                              for i, email in enumerate(spec["contacts"])])
        imap = spec["imap"]
        mailbox = env["mailsync.mailbox"].create({
            "user_id": env.ref("base.user_admin").id,
            "email": imap["login"], "login": imap["login"], "secret": imap["password"],
            "provider": "custom", "imap_host": imap["host"], "imap_port": imap["port"],
            "imap_security": "ssl", "ca_pem": imap["ca_pem"], "sync_frequency": "manual",
        })
        mailbox.action_test_connection()
        assert mailbox.state == "connected", mailbox.last_error
        for folder in mailbox.folder_ids:
            folder.sync_enabled = folder.path in spec["folders"]
        mailbox.action_start_backfill()
        cr.commit()
        print(json.dumps({"mailbox": mailbox.id, "partners": partners.ids}), flush=True)


def run(db, addons, mailbox_id, import_batch=None, scan_batch=None):
    odoo, registry = _env(db, addons)
    from odoo.addons.imap_sent_sync.models import mailsync_sync
    if import_batch:
        mailsync_sync.IMPORT_BATCH = int(import_batch)
    if scan_batch:
        mailsync_sync.SCAN_BATCH = int(scan_batch)
    step = 0
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        mailbox = env["mailsync.mailbox"].browse(int(mailbox_id))
        while True:
            step += 1
            print("BEGIN %d" % step, flush=True)
            stats = mailbox._sync_inbound(max_steps=1, commit=True)
            mailbox.invalidate_recordset()
            print("END %d %s %d" % (step, mailbox.backfill_state, mailbox.backfill_imported),
                  flush=True)
            if stats.errors:
                print("ERROR %s" % mailbox.sync_error, flush=True)
                sys.exit(2)
            if mailbox.backfill_state == "done" and not stats.steps:
                break
    print("DONE", flush=True)


if __name__ == "__main__":
    mode, db, addons = sys.argv[1:4]
    if mode == "setup":
        setup(db, addons, json.loads(sys.argv[4]))
    elif mode == "run":
        run(db, addons, *sys.argv[4:])
    else:
        sys.exit("unknown mode %s" % mode)
