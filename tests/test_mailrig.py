"""Tests of the test rig itself: real Dovecot + aiosmtpd, nothing mocked."""
import email
import json
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from email.utils import make_msgid

import imapclient
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the root conftest normally does this
    sys.path.insert(0, ROOT)

from mailrig import LAYOUTS, MailRig, RigError, get_shared_rig  # noqa: E402

PY = sys.executable


@pytest.fixture(scope="module")
def rig():
    # A private rig: these tests flip switches (smtp_saves_sent, fail_smtp) that
    # must not leak into other modules using the shared rig.
    with MailRig() as r:
        yield r


def _msg(frm, to, subject="hello", msgid=None):
    msgid = msgid or make_msgid(domain="test.rig")
    raw = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n"
           "Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\nbody of %s\r\n"
           % (frm, to, subject, msgid, subject)).encode()
    return raw, msgid


def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _processes_mentioning(text):
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read()
            with open("/proc/%s/stat" % pid) as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmd and state != "Z":
            out.append((int(pid), cmd))
    return out


# --------------------------------------------------------------------- lifecycle
def test_start_stop_leaves_nothing_behind():
    r = MailRig()
    r.start()
    workdir = r.workdir
    ports = [r.imaps_port, r.imap_port, r.imap_nostarttls_port, r.smtp_port, r.smtps_port,
             r.smtp_nostarttls_port]
    assert len(set(ports)) == 6
    assert r.pids() and os.path.exists(r.dovecot_log)
    u = r.add_user("x")
    with r.imap_client(u) as c:  # a live IMAP session while stopping
        c.select_folder("INBOX")
        assert r.stop() is True
    assert r.pids() == []
    assert _processes_mentioning(workdir) == []
    assert all(_refused(p) for p in ports)
    assert not os.path.exists(workdir)
    assert r.stop() is False  # idempotent


def test_context_manager_and_closed_port():
    with MailRig() as r:
        assert r.started and r.host == "127.0.0.1"
        assert _refused(r.closed_port())
    assert not r.started and r.pids() == []


def test_shared_rig_is_a_singleton():
    a = get_shared_rig()
    assert a is get_shared_rig() and a.started
    u = a.add_user()  # unique name: safe on the shared rig
    assert u.address.endswith("@rig.test") and a.get_user(u.name) == u


# --------------------------------------------------------------------- IMAP
def test_capabilities(rig):
    u = rig.add_user()
    with rig.imap_client(u) as c:
        caps = set(c.capabilities())
    for cap in (b"CONDSTORE", b"QRESYNC", b"IDLE", b"MOVE", b"UIDPLUS", b"SPECIAL-USE",
                b"MULTIAPPEND", b"LITERAL+", b"ENABLE"):
        assert cap in caps


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layout_list_flags(rig, layout):
    u = rig.add_user(layout=layout)
    listed = rig.list_folders(u)
    special = {b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk", b"\\Archive", b"\\All",
               b"\\Flagged"}
    for folder, flag in LAYOUTS[layout]:
        got = set(listed[folder]) & special
        assert got == ({flag.encode()} if flag else set()), (folder, listed[folder])
    assert set(listed) >= {"INBOX"} | {f for f, _ in LAYOUTS[layout]}
    if layout == "outlook":
        assert not any(set(flags) & special for flags in listed.values())
    if layout == "gmail":
        assert "Sent" not in listed and "Trash" not in listed
        assert b"\\Noselect" in listed["[Gmail]"]
    with rig.imap_client(u) as c:
        assert c.namespace().personal[0][1] == "/"


