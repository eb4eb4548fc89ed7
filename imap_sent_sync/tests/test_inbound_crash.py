"""Crash safety: SIGKILL the sync process in the middle of a backfill, start it
again, and find every expected message exactly once.

The sync runs in a separate process (inbound_crash_worker.py) on the test
database with real commits, the way the cron runs it: a test transaction that
is rolled back could not show what a kill leaves behind. Everything this test
commits is deleted at the end.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import odoo
from odoo.tests import tagged
from odoo.tests.common import BaseCase, get_db_name

from mailrig import get_shared_rig

from .inbound_common import delete_committed_sync_data, make_mail, message_id_of

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inbound_crash_worker.py")


@tagged("post_install", "-at_install")
class TestInboundCrashSafety(BaseCase):

    def _worker(self, *args):
        return subprocess.Popen(
            [sys.executable, WORKER, args[0], self.db, self.addons, *map(str, args[1:])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def _cursor(self):
        return odoo.sql_db.db_connect(self.db).cursor()

    def _run_until(self, mailbox_id, should_kill):
        """Start a worker; SIGKILL it shortly after the first BEGIN line for which
        ``should_kill(state, imported)`` holds (state of the last finished step).
        Returns (killed, in_flight): in_flight = the kill hit a step that had
        begun and not committed."""
        proc = self._worker("run", mailbox_id, 20, 40)
        state, imported = "scanning", 0
        try:
            while True:
                line = proc.stdout.readline()
                if not line:
                    proc.wait(timeout=30)
                    self.fail("worker ended early (%s): %s" % (proc.returncode, proc.stderr.read()[-3000:]))
                line = line.strip()
                if line == "DONE":
                    proc.wait(timeout=30)
                    return False, False
                if line.startswith("END "):
                    _end, _step, state, imported = line.split()
                    imported = int(imported)
                elif line.startswith("BEGIN ") and should_kill(state, imported):
                    # Within a few ms of BEGIN: the step (IMAP round trips, SQL) has
                    # surely not committed yet, even on an idle machine.
                    time.sleep(random.uniform(0.0, 0.01))
                    proc.send_signal(signal.SIGKILL)
                    rest = proc.stdout.read().strip().splitlines()
                    proc.wait(timeout=30)
                    last = rest[-1] if rest else line
                    return True, last.startswith("BEGIN")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def test_sigkill_mid_backfill_then_restart_imports_everything_exactly_once(self):
        self.db = get_db_name()
        self.addons = odoo.tools.config["addons_path"]
        rig = get_shared_rig()
        user = rig.add_user()
        tag = uuid.uuid4().hex[:8]
        contacts = ["crash-%s-%d@example.com" % (tag, i) for i in range(4)]
        now = datetime.now(timezone.utc)
        inbox, sent, expected, copies = [], [], set(), 0
        for i in range(240):
            when = now - timedelta(hours=3 * i + 1)
            if i % 3 == 0:
                raw = make_mail("stranger-%s-%d@elsewhere.test" % (tag, i), user.address, "private %d" % i,
                                date=when)
            else:
                raw = make_mail(contacts[i % 4], user.address, "in %d" % i, date=when)
                expected.add(message_id_of(raw))
                copies += 1
            inbox.append({"msg": raw, "date": when})
            if i % 8 == 1:  # also filed in Sent: a second copy of the same email
                sent.append({"msg": raw, "date": when})
                copies += i % 3 != 0
        for i in range(40):
            when = now - timedelta(hours=5 * i + 2)
            raw = make_mail(user.address, contacts[i % 4], "out %d" % i, date=when)
            expected.add(message_id_of(raw))
            sent.append({"msg": raw, "date": when})
            copies += 1
        rig.append_many(user, "INBOX", inbox)
        rig.append_many(user, "Sent", sent)

        spec = {"contacts": contacts, "folders": ["INBOX", "Sent"],
                "imap": {"host": rig.host, "port": rig.imaps_port, "login": user.login,
                         "password": user.password, "ca_pem": rig.ca_pem}}
        setup = self._worker("setup", json.dumps(spec))
        out, err = setup.communicate(timeout=180)
        self.assertEqual(setup.returncode, 0, err[-3000:])
        ids = json.loads(out.strip().splitlines()[-1])
        mailbox_id, partner_ids = ids["mailbox"], ids["partners"]
        self.addCleanup(delete_committed_sync_data, self.db, [mailbox_id], partner_ids)

        # Kill it while scanning, twice while importing, then let it finish.
        plans = [
            # The first scan step: the scan may have only a couple of steps, so a
            # random pick could miss it and let the backfill finish.
            lambda state, imported: state == "scanning",
            lambda state, imported: state == "importing" and imported >= 40,
            lambda state, imported: state == "importing" and imported >= 110,
        ]
        in_flight = 0
        for should_kill in plans:
            killed, hit = self._run_until(mailbox_id, should_kill)
            self.assertTrue(killed, "the backfill ended before the planned kill")
            in_flight += hit
        self.assertGreaterEqual(in_flight, 1, "at least one kill landed inside a step")
        killed, _hit = self._run_until(mailbox_id, lambda state, imported: False)
        self.assertFalse(killed)

        with self._cursor() as cr:
            cr.execute("""
                SELECT COUNT(*), COUNT(DISTINCT message_id), array_agg(DISTINCT message_id)
                  FROM mail_message
                 WHERE model = 'res.partner' AND res_id = ANY(%s) AND message_type = 'email'
            """, (partner_ids,))
            count, distinct, found = cr.fetchone()
            self.assertEqual(count, len(expected), "every expected message once, no duplicate")
            self.assertEqual(distinct, len(expected))
            self.assertEqual(set(found), expected)
            cr.execute("""
                SELECT COUNT(*), COUNT(DISTINCT (folder_id, uid)),
                       COUNT(*) FILTER (WHERE state = 'synced')
                  FROM mailsync_link WHERE mailbox_id = %s
            """, (mailbox_id,))
            self.assertEqual(cr.fetchone(), (copies, copies, copies), "one link per server copy")
            cr.execute("SELECT backfill_state FROM mailsync_mailbox WHERE id = %s",
                       (mailbox_id,))
            self.assertEqual(cr.fetchone()[0], "done")
            # The chatter order (by id) follows the dates despite kills and restarts.
            cr.execute("""
                SELECT date FROM mail_message
                 WHERE model = 'res.partner' AND res_id = %s AND message_type = 'email' ORDER BY id
            """, (partner_ids[0],))
            dates = [row[0] for row in cr.fetchall()]
            self.assertEqual(dates, sorted(dates))
