#!/usr/bin/env python3
"""Outbound benchmark (issue 4, acceptance 10): Sent copies of mail sent from Odoo.

Run from the repository root with the Odoo virtualenv's Python::

    /opt/odoo-18.0-venv/bin/python bench/bench_outbound.py           # full run (~4 min)
    /opt/odoo-18.0-venv/bin/python bench/bench_outbound.py --quick   # smoke run

Everything runs on loopback: a private mailrig (Dovecot + the aiosmtpd submission
server, in this process), the local PostgreSQL, and a real Odoo 18 server process
(``odoo-bin``, threaded mode, ``--max-cron-threads 2``) on the database
mailsync_bench_outbound (dropped at the end unless --keep) with imap_sent_sync
installed -- the committed one (``git archive HEAD``, or ``--addons-from REV``;
``--addons-from worktree`` uses the checkout as it is).

1. Setup over JSON-RPC, like a user would: a rep whose address is a rig mailbox,
   the mailbox created with its app password and connected by the connection test
   (which also creates the linked outgoing mail server). The rep's Sent folder is
   pre-filled with ``--history`` older messages, as a real one is.
2. Latency (immediate mode): ``--sends`` chatter replies posted by the rep over
   JSON-RPC at ``--rate`` per second. Odoo sends each through the rep's SMTP after
   the request commits, queues the outbox row in that transaction and triggers the
   cron; Odoo's own cron runner files the copy. Latency of one message = time its
   copy appears in the rep's Sent folder (watched by a UID FETCH poll every 5 ms)
   minus the time the SMTP server accepted it.
3. Raw APPEND rate of the same Dovecot in the same run: ``--raw`` messages appended
   one per APPEND command (imapclient), and MULTIAPPEND by 100 for reference.
4. Drain: ``--queue`` outbox rows (the same kind of messages) queued but held back,
   then released at once and filed by the cron runner; appends/s = rows / wall time
   from release to the last row filed. Twice: with the shipped default ("auto":
   for a batch this size, UID SEARCH SINCE + a header FETCH finds existing copies)
   and with the existing-copy check forced to OR'd UID SEARCH HEADER Message-ID, then
   with the default again (the first drain of a run also warms the caches).
   Checks: every row filed, each Message-ID exactly once in the folder.
5. Existing-copy check alone: 500 Message-IDs (half present) against the Sent folder.

Prints a table and writes bench/results/outbound-<timestamp>.json. The worker
steps that need the Odoo API in-process (queueing the drain rows) are this file
run with --worker.
"""
import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)
if "imap_sent_sync" not in sys.modules:
    # The addon's __init__ imports its Odoo models, importable only as
    # odoo.addons.imap_sent_sync; the pure mailsync package needs none of that.
    import types
    _package = types.ModuleType("imap_sent_sync")
    _package.__path__ = [os.path.join(REPO, "imap_sent_sync")]
    sys.modules["imap_sent_sync"] = _package

ODOO_SRC = os.environ.get("ODOO_SRC", "/opt/odoo-18.0")
ODOO_VENV = os.environ.get("ODOO_VENV", "/opt/odoo-18.0-venv")
ODOO_PY = os.path.join(ODOO_VENV, "bin", "python")
ODOO_BIN = os.path.join(ODOO_SRC, "odoo-bin")
ODOO_ADDONS = [os.path.join(ODOO_SRC, "addons"), os.path.join(ODOO_SRC, "odoo", "addons")]
DEFAULT_DB = "mailsync_bench_outbound"
SEED = 4242
TARGETS = {"latency_p95_s": 2.0}


def log(msg, *args):
    sys.stderr.write("[bench-out %s] %s\n" % (time.strftime("%H:%M:%S"), msg % args if args else msg))
    sys.stderr.flush()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values, pct):
    values = sorted(values)
    if not values:
        return None
    k = (len(values) - 1) * pct / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


