#!/usr/bin/env python3
"""Inbound benchmark (issue 3, acceptance 12): backfill into the chatter vs Odoo's fetchmail.

Run from the repository root with the Odoo virtualenv's Python::

    /opt/odoo-18.0-venv/bin/python bench/bench_inbound.py            # full run (~10 min)
    /opt/odoo-18.0-venv/bin/python bench/bench_inbound.py --quick    # smoke run (~2 min)

What it does, all on loopback (a private mailrig Dovecot on free ports, the local PostgreSQL):

1. Generates the pinned corpus (bench/corpus.py; checksum printed) and loads it with
   MULTIAPPEND into the rig user rep@rig.test (INBOX + Sent).
2. Ceiling: raw imapclient FETCH of full bodies and of headers from that Dovecot.
3. Baseline: Odoo 18's own incoming mail server (fetchmail.server, IMAP over SSL,
   object crm.lead: message_process creates a lead or appends to the thread for every
   message) importing a subset of the same corpus (--baseline-messages, stride-sampled so
   the mix is the same) from another rig user, in an Odoo subprocess.
4. Ours: imap_sent_sync's backfill of the whole corpus into a fresh database with the
   corpus's contacts as res.partner records, in Odoo subprocesses (--workers, default 2:
   the second one runs what the shipped second cron job runs); wall time, messages
   into the chatter per second, and a correctness check (every expected message exactly
   once per matched contact, nothing from strangers).
5. No-change poll of a 10-folder mailbox: median wall time and IMAP commands per poll
   (counted by wrapping imaplib's tag allocation and send at runtime: instrumentation,
   not mocking -- the real server answers every command).
6. Peak memory while syncing one 25 MB message (fresh subprocess, VmHWM reset through
   /proc/self/clear_refs): raw fetch, fetch + mailsync.mime.parse_message, and the engine.

Prints a table and writes bench/results/inbound-<timestamp>.json. Databases are named
mailsync_bench_*; the Odoo databases are cloned from templates built once per addon
source hash (--fresh-db rebuilds them). The worker processes are this same file run
with --worker.

Plugging the inbound engine in: see EngineDriver below -- the one place that knows
the engine's entry points.
"""
import argparse
import collections
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

ODOO_SRC = os.environ.get("ODOO_SRC", "/opt/odoo-18.0")
ODOO_VENV = os.environ.get("ODOO_VENV", "/opt/odoo-18.0-venv")
ODOO_PY = os.path.join(ODOO_VENV, "bin", "python")
# Where our addons are loaded from: a snapshot of a commit (default HEAD, see
# --addons-from) so that a run measures committed code, not a working tree someone is
# editing; --addons-from worktree uses the checkout itself. Set by set_addons_dir().
ADDONS_DIR = REPO


def set_addons_dir(source):
    """Point ADDONS_DIR at the addons of ``source`` ("worktree" or a git revision,
    extracted once to WORK_ROOT/addons/<commit>). Returns (dir, commit or None)."""
    global ADDONS_DIR
    if source == "worktree":
        ADDONS_DIR = REPO
        return REPO, None
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--verify", source + "^{commit}"],
                            check=True, capture_output=True, text=True).stdout.strip()
    target = os.path.join(WORK_ROOT, "addons", commit[:12])
    if not os.path.isdir(target):
        tmp = target + ".tmp%d" % os.getpid()
        os.makedirs(tmp)
        paths = [m for m in OUR_ADDONS if subprocess.run(
            ["git", "-C", REPO, "cat-file", "-e", "%s:%s/__manifest__.py" % (commit, m)],
            capture_output=True).returncode == 0]
        if paths:
            archive = subprocess.run(["git", "-C", REPO, "archive", commit] + paths,
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        os.replace(tmp, target)
    ADDONS_DIR = target
    return target, commit


def addons_path():
    return ",".join([os.path.join(ODOO_SRC, "addons"), os.path.join(ODOO_SRC, "odoo", "addons"), ADDONS_DIR])
WORK_ROOT = os.environ.get("MAILSYNC_BENCH_DIR", "/tmp/mailsync_bench")
DB_PREFIX = "mailsync_bench"
FETCHMAIL_MODULES = ["mail", "contacts", "crm"]
OUR_ADDONS = ["imap_sent_sync", "imap_sent_sync_crm"]
POLL_EXTRA_FOLDERS = ["Projects", "Customers", "Customers/Key Accounts", "Receipts"]

TARGETS = {
    "ratio_vs_fetchmail": 20.0,        # ours >= 20x fetchmail's messages/s
    "ambition_msgs_per_s": 1000.0,
    "poll_fetch_commands": 0,          # no FETCH in a no-change poll
    "memory_growth_ratio": 3.0,        # peak RSS growth < 3x the message size
}


def log(msg, *args):
    text = msg % args if args else msg
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), text))
    sys.stderr.flush()


# =========================================================================== helpers
def normalize_mid(value):
    """Message-ID comparison key: no brackets/whitespace, domain lower-cased (the local
    part is case-sensitive) -- the rule of mailsync.mime.normalize_message_id."""
    if not value:
        return ""
    v = "".join(str(value).split()).strip("<>")
    if "@" in v:
        local, _, dom = v.rpartition("@")
        v = "%s@%s" % (local, dom.lower())
    return v


def rss_bytes():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def hwm_bytes():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_hwm():
    """Reset the peak RSS (VmHWM) of this process (Linux >= 4.0). False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakSampler:
    """Fallback peak-RSS measure: samples VmRSS every 5 ms in a thread."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(0.005)

    def __enter__(self):
        self.peak = rss_bytes()
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_bytes())


def measure_memory(fn):
    """Run fn(); return (result, {rss_before, peak, growth}) with peak from VmHWM after a
    reset (exact) and from a 5 ms sampler (cross-check)."""
    import ctypes
    import gc
    gc.collect()
    try:   # hand freed heap back to the OS so "before" is what is really in use
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    before = rss_bytes()
    exact = reset_hwm()
    with PeakSampler() as sampler:
        result = fn()
    peak = hwm_bytes() if exact else sampler.peak
    return result, {"rss_before": before, "peak": peak, "growth": max(0, peak - before),
                    "sampled_peak": sampler.peak, "method": "VmHWM reset" if exact else "sampled"}


class ImapCommandCounter:
    """Counts tagged IMAP commands by name, for every imaplib/imapclient connection of
    the process: wraps imaplib.IMAP4._new_tag (every tagged command allocates one, both
    imaplib's _command and imapclient's _raw_command) and IMAP4.send (to read the command
    name that follows the tag). The real server still answers every command."""

    def __init__(self):
        self.counts = collections.Counter()
        self._installed = False

    def install(self):
        import imaplib
        if self._installed:
            return self
        counts = self.counts
        orig_new_tag = imaplib.IMAP4._new_tag
        orig_send = imaplib.IMAP4.send

        def _new_tag(imap):
            tag = orig_new_tag(imap)
            imap._bench_pending_tag = tag
            return tag

        def send(imap, data):
            tag = getattr(imap, "_bench_pending_tag", None)
            if tag is not None and data.startswith(tag + b" "):
                imap._bench_pending_tag = None
                words = data[len(tag) + 1:].split(b"\r\n", 1)[0].split(b" ")
                name = words[0].upper()
                if name == b"UID" and len(words) > 1:
                    name = b"UID " + words[1].upper()
                counts[name.decode("ascii", "replace")] += 1
            return orig_send(imap, data)

        imaplib.IMAP4._new_tag = _new_tag
        imaplib.IMAP4.send = send
        self._installed = True
        return self

    def snapshot(self):
        return collections.Counter(self.counts)

    @staticmethod
    def diff(after, before):
        d = collections.Counter(after)
        d.subtract(before)
        return {k: v for k, v in sorted(d.items()) if v}


