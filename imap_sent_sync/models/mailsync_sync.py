"""The inbound sync runner: polls and backfills mailboxes, batch by batch.

Work is cut in *steps*, each one transaction: a poll of every synced folder
(importing at most one batch of new mail), one batch of a contact's Find Past
Emails (mailsync_contact_search.py), one batch of the backfill scan, or one
batch of the backfill import. The folder cursors and the mailbox progress
are written in the same transaction as the data they describe, so a crash or
a kill at any point loses at most the step in flight, which the next run
repeats; the dedupe (one chatter entry per record and Message-ID, one link per
server copy) makes the repetition harmless.

A mailbox is claimed with ``SELECT ... FOR NO KEY UPDATE SKIP LOCKED`` for
each step: several cron workers (on one or several Odoo servers) never poll or
scan the same mailbox at once, and a worker that finds it taken moves on to
the next mailbox. NO KEY UPDATE rather than UPDATE, so that links and log
lines (foreign keys to the mailbox) can still be written by others meanwhile.
The import of a backfill can be shared: an idle worker takes a helper slot
(advisory lock) and imports batches too, each email being claimed with an
advisory lock; helpers never write the mailbox or folder rows. Should two
workers still import one email for one record at once (two reps' mailboxes),
the unique key of ``mailsync.entry`` makes the second one roll back and redo
its step, which then finds the first one's entry.

Backfill, in two phases:

1. *scan*, per folder, newest first: ``UID SEARCH SINCE`` below the poll
   cursor, header-only FETCH of a batch, match against contacts. Matching
   copies become ``pending`` links (nothing else of the rest is kept: the
   cursor just moves past it). When every folder is scanned, mail.message
   ids are reserved from the sequence and handed out in date order.
2. *import*, newest first over all folders: bodies are fetched for one
   batch of pending messages and imported with their reserved ids, so the
   chatter (sorted by id) shows them in date order although the most recent
   mail arrives first.
"""
import json
import logging
import socket
import ssl
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import imaplib
import psycopg2
import psycopg2.errors
from imapclient.exceptions import IMAPClientError

from odoo import _, api, fields, models

from ..mailsync import inbound, mime
from ..mailsync.errors import AuthError, MailsyncError, explain
from ..mailsync.imap import close_imap, connect_imap
from .mailsync_sync_importer import Candidate, ConcurrentImport

_logger = logging.getLogger(__name__)

FREQUENCY_MINUTES = {"5min": 5, "15min": 15, "60min": 60}
SCAN_BATCH = 2000          # header-only FETCH + match per scan step
IMPORT_BATCH = 250         # messages per import step (bodies fetched)
IMPORT_MAX_BYTES = 32 * 1024 * 1024   # ...and at most this much mail per step
POLL_BATCH = 250           # new messages imported per poll step
CRON_BUDGET_SECONDS = 45   # a cron call stops starting steps after this
RETRY_MAX_MINUTES = 6 * 60
MAX_CLASH_RETRIES = 5
# Workers importing one mailbox's backfill at once (its own worker included):
# each holds an IMAP connection, and providers limit those per account.
PARALLEL_IMPORTS = 2
# pg advisory lock namespaces (first key of the two-int form)
LOCK_NS_MESSAGE = 0x6D53   # an email being imported for a mailbox
LOCK_NS_HELPER = 0x6D54    # a helper slot of a mailbox's parallel import
# Errors that mean "the server or the network", not "a bug": the step is rolled
# back, the mailbox retried later.
NETWORK_ERRORS = (MailsyncError, IMAPClientError, imaplib.IMAP4.error, socket.error,
                  ssl.SSLError, EOFError, TimeoutError)


@dataclass
class RunStats:
    """What a run did; also what the benchmark reports."""
    steps: int = 0
    scanned: int = 0          # messages whose headers were checked
    matched: int = 0          # of which matched a contact
    imported: int = 0         # server copies imported (linked) into Odoo
    created: int = 0          # mail.message records created
    skipped: int = 0          # bad messages skipped (logged)
    errors: int = 0
    clashes: int = 0          # steps run again after a concurrent import of the same email
    commands: dict = field(default_factory=dict)   # IMAP command name -> count
    seconds: dict = field(default_factory=dict)    # step kind -> seconds spent
    mailboxes: set = field(default_factory=set)
    max_steps: int = None

    @property
    def exhausted(self):
        return self.max_steps is not None and self.steps >= self.max_steps

    @property
    def processed(self):
        return self.scanned + self.imported

    @contextmanager
    def timing(self, kind):
        """Add the time spent in the block to ``seconds[kind]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[kind] = self.seconds.get(kind, 0.0) + time.perf_counter() - start

    def add_commands(self, names):
        for name in names:
            self.commands[name] = self.commands.get(name, 0) + 1

    def as_dict(self):
        return {
            "steps": self.steps, "scanned": self.scanned, "matched": self.matched,
            "imported": self.imported, "created": self.created, "skipped": self.skipped,
            "errors": self.errors, "clashes": self.clashes, "commands": dict(self.commands),
            "seconds": {kind: round(value, 3) for kind, value in self.seconds.items()},
            "mailboxes": sorted(self.mailboxes),
        }


def _is_entry_clash(error):
    """Another worker imported (some of) the same emails meanwhile: a clash on
    mailsync.entry's unique key, on a reserved mail.message id it already
    used, or a row it changed after this transaction's snapshot."""
    if isinstance(error, psycopg2.errors.SerializationFailure):
        return True
    constraint = getattr(error.diag, "constraint_name", "") or ""
    return "mailsync_entry" in constraint or constraint == "mail_message_pkey"


