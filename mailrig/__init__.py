"""mailrig -- the project's real-server test rig (pure Python, no Odoo import).

It starts, on loopback only, a private Dovecot (TLS with a generated CA,
SPECIAL-USE, CONDSTORE/QRESYNC/IDLE/MOVE/UIDPLUS) and an aiosmtpd submission
server that delivers into that Dovecot. Tests talk to real servers: no mocks.

Quick use::

    from mailrig import MailRig, get_shared_rig

    rig = get_shared_rig()                 # process-wide, started lazily, stopped atexit
    alice = rig.add_user(layout="gmail")   # name=None -> unique name; safe on a shared rig
    uid = rig.append(alice, "INBOX", raw_bytes, flags=(b"\\Seen",))
    with rig.imap_client(alice) as c:      # logged in, TLS verified with the rig CA
        c.select_folder("INBOX")

    with MailRig() as rig:                 # a private rig (own ports, own temp dir)
        ...

MailRig(workdir=None, *, imaps_port=None, imap_port=None, smtp_port=None, smtps_port=None,
        max_userip_connections=100, keep_workdir=None)
    workdir=None uses a temp dir removed at stop() (set MAILRIG_KEEP=1 to keep it
    for debugging). A given workdir keeps CA, certs, users and mail across runs.
    Ports default to free loopback ports picked at start().

Lifecycle: start() (~0.3 s) / stop() (idempotent; also a context manager), started,
    pids() (live Dovecot pids: empty after stop()), stop_imap()/start_imap()
    (Dovecot down/up on the same ports, for "server down" tests on a PRIVATE rig).
    Every Dovecot runs in its own process group and is SIGKILLed if still alive
    0.2 s after SIGTERM; if the Python process dies hard, the kernel (PDEATHSIG,
    when started from the main thread) or the next rig's start() reaps it.

Endpoints (all on rig.host == "127.0.0.1"):
    imaps_port            IMAP, implicit TLS (993-like)
    imap_port             IMAP plaintext offering STARTTLS (143-like)
    imap_nostarttls_port  IMAP with no STARTTLS, plaintext LOGIN accepted (2nd Dovecot
                          on the same users and Maildirs)
    smtp_port             submission: STARTTLS required first, AUTH only after it (587)
    smtps_port            submission over implicit TLS, AUTH (465-like)
    smtp_nostarttls_port  SMTP offering no STARTTLS, AUTH accepted in clear
    closed_port()         a free port with nothing listening (connection refused)
    Every SMTP listener requires AUTH (PLAIN/LOGIN, rig users) before MAIL FROM.
    GOTCHA: Dovecot treats loopback as a secure channel, so imap_port accepts
    LOGIN *without* STARTTLS. To prove a client used TLS, use
    imap_logins(user, min_count=n) -> [{user, method, port, listener, tls}] (from
    Dovecot's log: listener is "imaps" | "imap" | "imap_nostarttls").

TLS: ca_pem (PEM text), ca_file (path), cert_file/key_file (server), ssl_context()
    (client context trusting only the rig CA). The server cert covers 127.0.0.1,
    ::1, localhost, rig.test, imap.rig.test, smtp.rig.test.

Users: add_user(name=None, password=None, layout="standard", *, exist_ok=False)
    -> RigUser(name, address="<name>@rig.test", login=address, password, layout),
    with .folder(role), .sent_folder, .folders. The rig CREATEs and subscribes the
    layout's folders. get_user(login_or_name), users, set_password(user, new).
    Layouts (separator "/"; see mailrig.layouts.LAYOUTS / ROLES):
      standard  INBOX Sent(\\Sent) Drafts(\\Drafts) Trash(\\Trash) Junk(\\Junk) Archive(\\Archive)
      gmail     INBOX [Gmail]/Sent Mail(\\Sent) [Gmail]/All Mail(\\All) [Gmail]/Trash(\\Trash)
                [Gmail]/Drafts(\\Drafts) [Gmail]/Spam(\\Junk) [Gmail]/Starred(\\Flagged)
                [Gmail]/Important   ("[Gmail]" itself is \\Noselect)
      outlook   INBOX "Sent Items" "Deleted Items" Drafts "Junk Email" Archive -- NO
                special-use attributes at all (clients must fall back on names)

IMAP helpers (each opens its own short TLS session as the user):
    imap_client(user) -> logged-in imapclient.IMAPClient (context manager)
    append(user, folder, raw, flags=(), msg_time=None) -> uid
    append_many(user, folder, [raw or dict(msg=, flags=, date=)]) -> [uids]  (MULTIAPPEND)
    folder_uids(user, folder) -> [uids];  fetch_flags(user, folder) -> {uid: (b"\\Seen",...)}
    fetch_messages(user, folder, uids=None) -> {uid: raw bytes};  search(user, folder, criteria)
    list_folders(user) -> {name: (flags...)}
    deliver(user, raw, mail_from=...) -> LMTP delivery into INBOX (simulated incoming mail)
    Message bytes: append()/Sent copies are stored byte-exact; LMTP deliveries
    (deliver(), SMTP to a rig user) gain Return-Path/Delivered-To/Received headers.
    imapclient's LOGIN is ASCII-only; imap_client() uses AUTHENTICATE PLAIN for
    non-ASCII passwords (smtplib cannot AUTH with them at all).

SMTP side:
    deliveries            list of Delivery(mail_from, rcpt_tos, data, login, listener,
                          delivered_to, saved_sent, queue_id, time), appended before the
                          server answers 250 -- so it is complete when smtplib returns.
    deliveries_to(addr)   filter by envelope recipient (use on the shared rig)
    Recipients @rig.test that do not exist get 550 at RCPT. Rig recipients get the
    message in INBOX via Dovecot LMTP; other domains are only recorded.
    smtp_saves_sent=False True: also file the message (\\Seen) in the sender's (AUTH
                          login) Sent-role folder, like Gmail / Microsoft 365.
    gmail_all_mail=True   gmail-layout users also get SMTP-delivered/saved mail in
                          [Gmail]/All Mail (as Gmail shows it). append() never copies.
    smtp_enforce_sender=False  True: MAIL FROM must equal the AUTH login (553).
    fail_smtp(reply="451 ...", times=1)  fail the next DATA commands; fail_smtp(None) clears.

Logs: dovecot_log (main instance), dovecot_plain_log; workdir holds everything.
Runs as root: Dovecot refuses mail access as root, so mail processes run as
nobody:nogroup; the Maildirs are owned by nobody, and every ancestor of the
workdir must be traversable (o+x is added automatically under the temp dir,
e.g. pytest's tmp_path; elsewhere start() raises RigError with the reason).
CLI: python -m mailrig serve [--demo] [--workdir DIR] [--imaps-port N] [--smtp-port N]
    prints one JSON line (host, ports, ca_file, users) and runs until SIGTERM/SIGINT.

The shared rig is shared state: do not call stop(), stop_imap(), fail_smtp() or
flip smtp_saves_sent on it without restoring; use a private MailRig() for that.
"""
from .layouts import LAYOUTS, ROLES
from .rig import (DOMAIN, MailRig, RigError, RigUser, get_shared_rig, parse_appenduid,
                  parse_uid_set)
from .smtp import Delivery

__all__ = [
    "MailRig", "RigUser", "RigError", "Delivery", "get_shared_rig", "LAYOUTS", "ROLES",
    "DOMAIN", "parse_appenduid", "parse_uid_set",
]
