"""MailRig: a CA, two Dovecot instances and three SMTP listeners on loopback."""
import atexit
import base64
import os
import re
import shutil
import smtplib
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, replace

import imapclient

from . import certs, layouts
from .dovecot import (DOVECOT_BIN, DovecotError, DovecotInstance, free_port, group_members, mail_ids,
                      reap_orphans)
from .smtp import SMTPServers

DOMAIN = "rig.test"
HOST = "127.0.0.1"

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_LOGIN_RE = re.compile(r"Login: user=<(?P<user>[^>]*)>, method=(?P<method>[^,]+), .*?"
                       r"lport=(?P<port>\d+)")
_APPENDUID_RE = re.compile(rb"APPENDUID\s+(\d+)\s+([0-9:,]+)", re.I)


class RigError(RuntimeError):
    pass


@dataclass(frozen=True)
class RigUser:
    """A mailbox on the rig. login == address; password is the clear text."""
    name: str
    address: str
    login: str
    password: str
    layout: str

    def folder(self, role):
        """Folder name for a role: inbox, sent, drafts, trash, junk, archive
        (standard/outlook), all/flagged/important (gmail). KeyError if absent."""
        return layouts.ROLES[self.layout][role]

    @property
    def sent_folder(self):
        return self.folder("sent")

    @property
    def folders(self):
        """Folders the rig created for this user, INBOX first."""
        return layouts.folders(self.layout)

    def __repr__(self):  # never show the password in test output
        return "RigUser(%r, layout=%r)" % (self.address, self.layout)


def parse_uid_set(text):
    """'1:3,7' -> [1, 2, 3, 7]"""
    if isinstance(text, bytes):
        text = text.decode()
    uids = []
    for part in text.split(","):
        if ":" in part:
            lo, hi = (int(x) for x in part.split(":"))
            lo, hi = min(lo, hi), max(lo, hi)
            uids.extend(range(lo, hi + 1))
        elif part:
            uids.append(int(part))
    return uids


def parse_appenduid(response):
    """(uidvalidity, [uids]) from an APPEND/MULTIAPPEND tagged response, or None."""
    if isinstance(response, (list, tuple)):  # imapclient.multiappend's raw result
        response = b" ".join(r if isinstance(r, bytes) else str(r).encode() for r in response)
    if isinstance(response, str):
        response = response.encode()
    m = _APPENDUID_RE.search(response or b"")
    if not m:
        return None
    return int(m.group(1)), parse_uid_set(m.group(2))