class _Session:
    """One IMAP connection of a run, kept across the steps of a mailbox."""

    def __init__(self, mailbox):
        self.mailbox_id = mailbox.id
        self.client = connect_imap(mailbox._get_imap_endpoint())
        if not mailbox.debug_logging:
            # IMAPClient sets imaplib's debug level to 5, which makes imaplib
            # format a repr() of every response, literals included, before
            # the logger drops it: that alone halves full-body FETCH speed.
            self.client._imap.debug = 0
        self.commands = inbound.CommandLog(self.client)
        self.condstore = inbound.has_condstore(self.client)
        self.selected = None

    def examine(self, path):
        info = inbound.examine(self.client, path)
        self.selected = path
        return info

    def close(self):
        self.commands.detach()
        close_imap(self.client)


class MailsyncSync(models.AbstractModel):
    _name = "mailsync.sync"
    _description = "Email Sync: Inbound Runner"

    # ------------------------------------------------------------
    # Entry points
    # ------------------------------------------------------------

    @api.model
    def _cron_sync_inbound(self):
        """ir.cron: work on due mailboxes for a while, then report progress
        so that Odoo calls again at once while work remains."""
        stats = self._run(max_seconds=CRON_BUDGET_SECONDS, commit=True)
        remaining = self._remaining_work()
        # Odoo takes done == 0 for "fully done" whatever remains: a call that
        # only polled (no message checked) must still count as progress.
        self.env["ir.cron"]._notify_progress(done=max(stats.processed, stats.steps),
                                             remaining=remaining)
        return stats

    @api.model
    def _run(self, mailboxes=None, *, max_seconds=None, max_steps=None, commit=True):
        """Run steps on due mailboxes (all, or ``mailboxes``) until no work is
        left, ``max_seconds`` have passed or ``max_steps`` steps ran.
        ``commit``: commit after every step (cron and scripts); tests run
        inside one transaction instead."""
        stats = RunStats(max_steps=max_steps)
        deadline = time.monotonic() + max_seconds if max_seconds else None
        if commit:
            # Each step is one transaction from here on; start a fresh one so
            # that the claim below takes the snapshot (see _lock_query).
            self.env.cr.commit()
        ids = mailboxes.ids if mailboxes is not None else None
        done_ids = set()
        helped_ids = set()
        first = True
        # At least one claim, however small the time budget: a cron call that
        # does nothing reports no progress and would end the cron's batching.
        while (first or deadline is None or time.monotonic() < deadline) and not stats.exhausted:
            first = False
            mailbox = self._claim(ids, exclude=done_ids)
            if mailbox:
                done_ids.add(mailbox.id)
                self._run_mailbox(mailbox, stats, deadline=deadline, commit=commit)
                continue
            # Nothing to own: help import a backfill another worker owns.
            mailbox = self._claim_helper(ids, exclude=helped_ids) if commit else None
            if not mailbox:
                break
            helped_ids.add(mailbox.id)
            self._run_shared_import(mailbox, stats, deadline=deadline)
        return stats

    @api.model
    def _remaining_work(self):
        """Rough count of what is left for the cron progress: pending backfill
        messages plus mailboxes with a poll due."""
        self.env.flush_all()
        self.env.cr.execute(self._due_query(count=True))
        return self.env.cr.fetchone()[0] or 0

    # ------------------------------------------------------------
    # Claiming
    # ------------------------------------------------------------

    @api.model
    def _due_query(self, count=False, ids=None, exclude=None, lock=False):
        where = """
            m.active AND m.state = 'connected' AND m.has_secret
            AND (m.sync_retry_at IS NULL OR m.sync_retry_at <= (now() AT TIME ZONE 'UTC'))
            AND (
                m.backfill_state IN ('scanning', 'importing')
                OR m.sync_requested
                OR EXISTS (SELECT 1 FROM mailsync_contact_search s
                            WHERE s.mailbox_id = m.id AND s.state = 'pending')
                OR (COALESCE(m.sync_frequency, '15min') != 'manual' AND (
                    m.last_poll_at IS NULL
                    OR m.last_poll_at <= (now() AT TIME ZONE 'UTC') - make_interval(secs => (
                        CASE m.sync_frequency WHEN '5min' THEN 300 WHEN '60min' THEN 3600
                        ELSE 900 END) - 30))))
        """
        params = []
        if ids is not None:
            where += " AND m.id = ANY(%s)"
            params.append(list(ids))
        if exclude:
            where += " AND m.id != ALL(%s)"
            params.append(list(exclude))
        if count:
            query = """
                SELECT COALESCE(SUM(GREATEST(
                    CASE WHEN m.backfill_state = 'scanning'
                         THEN m.backfill_total - m.backfill_scanned ELSE 0 END
                    + CASE WHEN m.backfill_state IN ('scanning', 'importing')
                           THEN (SELECT COUNT(DISTINCT l.message_id) FROM mailsync_link l
                                  WHERE l.mailbox_id = m.id AND l.state = 'pending')
                           ELSE 0 END, 1)), 0)
                  FROM mailsync_mailbox m WHERE %s""" % where
        else:
            query = """
                SELECT m.id FROM mailsync_mailbox m WHERE %s
                 ORDER BY m.sync_requested DESC, m.last_poll_at NULLS FIRST, m.id
                 LIMIT 1%s""" % (where, " FOR NO KEY UPDATE SKIP LOCKED" if lock else "")
        return self.env.cr.mogrify(query, params).decode()

    @api.model
    def _claim(self, ids=None, exclude=None):
        """Lock and return one due mailbox nobody else is working on."""
        self.env.flush_all()
        row = self._lock_query(self._due_query(ids=ids, exclude=exclude, lock=True))
        return self.env["mailsync.mailbox"].sudo().browse(row[0]) if row else None

    @api.model
    def _relock(self, mailbox):
        """After a commit: take the mailbox again, unless another worker has it
        or it is no longer due (paused, disconnected, done)."""
        self.env.invalidate_all()
        return bool(self._lock_query(self._due_query(ids=[mailbox.id], lock=True)))

    @api.model
    def _lock_query(self, query):
        """Run a SELECT ... FOR NO KEY UPDATE SKIP LOCKED; None when the row
        changed after this transaction's snapshot (REPEATABLE READ refuses to
        lock it): another worker just had it, so it is not ours this time."""
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(query)
                return self.env.cr.fetchone()
        except psycopg2.errors.SerializationFailure:
            return None

    @api.model
    def _claim_helper(self, ids=None, exclude=None):
        """A mailbox importing its backfill that has a free helper slot; the
        slot is held (advisory lock) until the end of the transaction."""
        self.env.flush_all()
        query = """
            SELECT m.id FROM mailsync_mailbox m
             WHERE m.active AND m.state = 'connected' AND m.has_secret
               AND m.backfill_state = 'importing'
               AND (m.sync_retry_at IS NULL OR m.sync_retry_at <= (now() AT TIME ZONE 'UTC'))
               AND (%(ids)s IS NULL OR m.id = ANY(%(ids)s))
               AND m.id != ALL(%(exclude)s)
             ORDER BY m.id
        """
        self.env.cr.execute(query, {"ids": list(ids) if ids is not None else None,
                                    "exclude": list(exclude or ())})
        for (mailbox_id,) in self.env.cr.fetchall():
            if self._take_helper_slot(mailbox_id):
                return self.env["mailsync.mailbox"].sudo().browse(mailbox_id)
        return None

    @api.model
    def _take_helper_slot(self, mailbox_id):
        for slot in range(1, PARALLEL_IMPORTS):
            self.env.cr.execute("SELECT pg_try_advisory_xact_lock(%s, %s)",
                                (LOCK_NS_HELPER, mailbox_id * 16 + slot))
            if self.env.cr.fetchone()[0]:
                return True
        return False

    @api.model
    def _run_shared_import(self, mailbox, stats, *, deadline=None):
        """Import batches of a backfill owned by another worker, with an IMAP
        connection of our own, until none is left to take. Never writes the
        mailbox or its folders; failures are left to the owner to report."""

        def keep_going():
            # The helper slot first: its statement opens the next snapshot,
            # as close as possible to the claim of the next emails.
            if not self._take_helper_slot(mailbox.id):
                return False
            box = mailbox.browse(mailbox.id)
            return box.state == "connected" and box.backfill_state == "importing"

        try:
            self._step_loop(
                mailbox, stats,
                lambda session: self._step_timed("import", self._import_step, mailbox, session,
                                                 stats, shared=True),
                after_step=self.env.invalidate_all, keep_going=keep_going, deadline=deadline)
        except NETWORK_ERRORS as error:
            stats.errors += 1
            self.env.cr.rollback()
            _logger.info("mailsync: helping import mailbox %s failed: %s", mailbox.id, error)
        return stats

    # ------------------------------------------------------------
    # Running one mailbox
    # ------------------------------------------------------------

    @api.model
    def _run_mailbox(self, mailbox, stats, *, deadline=None, commit=True):
        stats.mailboxes.add(mailbox.id)

        def after_step():
            # Counted from the links, not stored: not invalidated by the ORM.
            mailbox.invalidate_recordset(
                ["backfill_matched", "backfill_imported", "backfill_progress", "link_count"])
            if mailbox.sync_failures or mailbox.sync_retry_at:
                mailbox.write({"sync_failures": 0, "sync_retry_at": False, "sync_error": False})

        try:
            self._step_loop(mailbox, stats, lambda session: self._step(mailbox, session, stats),
                            after_step=after_step, keep_going=lambda: self._relock(mailbox),
                            deadline=deadline, commit=commit)
        except NETWORK_ERRORS as error:
            stats.errors += 1
            if commit:
                self.env.cr.rollback()
            else:
                self.env.invalidate_all()
            self._record_failure(mailbox, error)
            if commit:
                self.env.cr.commit()
        return stats

    @api.model
    def _step_loop(self, mailbox, stats, step, *, after_step, keep_going, deadline=None,
                   commit=True):
        """Run ``step(session)`` on one IMAP session of ``mailbox``, one
        transaction per step, until it reports no more work, the budget is
        spent or ``keep_going()`` (which re-takes this worker's hold on the
        mailbox on the new snapshot) says no. A step that clashed with another
        worker's import is rolled back and run again on a fresh snapshot,
        which sees that import. Network errors are the caller's to handle."""
        session = None
        clashes = 0
        try:
            while True:
                if session is None:
                    session = _Session(mailbox)
                before = len(session.commands.names)
                try:
                    more = step(session)
                except ConcurrentImport:
                    if not commit:
                        raise
                    self.env.cr.rollback()
                    self.env.invalidate_all()
                    clashes += 1
                    stats.clashes += 1
                    if clashes > MAX_CLASH_RETRIES or not keep_going():
                        return  # the next run takes it from there
                    continue
                stats.steps += 1
                stats.add_commands(session.commands.names[before:])
                after_step()
                if commit:
                    with stats.timing("commit"):
                        self.env.cr.commit()
                if not more or stats.exhausted or (
                        deadline is not None and time.monotonic() >= deadline):
                    return
                if not keep_going():
                    return
        finally:
            if session is not None:
                try:
                    session.close()
                except Exception:  # noqa: BLE001 - the connection may already be dead
                    _logger.debug("closing IMAP session failed", exc_info=True)

    @api.model
    def _record_failure(self, mailbox, error):
        mailbox = mailbox.browse(mailbox.id)
        failures = (mailbox.sync_failures or 0) + 1
        minutes = min(FREQUENCY_MINUTES.get(mailbox.sync_frequency, 15) * (2 ** (failures - 1)),
                      RETRY_MAX_MINUTES)
        text = explain(error)
        vals = {
            "sync_failures": failures,
            "sync_error": text,
            "sync_retry_at": fields.Datetime.now() + timedelta(minutes=minutes),
        }
        if isinstance(error, AuthError):
            # A refused password will not fix itself: stop until the user acts.
            vals.update(state="error", last_error=text)
        mailbox.write(vals)
        self.env["mailsync.log"]._record(
            mailbox, "fetch", "failure",
            _("Sync failed, retrying in %(minutes)s minutes: %(error)s", minutes=minutes, error=text))
        _logger.info("mailsync: mailbox %s sync failed: %s", mailbox.id, text)

    @api.model
    def _step(self, mailbox, session, stats):
        """Do one bounded unit of work; True when more work is waiting."""
        if self._poll_due(mailbox):
            kind, method = "poll", self._poll
        elif search := self.env["mailsync.contact.search"]._next_for(mailbox):
            # Find Past Emails: a user waits for it and each step is small, so
            # it goes before a backfill (see mailsync_contact_search.py).
            kind, method = "contact_search", search._search_step
        elif mailbox.backfill_state == "scanning":
            kind, method = "scan", self._scan_step
        elif mailbox.backfill_state == "importing":
            kind, method = "import", self._import_step
        else:
            return False
        return self._step_timed(kind, method, mailbox, session, stats)

    @api.model
    def _step_timed(self, kind, method, *args, **kwargs):
        with args[-1].timing(kind):  # the RunStats, last positional argument
            return method(*args, **kwargs)

    @api.model
    def _work_waiting(self, mailbox):
        """Work besides polling: a backfill, or Find Past Emails requests."""
        return (mailbox.backfill_state in ("scanning", "importing")
                or bool(self.env["mailsync.contact.search"]._next_for(mailbox)))

    @api.model
    def _poll_due(self, mailbox):
        if mailbox.sync_requested or not mailbox.last_poll_at:
            return True
        minutes = FREQUENCY_MINUTES.get(mailbox.sync_frequency)
        if not minutes:
            return False
        return mailbox.last_poll_at <= fields.Datetime.now() - timedelta(minutes=minutes, seconds=-30)

    @api.model
    def _synced_folders(self, mailbox):
        return mailbox.folder_ids.filtered(lambda f: f.sync_enabled and f.exists_on_server)

    # ------------------------------------------------------------
    # Polling
    # ------------------------------------------------------------

    @api.model
    def _poll(self, mailbox, session, stats):
        """STATUS every synced folder; import new mail (one batch per step)."""
        budget = POLL_BATCH
        more = False
        for folder in self._synced_folders(mailbox):
            status = inbound.folder_status(session.client, folder.path, condstore=session.condstore)
            decision = inbound.plan_poll(self._cursor(folder), status)
            if decision.kind == "unchanged":
                continue
            if decision.kind == "init":
                folder.write(self._cursor_vals(status.uidvalidity, status.uidnext - 1,
                                               status.highestmodseq))
                continue
            if decision.kind == "resync":
                self._resync_folder(mailbox, folder, session, stats)
                continue
            self._folder_changed(mailbox, folder, session, status)
            if decision.kind == "changed":
                folder.highestmodseq = str(status.highestmodseq)
                continue
            # "new"
            if budget <= 0:
                more = True
                continue
            info = session.examine(folder.path)
            if info.uidvalidity != int(folder.uidvalidity):
                self._resync_folder(mailbox, folder, session, stats)
                continue
            uids = inbound.search_new_uids(session.client, folder.last_uid)
            batch, rest = uids[:budget], uids[budget:]
            budget -= len(batch)
            if batch:
                self._import_uids(mailbox, folder, session, batch, stats)
            if rest:
                more = True
                folder.last_uid = max(batch)
            else:
                folder.write(self._cursor_vals(info.uidvalidity, max([info.uidnext - 1] + batch),
                                               info.highestmodseq))
        if not more:
            mailbox.write({"last_poll_at": fields.Datetime.now(), "sync_requested": False})
        return more or self._work_waiting(mailbox)

    @api.model
    def _cursor(self, folder):
        return inbound.FolderCursor(
            uidvalidity=int(folder.uidvalidity) if folder.uidvalidity else None,
            last_uid=folder.last_uid or 0,
            highestmodseq=int(folder.highestmodseq) if folder.highestmodseq else None)

    @api.model
    def _cursor_vals(self, uidvalidity, last_uid, highestmodseq):
        return {
            "uidvalidity": str(uidvalidity),
            "last_uid": max(int(last_uid or 0), 0),
            "highestmodseq": str(highestmodseq) if highestmodseq is not None else False,
        }

    @api.model
    def _folder_changed(self, mailbox, folder, session, status):
        """Hook: HIGHESTMODSEQ of ``folder`` moved (flags changed, mail
        expunged or arrived) since the stored one, which is still in
        ``folder.highestmodseq``. Inbound import needs nothing here;
        propagation of server-side deletes/archives plugs in."""
        return None

    @api.model
    def _import_uids(self, mailbox, folder, session, uids, stats):
        """Header-check ``uids`` of the selected folder, import the matching
        ones right away (polling: small batches, no reserved ids)."""
        options = self.env["mailsync.importer"]._get_options(mailbox)
        records = inbound.fetch_headers(session.client, uids)
        stats.scanned += len(records)
        candidates = self._header_candidates(mailbox, folder, records, stats)
        candidates = self._skip_linked(folder, candidates)
        matched = self.env["mailsync.importer"]._match_candidates(candidates, options)
        stats.matched += len(matched)
        if not matched:
            return
        full = self._fetch_full(mailbox, folder, session, matched, options, stats)
        self._import(mailbox, full, options, stats)

    @api.model
    def _header_candidates(self, mailbox, folder, records, stats):
        candidates = []
        for rec in records:
            try:
                parsed = mime.parse_headers(rec.header or b"", body_prefix=rec.body_prefix)
            except Exception as error:  # noqa: BLE001 - one bad message never stops a batch
                self._skip(mailbox, folder, rec.uid, error, stats)
                continue
            candidates.append(Candidate(folder_id=folder.id, uid=rec.uid, parsed=parsed,
                                        internaldate=rec.internaldate, size=rec.size))
        return candidates

    @api.model
    def _skip_linked(self, folder, candidates):
        """Drop copies already linked (a step repeated after a crash, a rescan)."""
        if not candidates:
            return candidates
        self.env["mailsync.link"].flush_model(["folder_id", "uid"])
        self.env.cr.execute(
            "SELECT uid FROM mailsync_link WHERE folder_id = %s AND uid = ANY(%s)",
            (folder.id, [c.uid for c in candidates]))
        linked = {row[0] for row in self.env.cr.fetchall()}
        return [c for c in candidates if c.uid not in linked]

    @api.model
    def _fetch_full(self, mailbox, folder, session, candidates, options, stats):
        """Replace the header parse of ``candidates`` (selected folder) by the
        full parse the content options ask for. Vanished ones are dropped."""
        by_uid = {c.uid: c for c in candidates}
        if options.content == "headers":
            return candidates
        result = []
        sizes = [(c.uid, c.size) for c in candidates]
        for uid, raw in inbound.fetch_bodies(session.client, sizes):
            cand = by_uid[uid]
            try:
                parsed = mime.parse_message(
                    raw, content=options.content, include_attachments=options.attachments,
                    max_attachment_bytes=options.max_attachment_bytes)
            except Exception as error:  # noqa: BLE001 - bad mail is skipped, logged
                self._skip(mailbox, folder, uid, error, stats)
                continue
            finally:
                del raw
            # Identity comes from the header parse: the synthetic id of a
            # message without Message-ID is the same either way, but keep the
            # matched one so copies, links and dedupe agree.
            parsed.message_id = cand.parsed.message_id
            cand.parsed = parsed
            result.append(cand)
        return result

    @api.model
    def _import(self, mailbox, candidates, options, stats, state="synced"):
        """Import with one savepoint per batch; on a database error retry one
        by one so a single bad message is skipped (and logged) alone."""
        importer = self.env["mailsync.importer"]
        try:
            with self.env.cr.savepoint():
                created = importer._import_candidates(mailbox, candidates, options, state=state)
            stats.created += created
            stats.imported += len(candidates)
            return
        except (psycopg2.errors.UniqueViolation, psycopg2.errors.SerializationFailure) as error:
            if _is_entry_clash(error):
                raise ConcurrentImport() from error
            _logger.info("mailsync: batch import failed, retrying one by one", exc_info=True)
            self.env.invalidate_all()
        except Exception:  # noqa: BLE001
            _logger.info("mailsync: batch import failed, retrying one by one", exc_info=True)
            self.env.invalidate_all()
        groups = {}
        for cand in candidates:
            groups.setdefault(cand.message_id, []).append(cand)
        for cands in groups.values():
            try:
                with self.env.cr.savepoint():
                    stats.created += importer._import_candidates(mailbox, cands, options, state=state)
                stats.imported += len(cands)
            except (psycopg2.errors.UniqueViolation, psycopg2.errors.SerializationFailure) as error:
                if _is_entry_clash(error):
                    raise ConcurrentImport() from error
                self.env.invalidate_all()
                for cand in cands:
                    folder = self.env["mailsync.folder"].browse(cand.folder_id)
                    self._skip(mailbox, folder, cand.uid, error, stats)
                    if cand.link_id:
                        self.env["mailsync.link"].browse(cand.link_id).unlink()
            except Exception as error:  # noqa: BLE001
                self.env.invalidate_all()
                for cand in cands:
                    folder = self.env["mailsync.folder"].browse(cand.folder_id)
                    self._skip(mailbox, folder, cand.uid, error, stats)
                    if cand.link_id:
                        self.env["mailsync.link"].browse(cand.link_id).unlink()

    @api.model
    def _skip(self, mailbox, folder, uid, error, stats):
        """Log a message that could not be imported. Only where it is, never
        its content: it may be private mail."""
        stats.skipped += 1
        reason = getattr(error, "message", None) or str(error) or error.__class__.__name__
        self.env["mailsync.log"]._record(
            mailbox, "fetch", "failure",
            _("Skipped message UID %(uid)s in %(folder)s: %(reason)s",
              uid=uid, folder=folder.path, reason=reason[:500]),
            folder=folder)

    # ------------------------------------------------------------
    # UIDVALIDITY change
    # ------------------------------------------------------------

    @api.model
    def _resync_folder(self, mailbox, folder, session, stats):
        """The folder's UIDs are void (UIDVALIDITY changed: folder recreated,
        server migrated). Re-map the links by Message-ID instead of importing
        again, restart the poll cursor, and rescan the backfill window of the
        folder if a backfill was ever started (what is linked is skipped)."""
        info = session.examine(folder.path)
        Link = self.env["mailsync.link"].sudo()
        links = Link.search([("folder_id", "=", folder.id)], order="id")
        remapped = 0
        if links:
            dates = [d for d in links.mapped("date") if d]
            if dates:
                uids = inbound.search_window_uids(session.client, min(dates) - timedelta(days=2))
            else:
                uids = inbound.search_new_uids(session.client, 0)
            by_id = {}
            for rec in inbound.fetch_headers(session.client, sorted(uids)):
                try:
                    parsed = mime.parse_headers(rec.header or b"", body_prefix=rec.body_prefix)
                except Exception:  # noqa: BLE001 - unparseable: cannot be one of ours
                    continue
                by_id.setdefault(parsed.message_id, []).append(rec.uid)
            self.env.cr.execute("UPDATE mailsync_link SET uid = NULL WHERE folder_id = %s",
                                (folder.id,))
            links.invalidate_recordset(["uid"])
            for link in links:
                found = by_id.get(link.message_id)
                if found:
                    link.uid = found.pop(0)
                    remapped += 1
        vals = self._cursor_vals(info.uidvalidity, info.uidnext - 1, info.highestmodseq)
        if mailbox.backfill_state != "none":
            vals.update(backfill_todo=True, backfill_cursor=info.uidnext, backfill_total=-1,
                        backfill_scanned=0)
            if mailbox.backfill_state in ("importing", "done"):
                mailbox.backfill_state = "scanning"
        folder.write(vals)
        self.env["mailsync.log"]._record(
            mailbox, "fetch", "info",
            _("UIDVALIDITY of %(folder)s changed: %(remapped)s of %(links)s synced messages "
              "found again by Message-ID; nothing is imported twice.",
              folder=folder.path, remapped=remapped, links=len(links)),
            folder=folder)

    # ------------------------------------------------------------
    # Backfill
    # ------------------------------------------------------------

    @api.model
    def _start_backfill(self, mailbox):
        """Plan a backfill of the mailbox's window over its synced folders.

        Every folder's range is "below the poll cursor": what arrives later is
        the poll's, so nothing falls between the two and nothing is read twice.
        A folder never polled gets its cursor at the first scan step.
        """
        days = mailbox.backfill_days if mailbox.backfill_days > 0 else 0
        since = fields.Date.context_today(mailbox) - timedelta(days=days)
        for folder in self._synced_folders(mailbox):
            folder.write({"backfill_todo": True, "backfill_cursor": 0, "backfill_total": -1,
                          "backfill_scanned": 0})
        mailbox.write({
            "backfill_state": "scanning",
            "backfill_since": since,
            "backfill_total": 0, "backfill_scanned": 0,
            # The database's clock, as for the links' create_date it is compared with.
            "backfill_started_at": self.env.cr.now(),
            "backfill_finished_at": False,
        })

    @api.model
    def _count_window(self, mailbox, session):
        """First scan step: count every folder's window (progress total)."""
        total = 0
        for folder in self._synced_folders(mailbox):
            if not folder.backfill_todo:
                total += max(folder.backfill_total, 0)
                continue
            info = session.examine(folder.path)
            if not folder.uidvalidity or int(folder.uidvalidity) != info.uidvalidity:
                if folder.uidvalidity:
                    self._resync_folder(mailbox, folder, session, RunStats())
                folder.write(self._cursor_vals(info.uidvalidity, info.uidnext - 1,
                                               info.highestmodseq))
            if not folder.backfill_cursor:
                folder.backfill_cursor = (folder.last_uid or 0) + 1
            uids = inbound.search_window_uids(session.client, mailbox.backfill_since,
                                              below_uid=folder.backfill_cursor)
            folder.write({"backfill_total": len(uids), "backfill_scanned": 0})
            total += len(uids)
        mailbox.backfill_total = total

    @api.model
    def _scan_step(self, mailbox, session, stats):
        folders = self._synced_folders(mailbox).filtered("backfill_todo")
        if any(f.backfill_total < 0 for f in folders):
            self._count_window(mailbox, session)
            folders = self._synced_folders(mailbox).filtered("backfill_todo")
        if not folders:
            self._finish_scan(mailbox)
            return True
        folder = folders[0]
        info = session.examine(folder.path)
        if int(folder.uidvalidity or 0) != info.uidvalidity:
            self._resync_folder(mailbox, folder, session, stats)
            return True
        uids = inbound.search_window_uids(session.client, mailbox.backfill_since,
                                          below_uid=folder.backfill_cursor)
        batch = uids[:SCAN_BATCH]
        if batch:
            options = self.env["mailsync.importer"]._get_options(mailbox)
            records = inbound.fetch_headers(session.client, batch)
            candidates = self._header_candidates(mailbox, folder, records, stats)
            candidates = self._skip_linked(folder, candidates)
            matched = self.env["mailsync.importer"]._match_candidates(candidates, options)
            self._plan_links(mailbox, folder, matched)
            stats.scanned += len(batch)
            stats.matched += len(matched)
            folder.write({"backfill_cursor": min(batch),
                          "backfill_scanned": folder.backfill_scanned + len(batch)})
            mailbox.write({"backfill_scanned": mailbox.backfill_scanned + len(batch)})
        if len(uids) <= SCAN_BATCH:
            folder.backfill_todo = False
        return True

    @api.model
    def _plan_links(self, mailbox, folder, matched):
        """Pending links for the matching copies of a scan batch: one INSERT
        (the ORM would compute defaults and related fields row by row)."""
        if not matched:
            return
        self.env["mailsync.link"].flush_model()
        rows = [(cand.uid, cand.message_id, cand.date, cand.size, cand.parent_ref,
                 json.dumps(list(cand.partner_ids)), len(cand.targets)) for cand in matched]
        self.env.cr.execute("""
            INSERT INTO mailsync_link (mailbox_id, folder_id, user_id, company_id, state, planned,
                                       uid, message_id, date, size, parent_ref,
                                       partner_ids_json, target_count,
                                       create_uid, write_uid, create_date, write_date)
            SELECT %s, %s, %s, %s, 'pending', TRUE, r.uid, r.mid, r.date, r.size, r.parent_ref,
                   r.partners::jsonb, r.targets, %s, %s,
                   (now() AT TIME ZONE 'UTC'), (now() AT TIME ZONE 'UTC')
              FROM unnest(%s::int[], %s::varchar[], %s::timestamp[], %s::int[], %s::varchar[],
                          %s::varchar[], %s::int[])
                   AS r(uid, mid, date, size, parent_ref, partners, targets)
        """, (mailbox.id, folder.id, mailbox.user_id.id, mailbox.company_id.id,
              self.env.uid, self.env.uid, *[list(col) for col in zip(*rows)]))

    @api.model
    def _finish_scan(self, mailbox):
        self._reserve_id_slots(mailbox)
        mailbox.backfill_state = "importing"
        # The scan is this worker's alone; the import can be shared. The other
        # inbound jobs found nothing to do while it scanned and went back to
        # their schedule: call them now so that they help at once.
        mailbox._trigger_inbound()

    @api.model
    def _reserve_id_slots(self, mailbox):
        """Reserve mail.message ids for every pending message without any,
        handed out oldest -> lowest, so the chatter order (by id) follows the
        mail's dates whatever the import order.

        The ids come from the table's own sequence (nextval, in one
        statement): they are ours alone, and nothing is locked beyond what any
        insert takes. Should another session interleave, our ids are merely
        not contiguous, which does not matter.
        """
        self.env["mailsync.link"].flush_model()
        self.env.cr.execute("""
            SELECT message_id, MAX(date), MAX(target_count)
              FROM mailsync_link
             WHERE mailbox_id = %s AND state = 'pending'
             GROUP BY message_id
            HAVING BOOL_AND(reserved_ids IS NULL)
             ORDER BY MAX(date) NULLS FIRST, message_id
        """, (mailbox.id,))
        rows = [(mid, max(count or 1, 1)) for mid, _date, count in self.env.cr.fetchall()]
        total = sum(count for _mid, count in rows)
        if not total:
            return
        self.env.cr.execute(
            "SELECT nextval(pg_get_serial_sequence('mail_message', 'id')) FROM generate_series(1, %s)",
            (total,))
        ids = sorted(row[0] for row in self.env.cr.fetchall())
        mids, blocks, pos = [], [], 0
        for mid, count in rows:
            mids.append(mid)
            # Highest first: the importer hands them out in that order.
            blocks.append(json.dumps(ids[pos:pos + count][::-1]))
            pos += count
        self.env.cr.execute("""
            UPDATE mailsync_link l SET reserved_ids = v.ids
              FROM (SELECT unnest(%s::varchar[]) AS mid, unnest(%s::jsonb[]) AS ids) v
             WHERE l.mailbox_id = %s AND l.state = 'pending' AND l.message_id = v.mid
        """, (mids, blocks, mailbox.id))
        self.env["mailsync.link"].invalidate_model(["reserved_ids"])

    @api.model
    def _claim_pending(self, mailbox):
        """Message-IDs of the next pending emails (newest first) that no other
        worker is importing, each locked for this transaction (advisory lock
        on the mailbox and Message-ID, released at commit or rollback)."""
        self.env["mailsync.link"].flush_model()
        self.env.cr.execute("""
            SELECT c.message_id FROM (
                SELECT message_id FROM mailsync_link
                 WHERE mailbox_id = %(mailbox)s AND state = 'pending'
                 GROUP BY message_id
                 ORDER BY MAX(date) DESC NULLS LAST, message_id
                 LIMIT %(window)s
            ) c
             WHERE pg_try_advisory_xact_lock(%(ns)s, hashtext(%(mailbox)s || ':' || c.message_id))
             LIMIT %(batch)s
        """, {"mailbox": mailbox.id, "ns": LOCK_NS_MESSAGE, "batch": IMPORT_BATCH,
              "window": IMPORT_BATCH * (PARALLEL_IMPORTS + 1)})
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _import_step(self, mailbox, session, stats, shared=False):
        """Import the next batch of pending messages, newest first.

        Several workers may import one mailbox at once (``shared``: a helper
        that does not hold the mailbox lock, see ``_run_shared_import``). Each
        takes its messages with transaction-level advisory locks, so two
        workers never take the same email, and only the worker holding the
        mailbox writes the mailbox or its folders.
        """
        with stats.timing("import: claim"):
            mids = self._claim_pending(mailbox)
        if not mids:
            if shared:
                return False
            self.env.cr.execute(
                "SELECT 1 FROM mailsync_link WHERE mailbox_id = %s AND state = 'pending' LIMIT 1",
                (mailbox.id,))
            if self.env.cr.fetchone():
                return False  # the rest is in a helper's hands; the next run finishes
            mailbox.write({"backfill_state": "done",
                           "backfill_finished_at": fields.Datetime.now()})
            return False
        Link = self.env["mailsync.link"].sudo()
        links = Link.search([("mailbox_id", "=", mailbox.id), ("state", "=", "pending"),
                             ("message_id", "in", mids)], order="date desc, id")
        synced = self._synced_folders(mailbox)
        stale = links.filtered(lambda l: l.folder_id not in synced or not l.uid)
        links -= stale
        stale.unlink()
        options = self.env["mailsync.importer"]._get_options(mailbox)
        # One copy per message is read; the others only get their link.
        by_mid = {}
        for link in links:
            by_mid.setdefault(link.message_id, []).append(link)
        chosen = {}
        budget = IMPORT_MAX_BYTES
        for mid in mids:
            copies = by_mid.get(mid)
            if not copies:
                continue
            if budget <= 0 and chosen:
                break
            copy = next((l for l in copies if l.folder_id.path == session.selected), copies[0])
            chosen[mid] = copy
            budget -= copy.size or 0
        by_folder = {}
        for mid, link in chosen.items():
            by_folder.setdefault(link.folder_id, []).append(link)
        parsed_by_mid = {}
        # The folder already selected first: one EXAMINE fewer.
        for folder in sorted(by_folder, key=lambda f: f.path != session.selected):
            folder_links = by_folder[folder]
            info = session.examine(folder.path)
            if info.uidvalidity != int(folder.uidvalidity or 0):
                if shared:
                    return False  # the mailbox's own worker resyncs the folder
                self._resync_folder(mailbox, folder, session, stats)
                return True
            with stats.timing("import: fetch and parse"):
                parsed_by_mid.update(self._fetch_pending(mailbox, folder, session, folder_links,
                                                         options, stats))
        candidates = []
        done_links = Link
        for mid, parsed in parsed_by_mid.items():
            if parsed is None:
                continue
            for link in by_mid[mid]:
                candidates.append(Candidate(
                    folder_id=link.folder_id.id, uid=link.uid, parsed=parsed, size=link.size,
                    link_id=link.id, reserved_ids=link.reserved_ids or [],
                    internaldate=link.date))
                done_links |= link
        # Contacts may have changed since the scan: match again on the real
        # message; no longer matching -> the plan is dropped, no trace left.
        matched = self.env["mailsync.importer"]._match_candidates(candidates, options)
        matched_ids = {c.link_id for c in matched}
        dropped = done_links.filtered(lambda l: l.id not in matched_ids)
        # Messages chosen but unreadable (vanished, bad) lose their plan too.
        for mid, parsed in parsed_by_mid.items():
            if parsed is None:
                dropped |= Link.browse([l.id for l in by_mid[mid]])
        with stats.timing("import: create"):
            self._import(mailbox, matched, options, stats, state="synced")
        dropped.exists().filtered(lambda l: l.state == "pending").unlink()
        return True

    @api.model
    def _fetch_pending(self, mailbox, folder, session, links, options, stats):
        """{message id: full ParsedMessage or None (gone or unreadable)}."""
        result = {link.message_id: None for link in links}
        by_uid = {link.uid: link for link in links}
        if options.content == "headers":
            for rec in inbound.fetch_headers(session.client, sorted(by_uid)):
                try:
                    parsed = mime.parse_headers(rec.header or b"", body_prefix=rec.body_prefix)
                except Exception as error:  # noqa: BLE001
                    self._skip(mailbox, folder, rec.uid, error, stats)
                    continue
                parsed.message_id = by_uid[rec.uid].message_id
                result[by_uid[rec.uid].message_id] = parsed
            return result
        sizes = [(link.uid, link.size) for link in links]
        for uid, raw in inbound.fetch_bodies(session.client, sizes):
            link = by_uid[uid]
            try:
                parsed = mime.parse_message(
                    raw, content=options.content, include_attachments=options.attachments,
                    max_attachment_bytes=options.max_attachment_bytes)
            except Exception as error:  # noqa: BLE001
                self._skip(mailbox, folder, uid, error, stats)
                continue
            finally:
                del raw
            parsed.message_id = link.message_id
            result[link.message_id] = parsed
        return result

    # ------------------------------------------------------------
    # Preview
    # ------------------------------------------------------------

    @api.model
    def _preview(self, mailbox, max_seconds=60):
        """Count the window's messages and how many match contacts, reading
        headers only and storing nothing but the two numbers."""
        days = mailbox.backfill_days if mailbox.backfill_days > 0 else 0
        since = fields.Date.context_today(mailbox) - timedelta(days=days)
        options = self.env["mailsync.importer"]._get_options(mailbox)
        importer = self.env["mailsync.importer"]
        total = matched = 0
        complete = True
        deadline = time.monotonic() + max_seconds
        session = _Session(mailbox)
        try:
            for folder in self._synced_folders(mailbox):
                session.examine(folder.path)
                uids = inbound.search_window_uids(session.client, since)
                total += len(uids)
                seen = set()
                for part in inbound.chunked(uids, SCAN_BATCH):
                    if time.monotonic() > deadline:
                        complete = False
                        break
                    records = inbound.fetch_headers(session.client, part)
                    cands = []
                    for rec in records:
                        try:
                            parsed = mime.parse_headers(rec.header or b"", body_prefix=rec.body_prefix)
                        except Exception:  # noqa: BLE001
                            continue
                        cands.append(Candidate(folder_id=folder.id, uid=rec.uid, parsed=parsed))
                    for cand in importer._match_candidates(cands, options):
                        seen.add(cand.message_id)
                matched += len(seen)
        finally:
            session.close()
        return {"total": total, "matched": matched, "complete": complete, "since": since}