# ----------------------------------------------------------------------------- messages
def odoo_like_message(index, sender, to, rng, when):
    """A message shaped like Odoo's outgoing mail: multipart/alternative (text +
    HTML), Odoo-style Message-ID and References, ~10 % with a PDF attachment."""
    msg = EmailMessage()
    msg["Message-Id"] = "<%d.%d.%06d-openerp-res.partner-%d@bench.odoo.test>" % (
        SEED, int(when.timestamp()), index, 1000 + index % 50)
    msg["References"] = "<thread-%d@bench.odoo.test>" % (index % 50)
    msg["Subject"] = "Re: Quote #%05d for your project" % index
    msg["From"] = '"Bench Rep" <%s>' % sender
    msg["Reply-To"] = '"Bench Rep" <%s>' % sender
    msg["To"] = '"Customer %d" <%s>' % (index % 50, to)
    msg["Date"] = format_datetime(when)
    msg["X-Odoo-Objects"] = "res.partner-%d" % (1000 + index % 50)
    paragraphs = ["Paragraph %d of the reply: %s" % (
        p, " ".join(rng.choice(("price", "delivery", "quote", "order", "thanks", "week",
                                 "schedule", "support", "invoice", "contract"))
                    for _ in range(rng.randint(20, 80)))) for p in range(rng.randint(2, 8))]
    msg.set_content("\n\n".join(paragraphs) + "\n")
    msg.add_alternative("<div>%s</div>" % "".join("<p>%s</p>" % p for p in paragraphs),
                        subtype="html")
    if rng.random() < 0.10:
        msg.add_attachment(rng.randbytes(rng.randint(30_000, 300_000)), maintype="application",
                           subtype="pdf", filename="quote-%05d.pdf" % index)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def message_set(n, sender, to, offset=0, when=None):
    rng = random.Random(SEED + offset)
    when = when or datetime.now(timezone.utc).replace(microsecond=0)
    return [odoo_like_message(offset + i, sender, to, rng, when) for i in range(n)]