class MailRig:
    """See the package docstring (``help(mailrig)``) for the API."""

    domain = DOMAIN
    host = HOST

    def __init__(self, workdir=None, *, imaps_port=None, imap_port=None, smtp_port=None,
                 smtps_port=None, max_userip_connections=100, keep_workdir=None):
        self._own_workdir = workdir is None
        self._workdir_arg = workdir
        self.workdir = None
        if keep_workdir is None:
            keep_workdir = bool(os.environ.get("MAILRIG_KEEP"))
        self.keep_workdir = keep_workdir
        self._fixed = {"imaps": imaps_port, "imap": imap_port, "submission": smtp_port,
                       "smtps": smtps_port}
        self.max_userip_connections = max_userip_connections
        self.imaps_port = self.imap_port = self.imap_nostarttls_port = None
        self.smtp_port = self.smtps_port = self.smtp_nostarttls_port = None
        self.ca_pem = None
        self.ca_file = None
        self.cert_file = None
        self.key_file = None
        self.dovecot_log = None
        self.dovecot_plain_log = None
        self.deliveries = []
        # When True the SMTP server also files each submitted message into the
        # sender's Sent-role folder (\Seen), like Gmail / Microsoft 365 do.
        self.smtp_saves_sent = False
        # Gmail keeps every message in [Gmail]/All Mail too; mimic that for
        # gmail-layout users on SMTP delivery and Sent saving.
        self.gmail_all_mail = True
        # When True, MAIL FROM must be the authenticated login (553 otherwise),
        # like Microsoft 365's SendAsDenied.
        self.smtp_enforce_sender = False
        self._users = {}
        self._lock = threading.RLock()
        self._fault = None
        self._fault_times = None
        self._auto_n = 0
        self._dovecot = None
        self._dovecot_plain = None
        self._smtp = None
        self._tmp_base = None
        self._started = False
        # Seconds Dovecot gets to exit on SIGTERM before SIGKILL. A throwaway rig
        # does not need a graceful stop; a kept workdir (demo) gets more time.
        self._grace = 0.2 if self._own_workdir else 2.0

    def __repr__(self):
        if not self._started:
            return "<MailRig stopped>"
        return "<MailRig %s imaps=%s imap=%s smtp=%s smtps=%s workdir=%s>" % (
            self.host, self.imaps_port, self.imap_port, self.smtp_port, self.smtps_port,
            self.workdir)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def started(self):
        return self._started

    def start(self):
        if self._started:
            return self
        t0 = time.monotonic()
        if not os.access(DOVECOT_BIN, os.X_OK):
            raise RigError("Dovecot not found at %s (apt-get install dovecot-imapd "
                           "dovecot-lmtpd, or set MAILRIG_DOVECOT)" % DOVECOT_BIN)
        reap_orphans()
        if self._own_workdir:
            self.workdir = tempfile.mkdtemp(prefix="mailrig-")
        else:
            self.workdir = os.path.abspath(self._workdir_arg)
            os.makedirs(self.workdir, exist_ok=True)
        try:
            self._prepare_dirs()
            paths = certs.generate(self.workdir)
            self.ca_file = paths["ca_file"]
            self.cert_file = paths["cert_file"]
            self.key_file = paths["key_file"]
            with open(self.ca_file) as fh:
                self.ca_pem = fh.read()
            self._load_users()
            self._start_servers()
        except BaseException:
            self._teardown()
            raise
        self._started = True
        self.startup_seconds = time.monotonic() - t0
        return self

    def _prepare_dirs(self):
        os.chmod(self.workdir, 0o755)
        self.mail_root = os.path.join(self.workdir, "mail")
        os.makedirs(self.mail_root, exist_ok=True)
        ids = mail_ids()
        if ids is not None:
            # Mail processes run as nobody: they must reach and write the mail root.
            os.chown(self.mail_root, ids[0], ids[1])
            self._ensure_traversable(self.mail_root, ids[2])
        self.users_dir = os.path.join(self.workdir, "users.d")
        os.makedirs(self.users_dir, exist_ok=True)
        # unix sockets are limited to 108 bytes: keep base_dir short whatever the workdir.
        if len(self.workdir) > 50:
            self._tmp_base = tempfile.mkdtemp(prefix="mrg-")
            base_root = self._tmp_base
        else:
            base_root = os.path.join(self.workdir, "run")
        self._base_main = os.path.join(base_root, "main")
        self._base_plain = os.path.join(base_root, "plain")

    @staticmethod
    def _ensure_traversable(target, mail_user):
        """Mail processes run as ``mail_user`` and need +x on every ancestor of the
        mail root. Temp dirs made by pytest (tmp_path) or mkdtemp are 0700: add o+x
        (traversal only, no listing) to such ancestors under the system temp dir;
        anywhere else refuse with a clear message rather than chmod user dirs."""
        tmp_root = os.path.realpath(tempfile.gettempdir())
        path = os.path.dirname(os.path.realpath(target))
        while path not in ("/", ""):
            st = os.stat(path)
            if not st.st_mode & 0o001:
                if path.startswith(tmp_root + os.sep) and st.st_uid == os.geteuid():
                    os.chmod(path, (st.st_mode & 0o7777) | 0o001)
                else:
                    raise RigError(
                        "%s is not traversable by other users; Dovecot's mail processes "
                        "(user %s) cannot reach %s. Use a workdir under %s."
                        % (path, mail_user, target, tmp_root))
            path = os.path.dirname(path)

    def _pick_ports(self):
        f = self._fixed
        return {
            "imaps": f["imaps"] or free_port(),
            "imap": f["imap"] or free_port(),
            "imap_plain": free_port(),
            "submission": f["submission"] or free_port(),
            "smtps": f["smtps"] or free_port(),
            "plain": free_port(),
        }

    def _start_servers(self):
        tag = "mailrig-%d-%s" % (os.getpid(), os.path.basename(self.workdir)[-6:])
        last_err = None
        # Free ports are picked then released, so another process can grab one in
        # between: retry with fresh ports on a bind failure.
        for _attempt in range(4):
            ports = self._pick_ports()
            self._dovecot = DovecotInstance(
                name=tag, directory=os.path.join(self.workdir, "dovecot"),
                base_dir=self._base_main, users_file=os.path.join(self.users_dir, "%u"),
                cert_file=self.cert_file, key_file=self.key_file,
                imap_port=ports["imap"], imaps_port=ports["imaps"], tls=True, lmtp=True,
                max_userip_connections=self.max_userip_connections)
            self._dovecot_plain = DovecotInstance(
                name=tag + "-plain", directory=os.path.join(self.workdir, "dovecot-plain"),
                base_dir=self._base_plain, users_file=os.path.join(self.users_dir, "%u"),
                cert_file=self.cert_file, key_file=self.key_file,
                imap_port=ports["imap_plain"], tls=False, lmtp=False,
                max_userip_connections=self.max_userip_connections)
            self.dovecot_log = self._dovecot.log_path
            self.dovecot_plain_log = self._dovecot_plain.log_path
            try:
                self._dovecot.start()
                self._dovecot_plain.start()
                self._smtp = SMTPServers(
                    self, {k: ports[k] for k in ("submission", "smtps", "plain")},
                    self._server_tls_context())
                self._smtp.start()
            except (DovecotError, OSError, RuntimeError) as exc:
                last_err = exc
                self._stop_servers()
                if "in use" in str(exc) or isinstance(exc, OSError) or self._bind_failed():
                    continue
                raise
            self.imaps_port = ports["imaps"]
            self.imap_port = ports["imap"]
            self.imap_nostarttls_port = ports["imap_plain"]
            self.smtp_port = ports["submission"]
            self.smtps_port = ports["smtps"]
            self.smtp_nostarttls_port = ports["plain"]
            return
        raise RigError("could not start the rig: %s" % last_err)

    def _bind_failed(self):
        return any(d is not None and d.address_in_use()
                   for d in (self._dovecot, self._dovecot_plain))

    def _server_tls_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def _stop_servers(self):
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None
        for inst in (self._dovecot, self._dovecot_plain):
            if inst is not None:
                inst.stop(grace=self._grace)

    def stop(self):
        """Stop every server and process the rig started; remove a temp workdir."""
        with self._lock:
            was = self._started
            self._started = False
            self._teardown()
            return was

    def _teardown(self):
        self._stop_servers()
        if self._tmp_base:
            shutil.rmtree(self._tmp_base, ignore_errors=True)
            self._tmp_base = None
        if self._own_workdir and self.workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def pids(self):
        """Live pids of every Dovecot process the rig started (masters + children)."""
        out = []
        for inst in (self._dovecot, self._dovecot_plain):
            if inst is not None and inst.proc is not None:
                out.extend(group_members(inst.proc.pid))
        return out

    def stop_imap(self):
        """Stop both Dovecot instances (ports stop answering) -- "server down" tests.
        SMTP keeps accepting but deliveries then fail with 451. Never on the shared rig."""
        for inst in (self._dovecot, self._dovecot_plain):
            inst.stop(grace=self._grace)

    def start_imap(self):
        """Restart Dovecot after stop_imap(), on the same ports, mail intact."""
        for inst in (self._dovecot, self._dovecot_plain):
            if not inst.running():
                inst.start()

    def imap_logins(self, user=None, min_count=0, timeout=3.0):
        """Successful IMAP logins seen by Dovecot, oldest first, as dicts
        {user, method, port, listener ("imaps"|"imap"|"imap_nostarttls"), tls}.

        Server-side proof of what a client did: Dovecot treats loopback as a
        secure channel and accepts LOGIN on imap_port without STARTTLS, so a test
        of "the client really used STARTTLS" must look here (tls=True) rather
        than expect the server to refuse. Dovecot writes its log asynchronously:
        min_count waits (up to timeout) until that many matching entries exist.
        """
        want = self.get_user(user).login if user is not None else None
        names = {self.imaps_port: "imaps", self.imap_port: "imap",
                 self.imap_nostarttls_port: "imap_nostarttls"}
        deadline = time.monotonic() + timeout
        while True:
            out = []
            for path in (self.dovecot_log, self.dovecot_plain_log):
                try:
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        lines = [ln for ln in fh if "imap-login: Info: Login: " in ln]
                except OSError:
                    continue
                for ln in lines:
                    m = _LOGIN_RE.search(ln)
                    if not m or (want and m.group("user") != want):
                        continue
                    fields = [f.strip() for f in ln.split(", ")]
                    port = int(m.group("port"))
                    out.append({"user": m.group("user"), "method": m.group("method"),
                                "port": port, "listener": names.get(port, "?"),
                                "tls": "TLS" in fields, "line": ln.rstrip()})
            if len(out) >= min_count or time.monotonic() > deadline:
                return out
            time.sleep(0.02)

    def closed_port(self):
        """A loopback port with nothing listening (connection refused)."""
        return free_port()

    def info(self):
        """JSON-able description (what `python -m mailrig serve` prints)."""
        return {
            "host": self.host,
            "domain": self.domain,
            "imaps_port": self.imaps_port,
            "imap_port": self.imap_port,
            "imap_nostarttls_port": self.imap_nostarttls_port,
            "smtp_port": self.smtp_port,
            "smtps_port": self.smtps_port,
            "smtp_nostarttls_port": self.smtp_nostarttls_port,
            "ca_file": self.ca_file,
            "workdir": self.workdir,
            "dovecot_log": self.dovecot_log,
            "users": [{"login": u.login, "password": u.password, "layout": u.layout}
                      for u in self._users.values()],
        }

    # ------------------------------------------------------------------ users
    def _user_line(self, u):
        secret = base64.b64encode(u.password.encode("utf-8")).decode()
        home = os.path.join(self.mail_root, u.login)
        ns = layouts.NAMESPACES[u.layout]
        # passwd-file: user:password:uid:gid:gecos:home:shell:extra. uid/gid empty
        # (global mail_uid/mail_gid), layout kept in gecos so a kept workdir can
        # be reloaded, PLAIN.b64 so any password character survives the ':' format.
        return "%s:{PLAIN.b64}%s:::%s:%s::userdb_namespace/%s/disabled=no\n" % (
            u.login, secret, u.layout, home, ns)

    def _write_user_file(self, u):
        # One passwd-file per user (Dovecot args use %u). Dovecot stats a
        # passwd-file at most once per second, so with one shared file a user
        # added within a second of a login stayed "unknown"; a new file is read
        # fresh on its first lookup.
        path = os.path.join(self.users_dir, u.login)
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(self._user_line(u))
        os.chmod(tmp, 0o644)
        # Reload is keyed on mtime (seconds) and size: force a strictly newer
        # mtime so an equal-length password change is noticed too.
        try:
            old = int(os.stat(path).st_mtime)
        except OSError:
            old = 0
        mtime = max(int(time.time()), old + 1)
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)

    def _load_users(self):
        users = {}
        for fname in sorted(os.listdir(self.users_dir)):
            if fname.endswith(".tmp"):
                continue
            with open(os.path.join(self.users_dir, fname)) as fh:
                line = fh.readline()
            parts = line.rstrip("\n").split(":")
            if len(parts) < 6 or not parts[1].startswith("{PLAIN.b64}"):
                continue
            login = parts[0]
            password = base64.b64decode(parts[1][len("{PLAIN.b64}"):]).decode("utf-8")
            layout = parts[4] if parts[4] in layouts.LAYOUTS else "standard"
            users[login] = RigUser(name=login.split("@")[0], address=login, login=login,
                                   password=password, layout=layout)
        self._users = users

    @property
    def users(self):
        """{login: RigUser} snapshot."""
        return dict(self._users)

    def get_user(self, who):
        """RigUser by login/address ("alice@rig.test") or bare name ("alice"), or None."""
        if isinstance(who, RigUser):
            who = who.login
        who = (who or "").strip().lower()
        if "@" not in who:
            who = "%s@%s" % (who, self.domain)
        return self._users.get(who)

    def _require(self, who):
        u = self.get_user(who)
        if u is None:
            raise RigError("no rig user %r" % (who,))
        return u

    def add_user(self, name=None, password=None, layout="standard", *, exist_ok=False):
        """Create a mailbox <name>@rig.test with the layout's folders; return a RigUser.

        name=None picks a fresh unique name (use this on the shared rig).
        An existing name raises RigError unless exist_ok=True (then the existing
        user is returned, whatever password/layout were asked for).
        """
        if layout not in layouts.LAYOUTS:
            raise ValueError("layout must be one of %s" % sorted(layouts.LAYOUTS))
        if not self._started:
            raise RigError("start the rig before adding users")
        with self._lock:
            if name is None:
                while True:
                    self._auto_n += 1
                    name = "user%d" % self._auto_n
                    if self.get_user(name) is None:
                        break
            name = name.lower()
            if "@" in name:
                local, _, dom = name.partition("@")
                if dom != self.domain:
                    raise ValueError("rig users live in @%s" % self.domain)
                name = local
            if not _NAME_RE.match(name):
                raise ValueError("bad user name %r" % name)
            existing = self.get_user(name)
            if existing is not None:
                if exist_ok:
                    return existing
                raise RigError("rig user %s already exists (pass name=None for a fresh one)"
                               % existing.login)
            if password is None:
                password = "pw-%s-%s" % (name, base64.b32encode(os.urandom(5)).decode().lower())
            if "\n" in password or "\r" in password:
                raise ValueError("password cannot contain line breaks")
            address = "%s@%s" % (name, self.domain)
            user = RigUser(name=name, address=address, login=address, password=password,
                           layout=layout)
            home = os.path.join(self.mail_root, address)
            os.makedirs(home, exist_ok=True)
            ids = mail_ids()
            if ids is not None:
                os.chown(home, ids[0], ids[1])
            self._write_user_file(user)
            users = dict(self._users)
            users[address] = user
            self._users = users
        with self.imap_client(user) as c:
            for folder in layouts.folders(layout)[1:]:
                c.create_folder(folder)
                c.subscribe_folder(folder)
            c.subscribe_folder("INBOX")
        return user

    def set_password(self, who, password):
        """Change a user's password (credential rotation tests); returns the new RigUser."""
        with self._lock:
            u = self._require(who)
            new = replace(u, password=password)
            self._write_user_file(new)
            users = dict(self._users)
            users[u.login] = new
            self._users = users
        # Dovecot may have stat()ed the file earlier this second and will serve
        # its cached copy until the next one: wait for the boundary so the new
        # password is effective when we return.
        now = time.time()
        time.sleep(int(now) + 1.05 - now)
        return new

    # ------------------------------------------------------------------ IMAP helpers
    def ssl_context(self):
        """Client SSLContext trusting only the rig CA (hostname checked)."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        return ctx

    def imap_client(self, user, *, timeout=15):
        """Logged-in IMAPClient over implicit TLS verified with the rig CA.
        Usable as a context manager (logs out on exit)."""
        u = self._require(user)
        c = imapclient.IMAPClient(self.host, port=self.imaps_port, ssl=True,
                                  ssl_context=self.ssl_context(), timeout=timeout)
        try:
            if u.password.isascii():
                c.login(u.login, u.password)
            else:
                # imaplib's LOGIN only sends ASCII; AUTHENTICATE PLAIN carries UTF-8.
                c.plain_login(u.login, u.password)
        except Exception:
            try:
                c.shutdown()
            except Exception:
                pass
            raise
        return c

    def append(self, user, folder, raw_bytes, flags=(), msg_time=None):
        """APPEND one message; returns its UID (from APPENDUID)."""
        with self.imap_client(user) as c:
            resp = c.append(folder, raw_bytes, flags=flags, msg_time=msg_time)
        parsed = parse_appenduid(resp)
        if not parsed:
            raise RigError("no APPENDUID in %r" % (resp,))
        return parsed[1][0]

    def append_many(self, user, folder, messages, flags=(), chunk=100):
        """MULTIAPPEND many messages (bytes, or dicts with msg/flags/date as imapclient
        accepts); returns their UIDs in order. ~10x faster than append() per message."""
        uids = []
        msgs = [m if isinstance(m, dict) else {"msg": m, "flags": flags} for m in messages]
        with self.imap_client(user) as c:
            for i in range(0, len(msgs), chunk):
                resp = c.multiappend(folder, msgs[i:i + chunk])
                parsed = parse_appenduid(resp)
                if not parsed:
                    raise RigError("no APPENDUID in %r" % (resp,))
                uids.extend(parsed[1])
        return uids

    def folder_uids(self, user, folder):
        """Sorted UIDs of every message in a folder."""
        with self.imap_client(user) as c:
            c.select_folder(folder, readonly=True)
            return sorted(c.search("ALL"))

    def search(self, user, folder, criteria):
        """UIDs matching imapclient search criteria, e.g. ["HEADER", "Message-ID", mid]."""
        with self.imap_client(user) as c:
            c.select_folder(folder, readonly=True)
            return sorted(c.search(criteria))

    def fetch_flags(self, user, folder):
        """{uid: tuple of flags as bytes, e.g. (b'\\\\Seen',)}"""
        with self.imap_client(user) as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            if not uids:
                return {}
            return {uid: tuple(d[b"FLAGS"]) for uid, d in c.fetch(uids, ["FLAGS"]).items()}

    def fetch_messages(self, user, folder, uids=None):
        """{uid: raw RFC822 bytes} (BODY.PEEK[], so \\Seen is untouched)."""
        with self.imap_client(user) as c:
            c.select_folder(folder, readonly=True)
            if uids is None:
                uids = c.search("ALL")
            if not uids:
                return {}
            return {uid: d[b"BODY[]"] for uid, d in c.fetch(uids, ["BODY.PEEK[]"]).items()}

    def list_folders(self, user):
        """{folder name: tuple of LIST flags (bytes)}"""
        with self.imap_client(user) as c:
            return {name: tuple(flags) for flags, _delim, name in c.list_folders()}

    # ------------------------------------------------------------------ delivery
    def deliver(self, user, raw_bytes, mail_from="sender@example.com"):
        """Deliver a message to a user's INBOX through Dovecot LMTP, as incoming mail
        from outside would arrive (no SMTP, nothing recorded in deliveries)."""
        u = self._require(user)
        self._lmtp_deliver(mail_from, [u.login], raw_bytes)
        if u.layout == "gmail" and self.gmail_all_mail:
            self.append(u, "[Gmail]/All Mail", raw_bytes)

    def _lmtp_deliver(self, mail_from, logins, raw_bytes):
        lmtp = smtplib.LMTP(self._dovecot.lmtp_socket, timeout=30)
        try:
            for login in logins:
                # One recipient per transaction: smtplib reads a single reply after
                # DATA, while LMTP sends one per recipient.
                lmtp.sendmail(mail_from or "", [login], raw_bytes)
        finally:
            try:
                lmtp.quit()
            except Exception:
                lmtp.close()

    def _process_delivery(self, delivery):
        """Called by the SMTP handler (in a worker thread) before it answers 250."""
        local = []
        for rcpt in delivery.rcpt_tos:
            u = self.get_user(rcpt) if rcpt.lower().endswith("@" + self.domain) else None
            if u is not None and u.login not in local:
                local.append(u.login)
        if local:
            self._lmtp_deliver(delivery.mail_from, local, delivery.data)
            for login in local:
                u = self._users[login]
                if u.layout == "gmail" and self.gmail_all_mail:
                    self.append(u, "[Gmail]/All Mail", delivery.data)
        delivery.delivered_to = local
        if self.smtp_saves_sent and delivery.login:
            sender = self.get_user(delivery.login)
            if sender is not None:
                self.append(sender, sender.sent_folder, delivery.data, flags=(b"\\Seen",))
                delivery.saved_sent = sender.sent_folder
                if sender.layout == "gmail" and self.gmail_all_mail:
                    self.append(sender, "[Gmail]/All Mail", delivery.data, flags=(b"\\Seen",))

    def deliveries_to(self, address):
        """Deliveries whose envelope recipients include ``address``."""
        address = address.lower()
        return [d for d in list(self.deliveries) if address in (r.lower() for r in d.rcpt_tos)]

    def fail_smtp(self, reply="451 4.3.0 Temporary failure (mailrig)", times=1):
        """Make the next ``times`` DATA commands fail with ``reply`` (times=None: until
        cleared). fail_smtp(None) clears. Per-rig: avoid on the shared rig."""
        with self._lock:
            self._fault = reply
            self._fault_times = times if reply else None

    def _take_smtp_fault(self):
        with self._lock:
            if not self._fault:
                return None
            reply = self._fault
            if self._fault_times is not None:
                self._fault_times -= 1
                if self._fault_times <= 0:
                    self._fault = None
            return reply


# ---------------------------------------------------------------------- shared rig
_shared = None
_shared_lock = threading.Lock()


def get_shared_rig():
    """The process-wide rig: started on first call, stopped at interpreter exit.

    Tests sharing it must not collide: create users with add_user() (name=None
    gives a unique one) and filter deliveries by recipient / Message-ID.
    """
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.started:
            rig = MailRig()
            rig.start()
            atexit.register(rig.stop)
            _shared = rig
        return _shared