def test_tls_verified_with_rig_ca_and_rejected_without(rig):
    u = rig.add_user()
    for host in ("127.0.0.1", "localhost"):
        c = imapclient.IMAPClient(host, port=rig.imaps_port, ssl=True,
                                  ssl_context=ssl.create_default_context(cadata=rig.ca_pem),
                                  timeout=5)
        c.login(u.login, u.password)
        c.logout()
    with pytest.raises(ssl.SSLCertVerificationError):
        imapclient.IMAPClient(rig.host, port=rig.imaps_port, ssl=True,
                              ssl_context=ssl.create_default_context(), timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        with smtplib.SMTP_SSL(rig.host, rig.smtps_port, context=ssl.create_default_context(),
                              timeout=5):
            pass


def test_imap_starttls_and_nostarttls_ports(rig):
    u = rig.add_user()
    c = imapclient.IMAPClient(rig.host, port=rig.imap_port, ssl=False, timeout=5)
    assert b"STARTTLS" in c.capabilities()
    c.starttls(rig.ssl_context())
    c.login(u.login, u.password)
    c.logout()

    c = imapclient.IMAPClient(rig.host, port=rig.imap_nostarttls_port, ssl=False, timeout=5)
    assert b"STARTTLS" not in c.capabilities()
    with pytest.raises(imapclient.exceptions.IMAPClientError):
        c.starttls(rig.ssl_context())
    c.login(u.login, u.password)  # plaintext login accepted on this one
    c.select_folder("INBOX")
    c.logout()


def test_imap_logins_show_listener_and_tls(rig):
    u = rig.add_user()
    with rig.imap_client(u):
        pass
    c = imapclient.IMAPClient(rig.host, port=rig.imap_port, ssl=False, timeout=5)
    c.starttls(rig.ssl_context())
    c.login(u.login, u.password)
    c.logout()
    c = imapclient.IMAPClient(rig.host, port=rig.imap_nostarttls_port, ssl=False, timeout=5)
    c.login(u.login, u.password)
    c.logout()
    logins = rig.imap_logins(u, min_count=4)  # add_user's own session is the first
    assert [(x["listener"], x["tls"]) for x in logins[-3:]] == [
        ("imaps", True), ("imap", True), ("imap_nostarttls", False)]


def test_wrong_password_fails(rig):
    u = rig.add_user()
    c = imapclient.IMAPClient(rig.host, port=rig.imaps_port, ssl_context=rig.ssl_context(),
                              timeout=5)
    with pytest.raises(imapclient.exceptions.LoginError):
        c.login(u.login, u.password + "x")
    c.shutdown()
    with smtplib.SMTP(rig.host, rig.smtp_port, timeout=5) as s:
        s.starttls(context=rig.ssl_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(u.login, "nope")


def test_seed_helpers(rig):
    u = rig.add_user(password='odd: "pass" word')  # ':' and quotes survive passwd-file
    raw, mid = _msg("a@example.com", u.address)
    uid = rig.append(u, "Archive", raw, flags=(b"\\Seen", b"\\Flagged"))
    assert rig.folder_uids(u, "Archive") == [uid]
    assert set(rig.fetch_flags(u, "Archive")[uid]) >= {b"\\Seen", b"\\Flagged"}
    assert rig.fetch_messages(u, "Archive")[uid] == raw
    assert rig.search(u, "Archive", ["HEADER", "Message-ID", mid]) == [uid]
    uids = rig.append_many(u, "INBOX", [_msg("b@example.com", u.address)[0] for _ in range(5)])
    assert uids == rig.folder_uids(u, "INBOX") and len(uids) == 5
    rig.deliver(u, _msg("c@example.com", u.address)[0])
    assert len(rig.folder_uids(u, "INBOX")) == 6


def test_add_user_rules(rig):
    u = rig.add_user("dup", password="one")
    with pytest.raises(RigError):
        rig.add_user("dup")
    assert rig.add_user("dup", exist_ok=True) == u
    assert rig.get_user("DUP@rig.test") == u
    c = imapclient.IMAPClient(rig.host, port=rig.imaps_port, ssl_context=rig.ssl_context())
    c.login("Dup@Rig.Test", "one")  # logins are case-insensitive, like providers
    c.logout()
    with pytest.raises(ValueError):
        rig.add_user(layout="exchange")


def test_set_password(rig):
    u = rig.add_user(password="old-pass")
    rig.folder_uids(u, "INBOX")  # Dovecot has now cached the passwd-file this second
    new = rig.set_password(u, "new-pass")
    with rig.imap_client(new):
        pass
    c = imapclient.IMAPClient(rig.host, port=rig.imaps_port, ssl_context=rig.ssl_context())
    with pytest.raises(imapclient.exceptions.LoginError):
        c.login(u.login, "old-pass")
    c.shutdown()


# --------------------------------------------------------------------- SMTP
def test_submission_starttls_auth_delivers_into_inbox(rig):
    alice, bob = rig.add_user(), rig.add_user()
    raw, mid = _msg(alice.address, bob.address)
    with smtplib.SMTP(rig.host, rig.smtp_port, timeout=10) as s:
        s.ehlo()
        assert s.has_extn("starttls") and not s.has_extn("auth")  # AUTH only after TLS
        with pytest.raises(smtplib.SMTPSenderRefused):
            s.sendmail(alice.address, [bob.address], raw)
        s.starttls(context=rig.ssl_context())
        s.ehlo()
        assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
        s.login(alice.login, alice.password)
        s.sendmail(alice.address, [bob.address, "ext@example.com"], raw)
    d = rig.deliveries_to(bob.address)[-1]
    assert d.login == alice.login and d.listener == "submission"
    assert d.delivered_to == [bob.login] and d.data == raw
    assert rig.deliveries_to("ext@example.com")[-1] is d
    uids = rig.search(bob, "INBOX", ["HEADER", "Message-ID", mid])
    assert len(uids) == 1
    got = email.message_from_bytes(rig.fetch_messages(bob, "INBOX", uids)[uids[0]])
    assert got["Delivered-To"] == bob.address
    assert rig.folder_uids(alice, "Sent") == []  # smtp_saves_sent is off by default


def test_smtps_and_nostarttls_listeners(rig):
    alice, bob = rig.add_user(), rig.add_user()
    raw, mid = _msg(alice.address, bob.address)
    with smtplib.SMTP_SSL(rig.host, rig.smtps_port, context=rig.ssl_context(), timeout=10) as s:
        s.login(alice.login, alice.password)
        s.sendmail(alice.address, [bob.address], raw)
    assert rig.search(bob, "INBOX", ["HEADER", "Message-ID", mid])
    with smtplib.SMTP(rig.host, rig.smtp_nostarttls_port, timeout=10) as s:
        s.ehlo()
        assert not s.has_extn("starttls")
        with pytest.raises(smtplib.SMTPNotSupportedError):
            s.starttls(context=rig.ssl_context())
        s.login(alice.login, alice.password)
        s.sendmail(alice.address, [bob.address], _msg(alice.address, bob.address)[0])
    assert rig.deliveries[-1].listener == "plain"


def test_unknown_local_recipient_rejected(rig):
    alice = rig.add_user()
    with smtplib.SMTP_SSL(rig.host, rig.smtps_port, context=rig.ssl_context(), timeout=10) as s:
        s.login(alice.login, alice.password)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as exc:
            s.sendmail(alice.address, ["nobody-here@rig.test"], _msg(alice.address, "x")[0])
    assert exc.value.recipients["nobody-here@rig.test"][0] == 550


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_smtp_saves_sent(rig, layout):
    alice, bob = rig.add_user(layout=layout), rig.add_user(layout="gmail")
    raw, mid = _msg(alice.address, bob.address)
    rig.smtp_saves_sent = True
    try:
        with smtplib.SMTP(rig.host, rig.smtp_port, timeout=10) as s:
            s.starttls(context=rig.ssl_context())
            s.login(alice.login, alice.password)
            s.sendmail(alice.address, [bob.address], raw)
    finally:
        rig.smtp_saves_sent = False
    sent = rig.search(alice, alice.sent_folder, ["HEADER", "Message-ID", mid])
    assert len(sent) == 1
    assert b"\\Seen" in rig.fetch_flags(alice, alice.sent_folder)[sent[0]]
    assert rig.fetch_messages(alice, alice.sent_folder, sent)[sent[0]] == raw
    assert rig.deliveries_to(bob.address)[-1].saved_sent == alice.sent_folder
    # Gmail-like recipient: INBOX plus All Mail
    assert rig.search(bob, "[Gmail]/All Mail", ["HEADER", "Message-ID", mid])


def test_fail_smtp(rig):
    alice, bob = rig.add_user(), rig.add_user()
    rig.fail_smtp("451 4.3.0 try later", times=1)
    with smtplib.SMTP_SSL(rig.host, rig.smtps_port, context=rig.ssl_context(), timeout=10) as s:
        s.login(alice.login, alice.password)
        with pytest.raises(smtplib.SMTPDataError) as exc:
            s.sendmail(alice.address, [bob.address], _msg(alice.address, bob.address)[0])
        assert exc.value.smtp_code == 451
        s.sendmail(alice.address, [bob.address], _msg(alice.address, bob.address)[0])
    assert len(rig.folder_uids(bob, "INBOX")) == 1


# --------------------------------------------------------------------- down / CLI
def test_stop_and_start_imap_keeps_ports_and_mail():
    with MailRig() as r:
        u = r.add_user()
        r.append(u, "INBOX", _msg("a@example.com", u.address)[0])
        r.stop_imap()
        assert _refused(r.imaps_port) and _refused(r.imap_nostarttls_port)
        r.start_imap()
        assert r.folder_uids(u, "INBOX") == [1]


def test_orphaned_dovecot_is_reaped_by_next_rig():
    # A rig started from a non-main thread (no PDEATHSIG) whose process dies hard.
    code = ("import os, sys, threading; sys.path.insert(0, %r)\n"
            "from mailrig import MailRig\n"
            "r = MailRig(); t = threading.Thread(target=r.start); t.start(); t.join()\n"
            "print(r.workdir, flush=True); os._exit(0)\n" % ROOT)
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=30)
    workdir = out.stdout.strip()
    assert workdir and _processes_mentioning(workdir)
    with MailRig():
        assert _processes_mentioning(workdir) == []


def test_cli_serve_demo(tmp_path):
    workdir = str(tmp_path / "rig")
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([PY, "-m", "mailrig", "serve", "--demo", "--workdir", workdir],
                            stdout=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["host"] == "127.0.0.1" and os.path.exists(info["ca_file"])
        demo = [u for u in info["users"] if u["login"] == "demo@rig.test"][0]
        c = imapclient.IMAPClient(info["host"], port=info["imaps_port"], timeout=5,
                                  ssl_context=ssl.create_default_context(cafile=info["ca_file"]))
        c.login(demo["login"], demo["password"])
        assert c.select_folder("INBOX")[b"EXISTS"] >= 3
        c.logout()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    time.sleep(0.1)
    assert _processes_mentioning(workdir) == []