# ----------------------------------------------------------------------------- odoo
class JsonRpc:
    def __init__(self, url, db):
        self.url, self.db = url.rstrip("/"), db
        self.uid = self.password = None

    def call(self, service, method, *args):
        payload = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1,
                              "params": {"service": service, "method": method, "args": args}})
        request = urllib.request.Request(self.url + "/jsonrpc", payload.encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
        if answer.get("error"):
            error = answer["error"]
            debug = (error.get("data") or {}).get("debug") or ""
            raise RuntimeError("%s\n%s" % (error.get("message"), debug[-4000:]))
        return answer["result"]

    def login(self, login, password):
        self.uid = self.call("common", "login", self.db, login, password)
        if not self.uid:
            raise RuntimeError("login failed for %s" % login)
        self.password = password
        return self

    def __call__(self, model, method, *args, **kwargs):
        return self.call("object", "execute_kw", self.db, self.uid, self.password, model, method,
                         list(args), kwargs)


def run(cmd, **kwargs):
    log("$ %s", " ".join(cmd[:6]) + (" ..." if len(cmd) > 6 else ""))
    return subprocess.run(cmd, check=True, **kwargs)


def write_conf(path, data_dir, db, addons_dir):
    with open(path, "w") as fh:
        fh.write("[options]\naddons_path = %s\ndata_dir = %s\ndb_name = %s\n"
                 "list_db = False\nwithout_demo = all\n"
                 % (",".join(ODOO_ADDONS + [addons_dir]), data_dir, db))


def addons_from(rev, workdir):
    """Directory holding the imap_sent_sync to benchmark: the checkout as it is
    ("worktree") or a committed revision extracted with git archive (default
    HEAD), so that a run never measures files someone is editing."""
    if rev == "worktree":
        return REPO
    dest = os.path.join(workdir, "addons")
    os.makedirs(dest)
    archive = subprocess.run(["git", "-C", REPO, "archive", rev, "imap_sent_sync"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return dest


class OdooServer:
    def __init__(self, conf, db, workdir, cron_threads):
        self.conf, self.db, self.workdir = conf, db, workdir
        self.port = free_port()
        self.cron_threads = cron_threads
        self.proc = None
        self.logfile = os.path.join(workdir, "odoo-server.log")

    def start(self):
        cmd = [ODOO_PY, ODOO_BIN, "-c", self.conf, "-d", self.db, "--db-filter", "^%s$" % self.db,
               "--http-port", str(self.port), "--gevent-port", str(free_port()),
               "--max-cron-threads", str(self.cron_threads), "--workers", "0",
               "--log-level", "warn", "--logfile", self.logfile]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        url = "http://127.0.0.1:%d" % self.port
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("odoo-bin exited, see %s" % self.logfile)
            try:
                with urllib.request.urlopen(url + "/web/health", timeout=2):
                    return url
            except Exception:
                time.sleep(0.3)
        raise RuntimeError("odoo-bin did not answer within 120 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def pg_connect(db):
    import psycopg2
    return psycopg2.connect(dbname=db)


# ----------------------------------------------------------------------------- worker
def worker_main(argv):
    """--worker enqueue CONF DB MAILBOX_ID N SENDER TO STRATEGY OFFSET OUT: queue N held-back rows."""
    _, action, conf, db, mailbox_id, count, sender, to, strategy, offset, out = argv
    import odoo
    from odoo.tools import config
    config.parse_config(["-c", conf, "-d", db])
    registry = odoo.modules.registry.Registry(db)
    held = datetime(2099, 1, 1)
    # Same bytes every run but for Date and Message-ID (they carry the send time).
    messages = message_set(int(count), sender, to, offset=int(offset))
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        # "auto" is the shipped default (no parameter): search for a few ids, SINCE for more.
        env["ir.config_parameter"].set_param("imap_sent_sync.sent_copy_existing_strategy",
                                             strategy if strategy != "auto" else False)
        mailbox = env["mailsync.mailbox"].browse(int(mailbox_id))
        Outbox = env["mailsync.outbox"]
        ids = []
        for raw in messages:
            row = Outbox._enqueue_sent(mailbox, raw, recipients=[to])
            ids.append(row.id)
        Outbox.browse(ids).write({"next_try": held})
        cr.commit()
    with open(out, "w") as fh:
        json.dump({"ids": ids, "bytes": sum(len(m) for m in messages)}, fh)


# ----------------------------------------------------------------------------- phases
class SentWatcher(threading.Thread):
    """Sees new messages in a folder: UID SEARCH UID <last+1>:* every 5 ms, then the
    Message-ID header of the new ones."""

    def __init__(self, rig, user, folder):
        super().__init__(daemon=True)
        self.rig, self.user, self.folder = rig, user, folder
        self.seen = {}
        self.stop_event = threading.Event()

    def run(self):
        from imap_sent_sync.mailsync.sent_copy import normalize_message_id
        from email.parser import BytesHeaderParser
        import imaplib
        client = self.rig.imap_client(self.user)
        status = client.select_folder(self.folder, readonly=True)
        last = status[b"UIDNEXT"] - 1
        parser = BytesHeaderParser()
        self.reconnects = 0
        while not self.stop_event.is_set():
            try:
                client.noop()
                new = [uid for uid in client.search(["UID", "%d:*" % (last + 1)]) if uid > last]
                data = client.fetch(new, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if new else {}
            except (imaplib.IMAP4.abort, OSError):
                # Dropped (server stopped or restarted): reconnect as soon as it
                # answers again; a late "seen" can only make latency look worse.
                self.reconnects += 1
                while not self.stop_event.is_set():
                    try:
                        client = self.rig.imap_client(self.user)
                        client.select_folder(self.folder, readonly=True)
                        break
                    except Exception:
                        time.sleep(0.05)
                continue
            now = time.time()
            for uid, item in sorted(data.items()):
                if uid <= last:
                    continue
                last = uid
                header = item[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]
                mid = normalize_message_id(parser.parsebytes(header).get("Message-ID"))
                self.seen.setdefault(mid, []).append((uid, now))
            time.sleep(0.005)
        client.logout()


def paced_sends(rpc_rep, customer_id, sends, rate, on_send=None):
    """message_post ``sends`` chatter replies at ``rate``/s; [(message id, wall time,
    RPC seconds)]."""
    start = time.monotonic()
    sent = []
    for i in range(sends):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if on_send:
            on_send(i)
        t0 = time.monotonic()
        message_id = rpc_rep("res.partner", "message_post", [customer_id],
                             body="<p>Reply %d: the revised quote is below.</p>" % i,
                             partner_ids=[customer_id], message_type="comment",
                             subtype_xmlid="mail.mt_comment")
        sent.append((message_id, time.time(), time.monotonic() - t0))
    return sent


def copies_of(rig, rpc_rep, watcher, sent, timeout=120):
    """Wait until the copies of ``sent`` are in Sent; {Message-ID: (accepted at,
    [seen at...], rpc seconds)} for each message (seen empty when missing)."""
    from imap_sent_sync.mailsync.sent_copy import normalize_message_id
    rows = rpc_rep("mail.message", "read", [m for m, _t, _r in sent], fields=["message_id"])
    mids = {row["id"]: normalize_message_id(row["message_id"]) for row in rows}
    deadline = time.monotonic() + timeout
    wanted = set(mids.values())
    while time.monotonic() < deadline and not wanted <= set(watcher.seen):
        time.sleep(0.05)
    time.sleep(1.0)  # anything arriving twice would show now
    accepted = {}
    for delivery in list(rig.deliveries):
        head = delivery.data[:4000]
        for mid in wanted:
            if mid not in accepted and mid.encode() in head:
                accepted[mid] = delivery.time
    return {mids[m]: (accepted.get(mids[m]), [t for _uid, t in watcher.seen.get(mids[m], [])], rpc)
            for m, _t, rpc in sent}


def phase_latency(rig, rep, rpc_rep, customer_id, sends, rate):
    watcher = SentWatcher(rig, rep, "Sent")
    watcher.start()
    time.sleep(0.3)
    sent = paced_sends(rpc_rep, customer_id, sends, rate)
    copies = copies_of(rig, rpc_rep, watcher, sent)
    watcher.stop_event.set()
    watcher.join(5)
    rpc_times = [rpc for _m, _t, rpc in sent]
    latencies = [seen[0] - accepted for accepted, seen, _rpc in copies.values() if seen]
    missing = [mid for mid, (_a, seen, _r) in copies.items() if not seen]
    duplicates = [mid for mid, (_a, seen, _r) in copies.items() if len(seen) > 1]
    return {
        "sends": sends, "rate_per_s": rate,
        "copies_seen": len(latencies), "missing": len(missing), "duplicates": len(duplicates),
        "latency_p50_s": percentile(latencies, 50), "latency_p95_s": percentile(latencies, 95),
        "latency_max_s": max(latencies) if latencies else None,
        "latency_min_s": min(latencies) if latencies else None,
        "send_rpc_p50_s": percentile(rpc_times, 50), "send_rpc_p95_s": percentile(rpc_times, 95),
        "watcher_reconnects": watcher.reconnects,
    }


def phase_outage(rig, rep, rpc_rep, customer_id, sends, rate, outage):
    """Sends go on while Dovecot is stopped for ``outage`` seconds (from 1/4 of the
    sends): none is slowed down, the copies wait and are filed once it is back."""
    watcher = SentWatcher(rig, rep, "Sent")
    watcher.start()
    time.sleep(0.3)
    window = {}
    first_down = sends // 4

    def on_send(i):
        if i == first_down:
            rig.stop_imap()
            window["down"] = time.time()
            timer = threading.Timer(outage, lambda: (rig.start_imap(),
                                                     window.__setitem__("up", time.time())))
            timer.start()
            window["timer"] = timer

    sent = paced_sends(rpc_rep, customer_id, sends, rate, on_send=on_send)
    window["timer"].join()
    copies = copies_of(rig, rpc_rep, watcher, sent, timeout=300)
    watcher.stop_event.set()
    watcher.join(5)
    during = [(mid, sent_at) for (message_id, sent_at, _r), mid in zip(sent, copies)
              if window["down"] <= sent_at < window["up"]]
    rpc_during = [rpc for _m, t, rpc in sent if window["down"] <= t < window["up"]]
    rpc_outside = [rpc for _m, t, rpc in sent if not window["down"] <= t < window["up"]]
    filed_after = [copies[mid][1][0] for mid, _t in during if copies[mid][1]]
    return {
        "sends": sends, "outage_s": outage, "sends_during_outage": len(during),
        "send_rpc_p50_during_s": percentile(rpc_during, 50),
        "send_rpc_p50_outside_s": percentile(rpc_outside, 50),
        "copies_missing": sum(1 for _a, seen, _r in copies.values() if not seen),
        "copies_twice": sum(1 for _a, seen, _r in copies.values() if len(seen) > 1),
        "last_waiting_copy_filed_after_restart_s":
            (max(filed_after) - window["up"]) if filed_after else None,
    }


def phase_raw_append(rig, user, messages):
    """One APPEND per message (the baseline), then MULTIAPPEND by 100 (reference)."""
    date = datetime.now(timezone.utc)
    with rig.imap_client(user) as client:
        client.create_folder("RawSingle")
        client.create_folder("RawMulti")
        t0 = time.perf_counter()
        for raw in messages:
            client.append("RawSingle", raw, flags=(b"\\Seen",), msg_time=date)
        single = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(0, len(messages), 100):
            client.multiappend("RawMulti", [{"msg": m, "flags": (b"\\Seen",), "date": date}
                                            for m in messages[i:i + 100]])
        multi = time.perf_counter() - t0
    return {"messages": len(messages), "bytes": sum(map(len, messages)),
            "single_append_per_s": len(messages) / single,
            "multiappend100_per_s": len(messages) / multi}


def phase_drain(rig, rep, server_db, conf, mailbox_id, count, customer, strategy, workdir,
                index):
    out = os.path.join(workdir, "enqueue-%s-%d.json" % (strategy, time.time_ns()))
    run([ODOO_PY, os.path.abspath(__file__), "--worker", "enqueue", conf, server_db,
         str(mailbox_id), str(count), rep.address, customer, strategy,
         str(100_000 + index * 10_000), out])
    with open(out) as fh:
        queued = json.load(fh)
    ids = queued["ids"]
    before = len(rig.folder_uids(rep, "Sent"))
    conn = pg_connect(server_db)
    conn.autocommit = False
    cur = conn.cursor()
    cur.execute("SELECT res_id FROM ir_model_data WHERE module = 'imap_sent_sync' "
                "AND name = 'ir_cron_mailsync_outbox'")
    cron_id = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM mailsync_log WHERE mailbox_id = %s", (mailbox_id,))
    # Release: what ir.cron._trigger() does -- a trigger row, then NOTIFY after commit.
    t0 = time.time()
    cur.execute("UPDATE mailsync_outbox SET next_try = now() AT TIME ZONE 'UTC' "
                "WHERE id = ANY(%s)", (ids,))
    cur.execute("INSERT INTO ir_cron_trigger (cron_id, call_at) "
                "VALUES (%s, now() AT TIME ZONE 'UTC')", (cron_id,))
    conn.commit()
    # Odoo's cron threads LISTEN on a connection to the "postgres" database.
    notify = pg_connect("postgres")
    notify.autocommit = True
    notify.cursor().execute("NOTIFY cron_trigger, %s", (server_db,))
    notify.close()
    conn.autocommit = True
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        cur.execute("SELECT count(*) FROM mailsync_outbox WHERE id = ANY(%s) AND state = 'queued'",
                    (ids,))
        if cur.fetchone()[0] == 0:
            break
        time.sleep(0.01)
    t1 = time.time()
    cur.execute("SELECT state, result, count(*) FROM mailsync_outbox WHERE id = ANY(%s) "
                "GROUP BY state, result", (ids,))
    states = {"%s/%s" % (s, r): c for s, r, c in cur.fetchall()}
    cur.execute("SELECT duration_ms, message FROM mailsync_log WHERE mailbox_id = %s "
                "AND operation = 'append' AND create_date >= to_timestamp(%s) AT TIME ZONE 'UTC' "
                "ORDER BY id", (mailbox_id, t0 - 1))
    batches = cur.fetchall()
    cur.execute("SELECT message_id FROM mailsync_outbox WHERE id = ANY(%s)", (ids,))
    wanted = {r[0].lower() for r in cur.fetchall()}
    conn.close()
    after = len(rig.folder_uids(rep, "Sent"))
    counts = count_message_ids(rig, rep, "Sent", wanted)
    batch_ms = sum(d for d, _m in batches)
    return {
        "strategy": strategy, "rows": len(ids), "bytes": queued["bytes"],
        "sent_folder_before": before, "sent_folder_after": after,
        "wall_s": t1 - t0, "appends_per_s": len(ids) / (t1 - t0),
        "batches": len(batches), "batch_time_s": batch_ms / 1000.0,
        "appends_per_s_inside_batches": len(ids) / (batch_ms / 1000.0) if batch_ms else None,
        "states": states,
        "each_message_id_once": all(counts.get(m) == 1 for m in wanted),
        "copies_added": after - before,
    }


def count_message_ids(rig, user, folder, wanted):
    from imap_sent_sync.mailsync.sent_copy import _fetch_message_ids
    with rig.imap_client(user) as client:
        client.select_folder(folder, readonly=True)
        found = _fetch_message_ids(client, client.search("ALL"))
    counts = {}
    for mid in found.values():
        if mid.lower() in wanted:
            counts[mid.lower()] = counts.get(mid.lower(), 0) + 1
    return counts


def phase_existing_check(rig, rep):
    from imap_sent_sync.mailsync.sent_copy import _fetch_message_ids, find_existing
    with rig.imap_client(rep) as client:
        client.select_folder("Sent", readonly=True)
        uids = client.search("ALL")
        present = list(_fetch_message_ids(client, uids[-250:]).values())
        wanted = present + ["<absent-%d@bench.odoo.test>" % i for i in range(250)]
        results = {"folder_size": len(uids), "message_ids": len(wanted)}
        since = (datetime.now(timezone.utc) - timedelta(days=2)).date()
        for strategy in ("search", "recent"):
            find_existing(client, wanted[:10], strategy=strategy, since=since)  # warm caches
            t0 = time.perf_counter()
            found = find_existing(client, wanted, strategy=strategy, since=since)
            results["%s_s" % strategy] = time.perf_counter() - t0
            results["%s_found" % strategy] = len(found)
    return results


# ----------------------------------------------------------------------------- main
def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--rate", type=float, default=4.0, help="sends per second")
    parser.add_argument("--queue", type=int, default=1000)
    parser.add_argument("--raw", type=int, default=300, help="messages for the raw APPEND rate")
    parser.add_argument("--history", type=int, default=5000, help="older messages in Sent")
    parser.add_argument("--cron-threads", type=int, default=2)
    parser.add_argument("--outage", type=float, default=10.0,
                        help="seconds Dovecot is stopped during the outage phase (0: skip it)")
    parser.add_argument("--outage-sends", type=int, default=80)
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--keep", action="store_true", help="keep the database and work dir")
    parser.add_argument("--addons-from", default="HEAD",
                        help="git revision of the addon to benchmark, or 'worktree'")
    parser.add_argument("--quick", action="store_true", help="50 sends, queue 300, history 1000")
    args = parser.parse_args()
    if args.quick:
        args.sends, args.queue, args.raw, args.history = 50, 300, 150, 1000

    from mailrig import MailRig

    workdir = tempfile.mkdtemp(prefix="bench-outbound-")
    os.chmod(workdir, 0o755)
    results = {"started": datetime.now(timezone.utc).isoformat(), "args": vars(args),
               "host": {"python": platform.python_version(), "machine": platform.machine(),
                        "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}}
    rig = MailRig(workdir=os.path.join(workdir, "rig"))
    server = None
    try:
        rig.start()
        rep = rig.add_user("bench-rep")
        raw_user = rig.add_user("bench-raw")
        customer = "customer@example.com"
        log("rig up; filling Sent with %d older messages", args.history)
        old = datetime.now(timezone.utc) - timedelta(days=400)
        for i in range(0, args.history, 500):
            chunk = message_set(min(500, args.history - i), rep.address, customer,
                                offset=1_000_000 + i, when=old)
            rig.append_many(rep, "Sent", [{"msg": m, "flags": (b"\\Seen",), "date": old}
                                          for m in chunk])

        conf = os.path.join(workdir, "odoo.conf")
        addons_dir = addons_from(args.addons_from, workdir)
        results["addons_from"] = args.addons_from
        if args.addons_from != "worktree":
            results["addons_commit"] = subprocess.run(
                ["git", "-C", REPO, "rev-parse", args.addons_from], capture_output=True,
                text=True).stdout.strip()
        write_conf(conf, os.path.join(workdir, "data"), args.db, addons_dir)
        subprocess.run(["dropdb", "--if-exists", args.db], check=True)
        t0 = time.monotonic()
        run([ODOO_PY, ODOO_BIN, "-c", conf, "-d", args.db, "-i", "imap_sent_sync",
             "--stop-after-init", "--log-level", "warn"], stdout=subprocess.DEVNULL)
        log("database %s installed in %.0f s", args.db, time.monotonic() - t0)
        server = OdooServer(conf, args.db, workdir, args.cron_threads)
        url = server.start()
        log("odoo-bin up on %s with %d cron threads", url, args.cron_threads)

        admin = JsonRpc(url, args.db).login("admin", "admin")
        groups = [admin("ir.model.data", "check_object_reference", module, name)[1] for module, name in
                  (("base", "group_user"), ("base", "group_partner_manager"),
                   ("imap_sent_sync", "group_mailsync_user"))]
        rep_uid = admin("res.users", "create", {
            "name": "Bench Rep", "login": "bench-rep", "password": "bench-rep-pw",
            "email": rep.address, "groups_id": [(6, 0, groups)]})
        customer_id = admin("res.partner", "create", {"name": "Bench Customer", "email": customer})
        mailbox_vals = {
            "user_id": rep_uid, "email": rep.address, "login": rep.login, "secret": rep.password,
            "provider": "custom", "imap_host": rig.host, "imap_port": rig.imaps_port,
            "imap_security": "ssl", "smtp_host": rig.host, "smtp_port": rig.smtps_port,
            "smtp_security": "ssl", "ca_pem": rig.ca_pem}
        if "sync_frequency" in admin("mailsync.mailbox", "fields_get", ["sync_frequency"]):
            # Measure the outbound path alone: no inbound polling of this mailbox
            # competing for the CPUs and Dovecot meanwhile.
            mailbox_vals["sync_frequency"] = "manual"
        mailbox_id = admin("mailsync.mailbox", "create", mailbox_vals)
        rpc_rep = JsonRpc(url, args.db).login("bench-rep", "bench-rep-pw")
        rpc_rep("mailsync.mailbox", "action_test_connection", [mailbox_id])
        state = rpc_rep("mailsync.mailbox", "read", [mailbox_id], fields=["state"])[0]["state"]
        if state != "connected":
            raise RuntimeError("mailbox not connected after the connection test: %s" % state)
        log("mailbox connected; latency phase: %d sends at %.1f/s", args.sends, args.rate)

        results["latency"] = phase_latency(rig, rep, rpc_rep, customer_id, args.sends, args.rate)
        log("latency p50 %.3f s, p95 %.3f s", results["latency"]["latency_p50_s"],
            results["latency"]["latency_p95_s"])

        if args.outage:
            log("outage phase: %d sends at %.1f/s, Dovecot stopped for %.0f s",
                args.outage_sends, args.rate, args.outage)
            results["outage"] = phase_outage(rig, rep, rpc_rep, customer_id, args.outage_sends,
                                             args.rate, args.outage)

        log("raw APPEND rate (%d messages)", args.raw)
        raw_messages = message_set(args.raw, raw_user.address, customer, offset=500_000)
        results["raw_append"] = phase_raw_append(rig, raw_user, raw_messages)

        results["drain"] = []
        # auto twice, around the forced search: the first drain of a run also
        # pays for cold caches (Dovecot's index of the big folder, PostgreSQL).
        for index, strategy in enumerate(("auto", "search", "auto")):
            log("drain of %d queued copies, strategy %s", args.queue, strategy)
            results["drain"].append(phase_drain(rig, rep, args.db, conf, mailbox_id, args.queue,
                                                customer, strategy, workdir, index))
        results["existing_check"] = phase_existing_check(rig, rep)
    finally:
        if server:
            server.stop()
        rig.stop()
        if not args.keep:
            subprocess.run(["dropdb", "--if-exists", args.db])
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log("kept %s and database %s", workdir, args.db)

    results["finished"] = datetime.now(timezone.utc).isoformat()
    results["host"]["loadavg_end"] = os.getloadavg()
    report(results)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "outbound-%s.json"
                        % datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    with open(path, "w") as fh:
        json.dump(results, fh, indent=2, default=str)
    log("wrote %s", path)
    ok = (results["latency"]["missing"] == 0 and results["latency"]["duplicates"] == 0
          and all(d["each_message_id_once"] for d in results["drain"])
          and not (results.get("outage") or {}).get("copies_missing")
          and not (results.get("outage") or {}).get("copies_twice"))
    return 0 if ok else 1


def report(r):
    lat, raw = r["latency"], r["raw_append"]
    rows = [
        ("Host: %d CPUs, load average at start / end" % r["host"]["cpus"], "%.1f / %.1f" % (
            r["host"]["loadavg_start"][0], r["host"]["loadavg_end"][0])),
        ("Latency send -> copy in Sent (immediate, %d sends at %.0f/s)" % (lat["sends"],
                                                                           lat["rate_per_s"]), ""),
        ("  p50", "%.3f s" % lat["latency_p50_s"]),
        ("  p95 (target < %.1f s)" % TARGETS["latency_p95_s"], "%.3f s" % lat["latency_p95_s"]),
        ("  max", "%.3f s" % lat["latency_max_s"]),
        ("  copies seen / missing / duplicated", "%d / %d / %d" % (
            lat["copies_seen"], lat["missing"], lat["duplicates"])),
        ("  send RPC p50 / p95", "%.3f / %.3f s" % (lat["send_rpc_p50_s"], lat["send_rpc_p95_s"])),
    ]
    if r.get("outage"):
        o = r["outage"]
        rows += [
            ("Dovecot stopped %.0f s while %d of %d sends went out" % (
                o["outage_s"], o["sends_during_outage"], o["sends"]), ""),
            ("  send RPC p50 during / outside the outage", "%.3f / %.3f s" % (
                o["send_rpc_p50_during_s"], o["send_rpc_p50_outside_s"])),
            ("  copies missing / twice", "%d / %d" % (o["copies_missing"], o["copies_twice"])),
            ("  last waiting copy filed after the restart", "%.2f s" % (
                o["last_waiting_copy_filed_after_restart_s"] or float("nan"))),
        ]
    rows += [
        ("Raw APPEND, same Dovecot (%d msgs)" % raw["messages"], ""),
        ("  one message per APPEND", "%.0f msgs/s" % raw["single_append_per_s"]),
        ("  MULTIAPPEND by 100 (reference)", "%.0f msgs/s" % raw["multiappend100_per_s"]),
    ]
    for d in r["drain"]:
        rows += [
            ("Drain of %d queued copies via the cron runner, strategy %s" % (d["rows"], d["strategy"]),
             ""),
            ("  appends/s (release -> last filed)", "%.0f msgs/s (%.2fx raw APPEND)" % (
                d["appends_per_s"], d["appends_per_s"] / raw["single_append_per_s"])),
            ("  appends/s inside batches (%d batches)" % d["batches"],
             "%.0f msgs/s" % (d["appends_per_s_inside_batches"] or 0)),
            ("  Sent folder before -> after", "%d -> %d" % (d["sent_folder_before"],
                                                             d["sent_folder_after"])),
            ("  every Message-ID exactly once", str(d["each_message_id_once"])),
        ]
    e = r["existing_check"]
    rows += [
        ("Existing-copy check, %d ids vs %d in Sent" % (e["message_ids"], e["folder_size"]), ""),
        ("  OR'd UID SEARCH HEADER Message-ID", "%.3f s (%d found)" % (e["search_s"],
                                                                        e["search_found"])),
        ("  UID SEARCH SINCE + header FETCH", "%.3f s (%d found)" % (e["recent_s"],
                                                                      e["recent_found"])),
    ]
    width = max(len(a) for a, _b in rows) + 2
    print()
    for a, b in rows:
        print(a.ljust(width) + b)
    print()


if __name__ == "__main__":
    sys.exit(main())