def fmt_rate(x):
    return "-" if x is None else ("%.0f" % x if x >= 100 else "%.1f" % x)


def fmt_mb(b):
    return "%.1f MB" % (b / 1e6)


# =========================================================================== databases
def psql(sql, db="postgres"):
    return subprocess.run(["psql", "-XAtq", "-d", db, "-c", sql], check=True,
                          capture_output=True, text=True).stdout


def db_exists(name):
    return bool(psql("SELECT 1 FROM pg_database WHERE datname = '%s'" % name).strip())


def drop_db(name):
    subprocess.run(["dropdb", "--if-exists", name], check=True, capture_output=True)
    shutil.rmtree(os.path.join(WORK_ROOT, "odoo-data", "filestore", name), ignore_errors=True)


def addon_hash(modules):
    """Hash of Odoo's version and of every file of our addons among ``modules``: a
    template database is rebuilt when any of them changes."""
    h = hashlib.sha256()
    try:
        with open(os.path.join(ODOO_SRC, "odoo", "release.py"), "rb") as fh:
            h.update(fh.read())
    except OSError:
        pass
    h.update(",".join(modules).encode())
    for mod in modules:
        root = os.path.join(ADDONS_DIR, mod)
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for fn in sorted(filenames):
                if fn.endswith((".pyc", ".pyo")):
                    continue
                p = os.path.join(dirpath, fn)
                h.update(os.path.relpath(p, ADDONS_DIR).encode() + b"\0")
                with open(p, "rb") as fh:
                    h.update(fh.read())
    return h.hexdigest()[:10]


def write_odoo_conf(path):
    data_dir = os.path.join(WORK_ROOT, "odoo-data")
    os.makedirs(data_dir, exist_ok=True)
    with open(path, "w") as fh:
        fh.write("[options]\naddons_path = %s\ndata_dir = %s\nlist_db = True\n"
                 "without_demo = all\nmax_cron_threads = 0\nlog_level = warn\n" % (addons_path(), data_dir))
    return path


KEEP_TEMPLATES = 3     # per kind; older ones (other source hashes) are dropped


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_stale_run_dbs():
    """Drop mailsync_bench_<kind>_run<pid> databases of runs that are gone (killed, or
    kept with --keep by a run whose process ended long ago is NOT dropped: --keep runs
    name their databases ..._keep<pid>)."""
    for name in psql("SELECT datname FROM pg_database WHERE datname LIKE '%s\\_%%\\_run%%'"
                     % DB_PREFIX).split():
        tail = name.rsplit("_run", 1)[-1]
        if tail.isdigit() and not _pid_alive(int(tail)):
            drop_db(name)


class _FileLock:
    """Exclusive flock on WORK_ROOT/locks/<name>: concurrent benchmark runs share the
    template databases and must not build or drop the same one at once."""

    def __init__(self, name):
        os.makedirs(os.path.join(WORK_ROOT, "locks"), exist_ok=True)
        self.path = os.path.join(WORK_ROOT, "locks", name)

    def __enter__(self):
        import fcntl
        self.fh = open(self.path, "w")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        import fcntl
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


class DbPrep:
    """Builds (or reuses) a template database for a module list, then clones it into
    this run's own database (mailsync_bench_<kind>_run<pid>, dropped at the end unless
    --keep: then mailsync_bench_<kind>_keep<pid>)."""

    def __init__(self, kind, modules, conf, run_dir, fresh=False, keep=False):
        self.kind = kind
        self.modules = modules
        self.conf = conf
        self.run_dir = run_dir
        self.fresh = fresh
        self.template = "%s_tpl_%s_%s" % (DB_PREFIX, kind, addon_hash(modules))
        self.db = "%s_%s_%s%d" % (DB_PREFIX, kind, "keep" if keep else "run", os.getpid())
        self.install_seconds = None
        self.reused_template = None
        self.error = None
        self.thread = None
        self.updated_during_run = False

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def wait(self):
        self.thread.join()
        if self.error:
            raise RuntimeError(self.error)
        return self

    def ensure_current(self):
        """Other work may change the addon while a run goes on: if its files changed
        since the clone, update the run database (-u) before using it."""
        modules = [m for m in self.modules if os.path.isfile(os.path.join(ADDONS_DIR, m, "__manifest__.py"))]
        if addon_hash(modules) == self.template.rsplit("_", 1)[1]:
            return False
        log("%s addon sources changed during the run: updating %s", self.kind, self.db)
        logf = os.path.join(self.run_dir, "update-%s.log" % self.kind)
        with open(logf, "w") as out:
            rc = subprocess.run(
                [ODOO_PY, os.path.join(ODOO_SRC, "odoo-bin"), "-c", self.conf, "-d", self.db,
                 "-i", ",".join(modules), "-u", ",".join(modules), "--stop-after-init",
                 "--log-level=warn"], stdout=out, stderr=subprocess.STDOUT, cwd=REPO).returncode
        if rc != 0:
            raise RuntimeError("updating %s failed, see %s" % (self.db, logf))
        self.template = "%s_tpl_%s_%s" % (DB_PREFIX, self.kind, addon_hash(modules))
        self.updated_during_run = True
        return True

    def _run(self):
        try:
            self._prepare()
        except Exception as exc:  # reported by wait()
            self.error = "%s database: %s" % (self.kind, exc)

    def _prepare(self):
        with _FileLock("templates-%s" % self.kind):
            self._prepare_locked()

    def _prepare_locked(self):
        # keep the newest templates of this kind (other runs may use other revisions)
        names = psql("SELECT datname FROM pg_database WHERE datname LIKE '%s\\_tpl\\_%s\\_%%' "
                     "ORDER BY oid DESC" % (DB_PREFIX, self.kind)).split()
        for i, name in enumerate(names):
            if (self.fresh and name == self.template) or (i >= KEEP_TEMPLATES and name != self.template):
                drop_db(name)
        self.reused_template = db_exists(self.template)
        if not self.reused_template:
            t0 = time.monotonic()
            logf = os.path.join(self.run_dir, "install-%s.log" % self.kind)
            with open(logf, "w") as out:
                rc = subprocess.run(
                    [ODOO_PY, os.path.join(ODOO_SRC, "odoo-bin"), "-c", self.conf, "-d", self.template,
                     "-i", ",".join(self.modules), "--stop-after-init", "--log-level=warn"],
                    stdout=out, stderr=subprocess.STDOUT, cwd=REPO).returncode
            with open(logf) as fh:
                text = fh.read()
            if rc != 0 or " ERROR " in text or " CRITICAL " in text:
                drop_db(self.template)
                raise RuntimeError("installing %s failed (see %s):\n%s"
                                   % (",".join(self.modules), logf, text[-3000:]))
            self.install_seconds = time.monotonic() - t0
        drop_db(self.db)
        subprocess.run(["createdb", "-T", self.template, self.db], check=True, capture_output=True)
        src = os.path.join(WORK_ROOT, "odoo-data", "filestore", self.template)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(WORK_ROOT, "odoo-data", "filestore", self.db))


# =========================================================================== workers
def run_worker(name, spec, run_dir, timeout):
    """Run this file with --worker NAME in the Odoo Python; returns its JSON result."""
    return wait_worker(start_worker(name, spec, run_dir), timeout)


def start_worker(name, spec, run_dir):
    """Start this file with --worker NAME in the Odoo Python; see wait_worker."""
    spec = dict(spec)
    spec["result_path"] = os.path.join(run_dir, "result-%s.json" % name)
    spec_path = os.path.join(run_dir, "spec-%s.json" % name)
    with open(os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        json.dump(spec, fh)
    logf = os.path.join(run_dir, "worker-%s.log" % name)
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["MAILSYNC_BENCH_ADDONS_DIR"] = ADDONS_DIR
    env.update(spec.get("env", {}))
    kind = name.split(":", 1)[0]
    with open(logf, "w") as out:
        proc = subprocess.Popen([ODOO_PY, os.path.abspath(__file__), "--worker", kind, "--spec", spec_path],
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                start_new_session=True)
    return {"proc": proc, "result_path": spec["result_path"], "log": logf, "t0": time.monotonic()}


def wait_worker(worker, timeout):
    proc = worker["proc"]
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rc = "timeout after %ss" % timeout
    elapsed = time.monotonic() - worker["t0"]
    result = None
    if os.path.exists(worker["result_path"]):
        with open(worker["result_path"]) as fh:
            result = json.load(fh)
    logf = worker["log"]
    if rc != 0 or result is None:
        with open(logf) as fh:
            tail = fh.read()[-4000:]
        return {"status": "failed", "returncode": rc, "log": logf, "log_tail": tail,
                "process_seconds": elapsed, **(result or {})}
    result.setdefault("status", "ok")
    result["process_seconds"] = elapsed
    result["log"] = logf
    return result


def _worker_main(name, spec_path):
    with open(spec_path) as fh:
        spec = json.load(fh)
    fn = WORKERS[name]
    result = {}
    try:
        result = fn(spec) or {}
    except EngineUnavailable as error:
        result = {"status": "unavailable", "reason": str(error)}
    except Exception:
        import traceback
        result = {"status": "failed", "error": traceback.format_exc()}
        sys.stderr.write(result["error"])
    with open(spec["result_path"], "w") as fh:
        json.dump(result, fh, default=str)
    return 0 if result.get("status", "ok") == "ok" else 1


def import_mailsync(name):
    """Import imap_sent_sync.mailsync.<name> without Odoo: the addon's __init__ imports
    the Odoo models, so the addon directory is registered as a bare package (as the
    protocol tests do)."""
    import importlib
    import types
    if "imap_sent_sync" not in sys.modules:
        pkg = types.ModuleType("imap_sent_sync")
        pkg.__path__ = [os.path.join(os.environ.get("MAILSYNC_BENCH_ADDONS_DIR", REPO), "imap_sent_sync")]
        sys.modules["imap_sent_sync"] = pkg
    return importlib.import_module("imap_sent_sync.mailsync." + name)


def odoo_registry(spec):
    import odoo
    from odoo.modules.registry import Registry
    odoo.tools.config.parse_config(["-c", spec["odoo_conf"], "-d", spec["db"], "--log-level=warn"])
    return Registry(spec["db"])


def odoo_env(cr):
    from odoo import SUPERUSER_ID, api
    return api.Environment(cr, SUPERUSER_ID, {})


class EngineUnavailable(Exception):
    """The benchmarked revision has no inbound engine: the stage reports 'unavailable'."""


@contextlib.contextmanager
def engine_cursor(spec):
    """(cursor, env, EngineDriver) on the worker's database, for the stages that
    drive our engine; raises EngineUnavailable when the revision has none."""
    with odoo_registry(spec).cursor() as cr:
        env = odoo_env(cr)
        engine = EngineDriver(env)
        if not engine.available():
            raise EngineUnavailable(engine.reason)
        yield cr, env, engine


def email_message_stats(cr, since_id, models=None):
    """Rows, distinct Message-IDs and per-(message, record) duplicates among mail.message
    rows of type email with id > since_id."""
    cond = ""
    params = [since_id]
    if models:
        cond = " AND model = ANY(%s)"
        params.append(list(models))
    cr.execute("SELECT message_id, model, res_id FROM mail_message "
               "WHERE message_type = 'email' AND id > %s" + cond, params)
    rows = cr.fetchall()
    per_record = collections.Counter((normalize_mid(m), model, res_id) for m, model, res_id in rows)
    mids = {normalize_mid(m) for m, _model, _res in rows}
    return {"rows": len(rows), "distinct_message_ids": len(mids),
            "duplicate_rows": sum(c - 1 for c in per_record.values() if c > 1),
            "by_model": dict(collections.Counter(model for _m, model, _r in rows))}, rows


# --------------------------------------------------------------------------- fetchmail
def worker_fetchmail(spec):
    """Odoo 18's fetchmail.server (IMAP, SSL) into crm.lead, as its cron would run it."""
    registry = odoo_registry(spec)
    imap = spec["imap"]
    with registry.cursor() as cr:
        env = odoo_env(cr)
        # isolate: no other cron, no outgoing mail server needed (nothing is sent)
        cr.execute("SELECT COALESCE(MAX(id), 0) FROM mail_message")
        since = cr.fetchone()[0]
        cr.execute("SELECT COALESCE(MAX(id), 0) FROM mail_mail")
        mail_since = cr.fetchone()[0]
        server = env["fetchmail.server"].create({
            "name": "bench", "server_type": "imap", "server": imap["host"], "port": imap["port"],
            "is_ssl": True, "user": imap["login"], "password": imap["password"],
            "object_id": env["ir.model"]._get(spec["model"]).id, "attach": True, "original": False,
        })
        server.button_confirm_login()
        cr.commit()
        leads_before = env[spec["model"]].search_count([])
        t0, c0 = time.monotonic(), time.process_time()
        server.fetch_mail()
        seconds, cpu = time.monotonic() - t0, time.process_time() - c0
        cr.commit()
        stats, rows = email_message_stats(cr, since, [spec["model"]])
        expected = {normalize_mid(m) for m in spec["expected_message_ids"]}
        got = {normalize_mid(m) for m, _mo, _r in rows}
        cr.execute("SELECT count(*) FROM mail_mail WHERE id > %s", [mail_since])
        queued_mails = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM ir_attachment WHERE res_model = %s", [spec["model"]])
        attachments = cr.fetchone()[0]
        result = {
            "model": spec["model"],
            "seconds": seconds,
            "cpu_seconds": cpu,
            "mailbox_messages": len(expected),
            "imported_messages": len(expected & got),
            "missing": len(expected - got),
            "records_created": env[spec["model"]].search_count([]) - leads_before,
            "attachments": attachments,
            "mail_mail_queued": queued_mails,
            "chatter": stats,
        }
        result["msgs_per_s"] = result["imported_messages"] / seconds if seconds else None
        result["rows_per_s"] = stats["rows"] / seconds if seconds else None
        return result


# --------------------------------------------------------------------------- engine
class EngineDriver:
    """The one place that knows the inbound engine's entry points (issue 3).

    Everything else in this benchmark (corpus, rig, databases, partners, correctness,
    timing, command counting, memory) is engine-agnostic. To follow a rename, adapt
    these methods only:

    * ``create_mailbox(imap, owner)`` -- a connected mailsync.mailbox for a rig user
      (secret set, ca_pem = rig CA, connection test passed, folders listed). No SMTP
      server is set: inbound only, and no ir.mail_server is created.
    * ``select_folders(mailbox, paths)`` -- exactly these folders synced.
    * ``backfill(mailbox)`` -- "Start backfill" then run the sync to completion the way
      the cron does (``mailbox._sync_inbound(commit=True)``: steps of one transaction
      each, committed), return the engine's own run statistics.
    * ``poll(mailbox)`` -- "Sync now" then one run: a poll of every selected folder.
    """

    def __init__(self, env):
        self.env = env
        self.reason = None

    def available(self):
        env = self.env
        if "mailsync.mailbox" not in env:
            self.reason = "imap_sent_sync is not installed in the benchmark database"
            return False
        Mailbox = env["mailsync.mailbox"]
        needed = ["action_start_backfill", "action_sync_now", "_sync_inbound"]
        missing = [m for m in needed if not hasattr(Mailbox, m)]
        if "mailsync.sync" not in env or missing:
            self.reason = "inbound engine not available (missing: %s)" % (
                ", ".join(missing or ["mailsync.sync"]))
            return False
        return True

    def create_mailbox(self, imap, owner):
        env = self.env
        mailbox = env["mailsync.mailbox"].create({
            "email": imap["login"], "login": imap["login"], "user_id": owner.id,
            "imap_host": imap["host"], "imap_port": imap["port"], "imap_security": "ssl",
            "ca_pem": imap["ca_pem"], "provider": "custom",
        })
        mailbox.secret = imap["password"]
        mailbox.action_test_connection()
        if mailbox.state != "connected":
            raise RuntimeError("connection test failed: %s %s" % (mailbox.state, mailbox.last_error))
        return mailbox

    def configure(self, mailbox, window_days):
        mailbox.write({"backfill_days": window_days, "sync_frequency": "manual"})

    def select_folders(self, mailbox, paths):
        for folder in mailbox.folder_ids:
            folder.sync_enabled = folder.path in paths
        missing = set(paths) - set(mailbox.folder_ids.mapped("path"))
        if missing:
            raise RuntimeError("folders not found on the mailbox: %s" % sorted(missing))

    def backfill(self, mailbox, timeout=3600, on_started=None):
        mailbox.action_start_backfill()
        self.env.cr.commit()
        if on_started:
            on_started()
        runs = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = mailbox._sync_inbound(commit=True)
            runs.append(stats)
            self.env.cr.commit()
            mailbox.invalidate_recordset()
            if mailbox.backfill_state == "done" or mailbox.state != "connected":
                break
            if not stats.steps:
                time.sleep(0.02)  # the other workers hold the work of the moment
        if mailbox.backfill_state != "done":
            raise RuntimeError("backfill did not finish: state %s/%s, error %s" % (
                mailbox.state, mailbox.backfill_state, mailbox.sync_error))
        return _merge_stats(runs)

    def help_backfill(self, timeout=3600):
        """What a second cron worker does: run the sync (any due mailbox,
        or help import another worker's backfill) until no backfill is left."""
        runs = []
        deadline = time.monotonic() + timeout
        Mailbox = self.env["mailsync.mailbox"]
        while time.monotonic() < deadline:
            stats = self.env["mailsync.sync"]._run(max_seconds=45, commit=True)
            runs.append(stats)
            self.env.cr.commit()
            self.env.invalidate_all()
            if not Mailbox.search_count([("backfill_state", "in", ("scanning", "importing"))]):
                break
            if not stats.steps:
                time.sleep(0.02)
        return _merge_stats(runs)

    def poll(self, mailbox):
        mailbox.action_sync_now()
        self.env.cr.commit()
        stats = mailbox._sync_inbound(commit=True)
        self.env.cr.commit()
        return _merge_stats([stats])


def _merge_stats(runs):
    out = {}
    for r in runs:
        d = r.as_dict() if hasattr(r, "as_dict") else dict(r or {})
        for k, v in d.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = out.get(k, 0) + v
            elif isinstance(v, dict):
                acc = out.setdefault(k, {})
                for kk, vv in v.items():
                    acc[kk] = acc.get(kk, 0) + vv
    out["runs"] = len(runs)
    return out


def _make_owner(env, login, name):
    user = env["res.users"].with_context(no_reset_password=True).create({
        "name": name, "login": login, "email": login,
        "groups_id": [(4, env.ref("base.group_user").id)]
                     + ([(4, env.ref("imap_sent_sync.group_mailsync_user").id)]
                        if env.ref("imap_sent_sync.group_mailsync_user", raise_if_not_found=False) else []),
    })
    return user


def _ensure_partners(env, contacts):
    """res.partner for every contact whose address no partner has yet."""
    emails = [c["email"] for c in contacts]
    existing = set()
    for i in range(0, len(emails), 1000):
        existing.update(p.email_normalized for p in env["res.partner"].search(
            [("email_normalized", "in", emails[i:i + 1000])]))
    todo = [c for c in contacts if c["email"] not in existing]
    return env["res.partner"].create([
        {"name": c["name"], "email": c["email"], "company_name": c.get("company") or False}
        for c in todo])


def _deactivate_other_crons(env, keep_model=None):
    crons = env["ir.cron"].search([])
    if keep_model:
        crons = crons.filtered(lambda c: c.model_id.model != keep_model)
    crons.write({"active": False})


def worker_ours(spec):
    """Partners for the corpus contacts, a mailbox on the rig, backfill, correctness."""
    counter = ImapCommandCounter().install()
    with engine_cursor(spec) as (cr, env, engine):
        _deactivate_other_crons(env, keep_model="mailsync.mailbox")
        t0 = time.monotonic()
        partners = _ensure_partners(env, spec["contacts"])
        partner_by_email = {p.email_normalized: p.id for p in partners}
        if len(partner_by_email) != len(spec["contacts"]):
            raise RuntimeError("the benchmark database already has partners for the corpus contacts")
        owner = _make_owner(env, spec["imap"]["login"], spec["owner_name"])
        mailbox = engine.create_mailbox(spec["imap"], owner)
        engine.configure(mailbox, spec["window_days"])
        engine.select_folders(mailbox, spec["folders"])
        cr.commit()
        setup_seconds = time.monotonic() - t0
        cr.execute("SELECT COALESCE(MAX(id), 0) FROM mail_message")
        since = cr.fetchone()[0]
        # More cron workers (--workers): processes that run the sync as the
        # shipped second cron job does; started now so that their Odoo is
        # loaded when the backfill starts.
        helpers = [start_worker("ours_helper:%d" % n, {"odoo_conf": spec["odoo_conf"], "db": spec["db"]},
                                spec["run_dir"])
                   for n in range(1, spec.get("workers", 1))]
        _wait_helpers_ready(helpers)
        before_cmds = counter.snapshot()
        t0, c0 = time.monotonic(), time.process_time()
        if spec.get("profile"):
            import cProfile
            import io
            import pstats
            prof = cProfile.Profile()
            engine_stats = prof.runcall(engine.backfill, mailbox)
            seconds = time.monotonic() - t0
            cpu = time.process_time() - c0
            prof.dump_stats(spec["profile"])
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(30)
            pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(50)
            sys.stderr.write(buf.getvalue())
        else:
            engine_stats = engine.backfill(mailbox)
            seconds, cpu = time.monotonic() - t0, time.process_time() - c0
        helper_results = [wait_worker(h, 600) for h in helpers]
        for h in helper_results:
            if h.get("status") != "ok":
                raise RuntimeError("helper worker failed: %s" % (h.get("error") or h.get("log_tail")))
        commands = ImapCommandCounter.diff(counter.snapshot(), before_cmds)
        for h in helper_results:
            for name, count in h["imap_commands"].items():
                commands[name] = commands.get(name, 0) + count
        stats, rows = email_message_stats(cr, since)
        # correctness: every expected (message, partner) exactly once, nothing else
        expected = {normalize_mid(mid): [partner_by_email[a] for a in addrs]
                    for mid, addrs in spec["expected"].items()}
        on_partner = collections.Counter(
            (normalize_mid(m), res_id) for m, model, res_id in rows if model == "res.partner")
        got_mids = {normalize_mid(m) for m, _mo, _r in rows}
        exp_pairs = {(mid, pid) for mid, pids in expected.items() for pid in pids}
        missing_pairs = [p for p in exp_pairs if p not in on_partner]
        dup_pairs = [p for p, c in on_partner.items() if c > 1]
        unexpected = sorted(got_mids - set(expected))
        imported = len(set(expected) & got_mids)
        result = {
            "engine_stats": engine_stats,
            "setup_seconds": setup_seconds,
            "seconds": seconds,
            # every worker's: the ratio per CPU second must not favour more workers
            "cpu_seconds": cpu + sum(h["cpu_seconds"] for h in helper_results),
            "workers": 1 + len(helper_results),
            "helper_stats": [h["engine_stats"] for h in helper_results],
            "helper_cpu_seconds": [h["cpu_seconds"] for h in helper_results],
            "mailbox_messages": spec["mailbox_messages"],
            "expected_messages": len(expected),
            "expected_partner_rows": len(exp_pairs),
            "imported_messages": imported,
            "missing_messages": len(set(expected) - got_mids),
            "missing_partner_rows": len(missing_pairs),
            "duplicate_partner_rows": len(dup_pairs),
            "unexpected_messages": len(unexpected),
            "unexpected_sample": unexpected[:5],
            "chatter": stats,
            "imap_commands": commands,
            "correct": not missing_pairs and not dup_pairs and not unexpected,
        }
        result["msgs_per_s"] = imported / seconds if seconds else None
        result["rows_per_s"] = stats["rows"] / seconds if seconds else None
        result["mailbox_msgs_per_s"] = spec["mailbox_messages"] / seconds if seconds else None
        return result


def _wait_helpers_ready(helpers, timeout=120):
    """Until every helper has its Odoo loaded (it writes a ready file)."""
    deadline = time.monotonic() + timeout
    for h in helpers:
        ready = h["result_path"] + ".ready"
        while not os.path.exists(ready):
            if h["proc"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("helper worker did not start: see %s" % h["log"])
            time.sleep(0.05)


def worker_ours_helper(spec):
    """A second cron worker: waits for the backfill to start, then runs the sync."""
    counter = ImapCommandCounter().install()
    with engine_cursor(spec) as (cr, env, engine):
        open(spec["result_path"] + ".ready", "w").close()
        deadline = time.monotonic() + 120
        while not env["mailsync.mailbox"].search_count(
                [("backfill_state", "in", ("scanning", "importing", "done"))]):
            if time.monotonic() > deadline:
                raise RuntimeError("no backfill started")
            cr.commit()
            env.invalidate_all()
            time.sleep(0.01)
        before = counter.snapshot()
        c0 = time.process_time()
        stats = engine.help_backfill()
        return {"engine_stats": stats, "cpu_seconds": time.process_time() - c0,
                "imap_commands": ImapCommandCounter.diff(counter.snapshot(), before)}


def worker_poll(spec):
    """A 10-folder mailbox: initial sync, then N no-change polls (time + IMAP commands)."""
    counter = ImapCommandCounter().install()
    with engine_cursor(spec) as (cr, env, engine):
        _deactivate_other_crons(env, keep_model="mailsync.mailbox")
        _ensure_partners(env, spec["contacts"])
        owner = _make_owner(env, spec["imap"]["login"], "Poll Owner")
        mailbox = engine.create_mailbox(spec["imap"], owner)
        engine.configure(mailbox, spec["window_days"])
        engine.select_folders(mailbox, spec["folders"])
        cr.commit()
        engine.backfill(mailbox)
        engine.poll(mailbox)          # settle the cursors
        times, per_poll, engine_cmds = [], [], []
        for _ in range(spec["repeats"]):
            before = counter.snapshot()
            t0 = time.perf_counter()
            stats = engine.poll(mailbox)
            times.append(time.perf_counter() - t0)
            per_poll.append(ImapCommandCounter.diff(counter.snapshot(), before))
            engine_cmds.append(stats.get("commands"))
        # contrast: one new message in INBOX
        subprocess.run([sys.executable, "-c", _APPEND_SNIPPET, json.dumps(spec["imap"]),
                        "INBOX", spec["new_message_path"]], check=True)
        before = counter.snapshot()
        t0 = time.perf_counter()
        engine.poll(mailbox)
        new_seconds = time.perf_counter() - t0
        new_cmds = ImapCommandCounter.diff(counter.snapshot(), before)
        totals = [sum(c.values()) for c in per_poll]
        fetches = [sum(v for k, v in c.items() if "FETCH" in k) for c in per_poll]
        return {
            "folders": len(spec["folders"]),
            "repeats": len(times),
            "median_ms": statistics.median(times) * 1000,
            "min_ms": min(times) * 1000,
            "max_ms": max(times) * 1000,
            "commands_median": statistics.median(totals),
            "commands_per_poll": per_poll[len(per_poll) // 2],
            "engine_reported_commands": engine_cmds[len(engine_cmds) // 2],
            "fetch_commands_max": max(fetches),
            "one_new_message": {"ms": new_seconds * 1000, "commands": new_cmds},
        }


_APPEND_SNIPPET = r"""
import json, ssl, sys, imapclient
imap = json.loads(sys.argv[1]); folder = sys.argv[2]
ctx = ssl.create_default_context(cadata=imap["ca_pem"])
c = imapclient.IMAPClient(imap["host"], port=imap["port"], ssl=True, ssl_context=ctx, timeout=120)
c.login(imap["login"], imap["password"])
with open(sys.argv[3], "rb") as fh:
    c.append(folder, fh.read())
c.logout()
"""


def worker_memory_raw(spec):
    """Fresh process, one step measured (spec["mode"]):
    fetch        BODY.PEEK[] of the big message with imapclient (raw bytes held)
    fetch_quiet  the same with imaplib's debug formatting off (client._imap.debug = 0)
    parse        mailsync.mime.parse_message of the raw bytes (read from a file first)
    fetch_parse  both, as a sync step does them."""
    import ssl

    import imapclient
    mode = spec["mode"]
    imap = spec["imap"]
    mime = import_mailsync("mime") if mode in ("parse", "fetch_parse") else None
    size = os.path.getsize(spec["big_message_path"])
    if mode == "parse":
        with open(spec["big_message_path"], "rb") as fh:
            raw = fh.read()
        mime.parse_message(b"From: a@b.example\r\nSubject: warm-up\r\n\r\nhello\r\n")
        parsed, mem = measure_memory(lambda: mime.parse_message(raw))
        return {"mode": mode, "message_bytes": size, "memory": mem, "growth_ratio": mem["growth"] / size,
                "attachments": [(a.filename, a.size) for a in parsed.attachments]}
    ctx = ssl.create_default_context(cadata=imap["ca_pem"])
    c = imapclient.IMAPClient(imap["host"], port=imap["port"], ssl=True, ssl_context=ctx, timeout=120)
    c.login(imap["login"], imap["password"])
    if mode == "fetch_quiet":
        c._imap.debug = 0          # see _raw_fetch: no repr() of every literal
    c.select_folder("INBOX", readonly=True)
    uids = c.search("ALL")
    c.fetch(uids[:1], ["RFC822.SIZE", "BODY.PEEK[HEADER]"])      # warm up code paths
    if mime is not None:
        mime.parse_message(b"From: a@b.example\r\nSubject: warm-up\r\n\r\nhello\r\n")

    def step():
        raw = c.fetch(uids[:1], ["BODY.PEEK[]"])[uids[0]][b"BODY[]"]
        if mime is None:
            return len(raw)
        return len(mime.parse_message(raw).attachments)

    _r, mem = measure_memory(step)
    c.logout()
    return {"mode": mode, "message_bytes": size, "memory": mem, "growth_ratio": mem["growth"] / size}


def worker_memory_engine(spec):
    """Fresh Odoo process: a mailbox already synced (warm), then one new 25 MB message
    appended by a child process and imported by a poll. Peak RSS growth of this process."""
    with engine_cursor(spec) as (cr, env, engine):
        _deactivate_other_crons(env, keep_model="mailsync.mailbox")
        _ensure_partners(env, [spec["contact"]])
        owner = _make_owner(env, spec["imap"]["login"], "Memory Owner")
        mailbox = engine.create_mailbox(spec["imap"], owner)
        engine.configure(mailbox, spec["window_days"])
        engine.select_folders(mailbox, ["INBOX"])
        cr.commit()
        engine.backfill(mailbox)      # imports the small warm-up message
        engine.poll(mailbox)
        subprocess.run([sys.executable, "-c", _APPEND_SNIPPET, json.dumps(spec["imap"]),
                        "INBOX", spec["big_message_path"]], check=True)
        cr.execute("SELECT COALESCE(MAX(id), 0) FROM mail_message")
        since = cr.fetchone()[0]
        size = os.path.getsize(spec["big_message_path"])
        t0 = time.monotonic()
        _r, mem = measure_memory(lambda: engine.poll(mailbox))
        seconds = time.monotonic() - t0
        stats, _rows = email_message_stats(cr, since)
        return {"message_bytes": size, "memory": mem, "growth_ratio": mem["growth"] / size,
                "seconds": seconds, "imported_rows": stats["rows"]}


WORKERS = {
    "fetchmail": worker_fetchmail,
    "ours": worker_ours,
    "ours_helper": worker_ours_helper,
    "poll": worker_poll,
    "memory_raw": worker_memory_raw,
    "memory_engine": worker_memory_engine,
}


# =========================================================================== ceiling
def _raw_fetch(rig, user, folders, header_repeats=3, batch=100, quiet_imaplib=False):
    """Raw imapclient FETCH of every message of ``folders`` (full bodies once, headers
    ``header_repeats`` times), loopback TLS: the ceiling for any IMAP importer.

    quiet_imaplib: set ``client._imap.debug = 0``. IMAPClient sets imaplib's debug level
    to 5 and routes imaplib's messages to a DEBUG logger; imaplib then formats
    ``%r`` of every response -- each fetched literal, i.e. the whole message -- before
    the logger drops it: ~1/3 of the FETCH CPU and a ~3x transient copy of each body."""
    out = {"quiet_imaplib": quiet_imaplib}
    with rig.imap_client(user, timeout=300) as c:
        if quiet_imaplib:
            c._imap.debug = 0
        plan = []
        for f in folders:
            c.select_folder(f, readonly=True)
            plan.append((f, sorted(c.search("ALL"))))
        n = sum(len(u) for _f, u in plan)
        # full bodies
        t0 = time.perf_counter()
        nbytes = 0
        for f, uids in plan:
            c.select_folder(f, readonly=True)
            for i in range(0, len(uids), batch):
                for _uid, d in c.fetch(uids[i:i + batch], ["BODY.PEEK[]"]).items():
                    nbytes += len(d[b"BODY[]"])
        t = time.perf_counter() - t0
        out["full_body"] = {"messages": n, "seconds": t, "msgs_per_s": n / t, "mb_per_s": nbytes / t / 1e6,
                            "batch": batch}
        # headers only (the fields an importer needs to decide), bigger batches
        fields = ("BODY.PEEK[HEADER.FIELDS (FROM TO CC BCC DATE SUBJECT MESSAGE-ID IN-REPLY-TO "
                  "REFERENCES)]")
        times = []
        for _ in range(header_repeats):
            t0 = time.perf_counter()
            for f, uids in plan:
                c.select_folder(f, readonly=True)
                for i in range(0, len(uids), 1000):
                    c.fetch(uids[i:i + 1000], [fields, "RFC822.SIZE", "INTERNALDATE"])
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        out["headers"] = {"messages": n, "seconds": t, "msgs_per_s": n / t, "repeats": header_repeats,
                          "batch": 1000}
    return out


# =========================================================================== driver
def parse_args(argv):
    from bench import corpus as corpus_mod
    ap = argparse.ArgumentParser(description="Inbound sync benchmark vs Odoo fetchmail (see module doc).")
    ap.add_argument("--messages", type=int, default=None,
                    help="corpus size loaded into the benchmark mailbox (default 10000)")
    ap.add_argument("--baseline-messages", type=int, default=None,
                    help="messages fetchmail imports (default 1000; fetchmail runs ~22/s)")
    ap.add_argument("--seed", type=int, default=corpus_mod.DEFAULT_SEED)
    ap.add_argument("--poll-repeats", type=int, default=None, help="no-change polls timed (default 21)")
    ap.add_argument("--big-mb", type=float, default=None, help="size of the memory-test message (default 25)")
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--skip", default="", help="comma list of stages to skip: "
                    "ceiling,fetchmail,ours,poll,memory")
    ap.add_argument("--fresh-db", action="store_true", help="rebuild the template databases")
    ap.add_argument("--addons-from", default="HEAD",
                    help="git revision whose imap_sent_sync* addons are benchmarked (default HEAD: "
                         "committed code), or 'worktree' for the checkout as it is")
    ap.add_argument("--keep", action="store_true", help="keep the run directory and rig workdir")
    ap.add_argument("--attachment-share", type=float, default=0.10,
                    help="share of conversations whose messages carry attachments (default 0.10, "
                         "the issue's mix; 0 gives a light corpus of text and HTML mail)")
    ap.add_argument("--workers", type=int, default=2,
                    help="processes running our sync at once, as Odoo's cron workers do "
                         "(default 2: Odoo's default max_cron_threads, and the two inbound "
                         "jobs we ship; 1 measures a single worker)")
    ap.add_argument("--profile", action="store_true",
                    help="run our backfill under cProfile (slower; the .prof and the top "
                         "functions land in the run directory / worker log; implies --keep)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    q = args.quick
    if args.messages is None:
        args.messages = 600 if q else corpus_mod.DEFAULT_MESSAGES
    if args.baseline_messages is None:
        args.baseline_messages = 100 if q else 1000
    args.baseline_messages = min(args.baseline_messages, args.messages)
    if args.poll_repeats is None:
        args.poll_repeats = 7 if q else 21
    if args.big_mb is None:
        args.big_mb = 5.0 if q else 25.0
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.profile:
        args.keep = True
    return args


def stride_sample(items, k):
    """k items spread evenly over the list (same mix as the whole corpus)."""
    if k >= len(items):
        return list(items)
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if args.worker:
        return _worker_main(args.worker, args.spec)

    from bench import corpus as corpus_mod
    from mailrig import MailRig

    started = time.time()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(WORK_ROOT, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix="run-%s-" % stamp, dir=WORK_ROOT)
    addons_dir, addons_commit = set_addons_dir(args.addons_from)
    log("imap_sent_sync addons from %s (%s)", args.addons_from, addons_commit or addons_dir)
    conf = write_odoo_conf(os.path.join(run_dir, "odoo.conf"))
    results = {
        "benchmark": "inbound",
        "timestamp": stamp,
        "command": " ".join([sys.executable] + sys.argv),
        "host": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg(), "python": platform.python_version(),
                 "platform": platform.platform()},
        "args": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()
                 if k not in ("worker", "spec")},
        "targets": TARGETS,
        "addons": {"from": args.addons_from, "commit": addons_commit, "dir": addons_dir},
    }
    log("run directory %s", run_dir)

    # databases in the background (cloned from templates; built once per source hash)
    our_modules = [m for m in OUR_ADDONS if os.path.isfile(os.path.join(ADDONS_DIR, m, "__manifest__.py"))]
    if not our_modules:
        log("no imap_sent_sync addon in %s: engine stages will report 'unavailable'", ADDONS_DIR)
    drop_stale_run_dbs()
    preps = {}
    if "fetchmail" not in args.skip:
        preps["fm"] = DbPrep("fm", FETCHMAIL_MODULES, conf, run_dir, args.fresh_db, args.keep).start()
    if not {"ours", "poll", "memory"} <= args.skip:
        preps["ours"] = DbPrep("ours", our_modules, conf, run_dir, args.fresh_db, args.keep).start()

    # corpus
    log("generating corpus: %d messages, seed %d", args.messages, args.seed)
    corpus = corpus_mod.generate(args.messages, args.seed, attachment_share=args.attachment_share)
    summary = corpus.summary()
    summary["generation_seconds"] = round(corpus.generation_seconds, 1)
    results["corpus"] = summary
    log("corpus: %d items, %.0f MB, %d with attachments, %d involve contacts, checksum %s",
        summary["items"], summary["total_mb"], summary["with_attachments"], summary["involving_contacts"],
        summary["checksum"][:16])
    window_days = corpus_mod.window_days_needed(corpus)

    rig = MailRig(keep_workdir=args.keep)
    rig.start()
    try:
        return _run(args, results, corpus, corpus_mod, rig, preps, conf, run_dir, window_days, our_modules,
                    started, stamp)
    finally:
        rig.stop()
        if not args.keep:
            for prep in preps.values():
                if prep.thread is not None:
                    prep.thread.join()
                drop_db(prep.db)
            shutil.rmtree(run_dir, ignore_errors=True)


def _imap_spec(rig, user):
    return {"host": rig.host, "port": rig.imaps_port, "smtp_port": rig.smtps_port, "login": user.login,
            "password": user.password, "ca_pem": rig.ca_pem}


def _run(args, results, corpus, corpus_mod, rig, preps, conf, run_dir, window_days, our_modules,
         started, stamp):
    # ---- load the rig
    rep = rig.add_user("rep")
    t = corpus_mod.load_into_rig(rig, rep, corpus.items)
    log("loaded %d messages (%.0f MB) into rep@rig.test in %.1f s (%d MULTIAPPEND commands)",
        t["messages"], t["mb"], t["seconds"], t["commands"])
    results["load"] = {"rep": t}

    # fetchmail reads INBOX only, and only UNSEEN mail: a stride sample of the corpus's
    # INBOX (same mix), loaded unseen. (Sent mail in its INBOX would also trip Odoo's
    # mail-loop protection: >20 records from one sender in 2 h are bounced, not imported.)
    baseline_items = stride_sample(corpus.folder_items("INBOX"), args.baseline_messages)
    fm_user = rig.add_user("fetchmail")
    t = corpus_mod.load_into_rig(rig, fm_user, baseline_items, flags=False)
    results["load"]["fetchmail"] = t

    # poll mailbox: 10 folders, some mail in each
    poll_user = rig.add_user("poll10")
    with rig.imap_client(poll_user) as c:
        for f in POLL_EXTRA_FOLDERS:
            c.create_folder(f)
            c.subscribe_folder(f)
        poll_folders = [name for _flags, _d, name in c.list_folders()
                        if b"\\Noselect" not in _flags]
    contact_items = [it for it in corpus.items if it.contacts]
    per_folder = 5 if args.quick else 30
    for i, f in enumerate(sorted(poll_folders)):
        corpus_mod.load_into_rig(rig, poll_user, contact_items[i * per_folder:(i + 1) * per_folder],
                                 folder_map={"INBOX": f, "Sent": f})
    new_msg_path = os.path.join(run_dir, "new-message.eml")
    with open(new_msg_path, "wb") as fh:
        fh.write(contact_items[-1].raw.replace(contact_items[-1].message_id.encode(),
                                               b"<bench-poll-new@rig.test>"))

    # memory: a 25 MB message from a contact
    big_raw, big_sender = corpus_mod.big_message(int(args.big_mb * 1e6), args.seed,
                                                 owner=corpus_mod.DEFAULT_OWNER,
                                                 sender=corpus.contacts[0])
    big_path = os.path.join(run_dir, "big-message.eml")
    with open(big_path, "wb") as fh:
        fh.write(big_raw)
    bigraw_user = rig.add_user("bigraw")
    rig.append(bigraw_user, "INBOX", big_raw)
    big_user = rig.add_user("big")
    rig.append(big_user, "INBOX", contact_items[0].raw)      # warm-up message
    del big_raw

    # ---- ceiling (raw imapclient)
    if "ceiling" not in args.skip:
        log("ceiling: raw imapclient FETCH from Dovecot")
        results["ceiling"] = _raw_fetch(rig, rep, ["INBOX", rep.sent_folder], 3, 100)
        results["ceiling_quiet_imaplib"] = _raw_fetch(rig, rep, ["INBOX", rep.sent_folder], 3, 100,
                                                      quiet_imaplib=True)
        for key in ("ceiling", "ceiling_quiet_imaplib"):
            log("%s: full bodies %.0f msgs/s (%.0f MB/s), headers %.0f msgs/s", key,
                results[key]["full_body"]["msgs_per_s"], results[key]["full_body"]["mb_per_s"],
                results[key]["headers"]["msgs_per_s"])

    # ---- memory, raw (no Odoo)
    if "memory" not in args.skip:
        log("memory: raw fetch / parse of a %.0f MB message (one fresh process each)", args.big_mb)
        results["memory_raw"] = {}
        for mode in ("fetch", "fetch_quiet", "parse", "fetch_parse"):
            results["memory_raw"][mode] = run_worker(
                "memory_raw", {"imap": _imap_spec(rig, bigraw_user), "mode": mode,
                               "big_message_path": big_path}, run_dir, 300)

    for name, prep in preps.items():
        log("waiting for the %s database", name)
        prep.wait()
        results.setdefault("databases", {})[name] = {
            "db": prep.db, "template": prep.template, "reused_template": prep.reused_template,
            "install_seconds": prep.install_seconds}

    # ---- fetchmail baseline
    if "fetchmail" not in args.skip:
        log("fetchmail: importing %d messages into crm.lead (Odoo 18 fetchmail.server)", len(baseline_items))
        bundle = os.path.join(run_dir, "ca-bundle.pem")
        with open(bundle, "w") as fh:
            for sys_ca in ("/etc/ssl/certs/ca-certificates.crt",):
                if os.path.exists(sys_ca):
                    with open(sys_ca) as src:
                        fh.write(src.read())
            fh.write(rig.ca_pem)
        spec = {"odoo_conf": conf, "db": preps["fm"].db, "imap": _imap_spec(rig, fm_user), "model": "crm.lead",
                "expected_message_ids": [it.message_id for it in baseline_items],
                "env": {"SSL_CERT_FILE": bundle}}
        results["fetchmail"] = run_worker("fetchmail", spec, run_dir, 3600)
        fm = results["fetchmail"]
        if fm.get("status") == "ok":
            log("fetchmail: %d/%d messages in %.1f s = %.1f msgs/s", fm["imported_messages"],
                fm["mailbox_messages"], fm["seconds"], fm["msgs_per_s"])
        else:
            log("fetchmail FAILED: %s", fm.get("error") or fm.get("log_tail", "")[-1500:])

    # ---- ours
    folders = ["INBOX", rep.sent_folder]
    if "ours" not in args.skip:
        log("ours: backfill of %d messages", len(corpus.items))
        expected = corpus.expected_imports(folders=("INBOX", "Sent"))
        spec = {"odoo_conf": conf, "db": preps["ours"].db, "imap": _imap_spec(rig, rep),
                "owner_name": corpus.owner.name, "folders": folders, "window_days": window_days,
                "contacts": [{"name": p.name, "email": p.email, "company": p.company} for p in corpus.contacts],
                "expected": expected, "mailbox_messages": len(corpus.items),
                "profile": os.path.join(run_dir, "ours.prof") if args.profile else None,
                "workers": args.workers, "run_dir": run_dir}
        preps["ours"].ensure_current()
        results["ours"] = run_worker("ours", spec, run_dir, 3600)
        o = results["ours"]
        if o.get("status") == "ok":
            log("ours: %d/%d messages in %.1f s = %.0f msgs/s, correct=%s", o["imported_messages"],
                o["expected_messages"], o["seconds"], o["msgs_per_s"], o["correct"])
        else:
            log("ours: %s %s", o.get("status"), o.get("reason") or o.get("error") or o.get("log_tail", "")[-1500:])

    # ---- poll
    if "poll" not in args.skip:
        spec = {"odoo_conf": conf, "db": preps["ours"].db, "imap": _imap_spec(rig, poll_user),
                "folders": poll_folders, "window_days": window_days, "repeats": args.poll_repeats,
                "new_message_path": new_msg_path,
                "contacts": [{"name": p.name, "email": p.email, "company": p.company} for p in corpus.contacts]}
        log("poll: %d folders, %d no-change polls", len(poll_folders), args.poll_repeats)
        preps["ours"].ensure_current()
        results["poll"] = run_worker("poll", spec, run_dir, 900)

    # ---- memory, engine
    if "memory" not in args.skip:
        spec = {"odoo_conf": conf, "db": preps["ours"].db, "imap": _imap_spec(rig, big_user),
                "window_days": window_days, "big_message_path": big_path,
                "contact": {"name": big_sender.name, "email": big_sender.email}}
        log("memory: engine sync of one %.0f MB message", args.big_mb)
        preps["ours"].ensure_current()
        results["memory_engine"] = run_worker("memory_engine", spec, run_dir, 900)

    results["host"]["loadavg_end"] = os.getloadavg()
    results["total_seconds"] = time.time() - started
    compute_ratios(results)
    print_table(results)
    out_dir = os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "inbound-%s.json" % stamp)
    with open(path, "w") as fh:
        json.dump(results, fh, indent=2, default=str)
    print("\nJSON: %s" % os.path.relpath(path, os.getcwd()))
    parts = [results.get(k, {}) for k in ("fetchmail", "ours", "poll", "memory_engine")]
    parts += list((results.get("memory_raw") or {}).values())
    ok = all(p.get("status", "ok") in ("ok", "unavailable") for p in parts)
    return 0 if ok else 1


def _ok(results, key):
    r = results.get(key)
    return r if r and r.get("status", "ok") == "ok" else None


def compute_ratios(results):
    fm, ours, ceil = _ok(results, "fetchmail"), _ok(results, "ours"), results.get("ceiling")
    r = {}
    if fm and ours and fm.get("msgs_per_s"):
        r["ours_vs_fetchmail"] = ours["msgs_per_s"] / fm["msgs_per_s"]
        r["ours_mailbox_vs_fetchmail"] = ours["mailbox_msgs_per_s"] / fm["msgs_per_s"]
        if ours.get("cpu_seconds") and fm.get("cpu_seconds"):
            # per CPU second of the Odoo process (PostgreSQL and Dovecot not counted): less
            # sensitive to what else runs on a shared machine than wall time
            r["ours_vs_fetchmail_cpu"] = ((ours["imported_messages"] / ours["cpu_seconds"])
                                          / (fm["imported_messages"] / fm["cpu_seconds"]))
    if ours and ceil:
        r["ours_mailbox_vs_raw_fetch"] = ours["mailbox_msgs_per_s"] / ceil["full_body"]["msgs_per_s"]
    if fm and ceil:
        r["fetchmail_vs_raw_fetch"] = fm["msgs_per_s"] / ceil["full_body"]["msgs_per_s"]
    results["ratios"] = r


def print_table(results):
    rows = []

    def add(metric, value, note=""):
        rows.append((metric, value, note))

    c = results["corpus"]
    add("corpus", "%d msgs, %.0f MB" % (c["items"], c["total_mb"]),
        "seed %s, sha256 %s..." % (c["seed"], c["checksum"][:16]))
    add("", "%d with attachments" % c["with_attachments"],
        "%d involve contacts (%d distinct to import)" % (c["involving_contacts"], c["expected_imports"]))
    for key, label in (("ceiling", "imapclient as is"), ("ceiling_quiet_imaplib", "_imap.debug = 0")):
        ceil = results.get(key)
        if ceil:
            add("raw FETCH full bodies", "%s msgs/s" % fmt_rate(ceil["full_body"]["msgs_per_s"]),
                "%.0f MB/s, loopback TLS, %s (ceiling)" % (ceil["full_body"]["mb_per_s"], label))
            add("raw FETCH headers", "%s msgs/s" % fmt_rate(ceil["headers"]["msgs_per_s"]),
                "median of %d, %s" % (ceil["headers"]["repeats"], label))
    fm = results.get("fetchmail")
    if fm:
        if fm.get("status") == "ok":
            add("fetchmail -> crm.lead", "%s msgs/s" % fmt_rate(fm["msgs_per_s"]),
                "%d/%d msgs in %.1f s (subset of the corpus)" % (fm["imported_messages"], fm["mailbox_messages"],
                                                                 fm["seconds"]))
        else:
            add("fetchmail -> crm.lead", fm.get("status"), fm.get("log", ""))
    o = results.get("ours")
    if o:
        if o.get("status") == "ok":
            add("ours backfill -> chatter", "%s msgs/s" % fmt_rate(o["msgs_per_s"]),
                "%d msgs imported in %.1f s (%s mailbox msgs/s), %d worker%s" % (
                    o["imported_messages"], o["seconds"], fmt_rate(o["mailbox_msgs_per_s"]),
                    o.get("workers", 1), "s" if o.get("workers", 1) > 1 else ""))
            add("ours correctness", "OK" if o["correct"] else "FAILED",
                "missing %d, duplicates %d, strangers %d" % (o["missing_partner_rows"],
                                                             o["duplicate_partner_rows"], o["unexpected_messages"]))
        else:
            add("ours backfill", o.get("status"), (o.get("reason") or o.get("log", ""))[:70])
    r = results.get("ratios", {})
    if "ours_vs_fetchmail" in r:
        add("ratio ours / fetchmail", "%.1fx" % r["ours_vs_fetchmail"],
            "target >= %.0fx (imported msgs/s, wall time)" % TARGETS["ratio_vs_fetchmail"])
    if "ours_vs_fetchmail_cpu" in r:
        add("ratio per Odoo CPU second", "%.1fx" % r["ours_vs_fetchmail_cpu"],
            "ours %.0f s CPU (all workers), fetchmail %.0f s CPU" % (results["ours"]["cpu_seconds"],
                                                     results["fetchmail"]["cpu_seconds"]))
    p = results.get("poll")
    if p:
        if p.get("status") == "ok":
            add("no-change poll, %d folders" % p["folders"], "%.1f ms" % p["median_ms"],
                "median of %d; %s IMAP commands, %d FETCH" % (p["repeats"], p["commands_median"],
                                                              p["fetch_commands_max"]))
        else:
            add("no-change poll", p.get("status"), (p.get("reason") or p.get("log", ""))[:70])
    labels = {"fetch": "memory: raw imapclient FETCH", "fetch_quiet": "memory: FETCH, _imap.debug = 0",
              "parse": "memory: mime.parse_message",
              "fetch_parse": "memory: FETCH + parse"}
    for mode, m in (results.get("memory_raw") or {}).items():
        if m.get("status") == "ok":
            add(labels[mode], "%.2fx" % m["growth_ratio"], "peak RSS growth %s / %s message" % (
                fmt_mb(m["memory"]["growth"]), fmt_mb(m["message_bytes"])))
        else:
            add(labels[mode], m.get("status"), m.get("log", ""))
    m = results.get("memory_engine")
    if m:
        if m.get("status") == "ok":
            add("memory: engine sync", "%.2fx" % m["growth_ratio"],
                "peak RSS growth %s for %s (target < 3x)" % (fmt_mb(m["memory"]["growth"]),
                                                             fmt_mb(m["message_bytes"])))
        else:
            add("memory: engine sync", m.get("status"), (m.get("reason") or m.get("log", ""))[:70])
    add("total run", "%.0f s" % results["total_seconds"],
        "load avg %.1f -> %.1f on %d CPUs" % (results["host"]["loadavg_start"][0],
                                              results["host"]["loadavg_end"][0], results["host"]["cpus"]))
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(str(r[1])) for r in rows)
    print()
    print("%-*s  %-*s  %s" % (w1, "metric", w2, "value", "notes"))
    print("%s  %s  %s" % ("-" * w1, "-" * w2, "-" * 40))
    for metric, value, note in rows:
        print("%-*s  %-*s  %s" % (w1, metric, w2, value, note))


if __name__ == "__main__":
    sys.exit(main())
