"""Shared base for the addon's Odoo tests: real servers from ``mailrig``.

Every test talks to the process-wide rig (a real Dovecot and SMTP server on
loopback, started on first use): nothing here mocks imapclient, smtplib or a
server. Rig users are created per test class with unique names, so tests
sharing the rig never see each other's mail.

Typical use::

    class TestSomething(MailsyncCase):
        def test_it(self):
            rig_user = self.rig.add_user(layout="gmail")
            mailbox = self._create_rig_mailbox(self.user_rep, rig_user)
            mailbox.action_test_connection()
            self.assertEqual(mailbox.state, "connected")
"""
import contextlib
import threading

import odoo
from odoo.tests.common import TransactionCase, new_test_user

from mailrig import get_shared_rig


class MailsyncCase(TransactionCase):
    """TransactionCase with the mail rig, Email Sync users and mailbox helpers.

    Users (class attributes, created once per class):

    * ``user_rep``, ``user_rep2``: internal users in Email Sync / User;
    * ``user_manager``: internal user in Email Sync / Manager.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rig = get_shared_rig()
        cls.user_rep = cls._create_mailsync_user("mailsync_rep", "Rita Rep", "user")
        cls.user_rep2 = cls._create_mailsync_user("mailsync_rep2", "Ray Rep", "user")
        cls.user_manager = cls._create_mailsync_user("mailsync_manager", "Mona Manager", "manager")

    @classmethod
    def _create_mailsync_user(cls, login, name, level="user", **values):
        """An internal user in Email Sync / User (``level="user"``) or Manager.

        The group is given explicitly, so tests do not depend on the Settings
        option that grants Email Sync / User to every internal user.
        """
        group = {"user": "imap_sent_sync.group_mailsync_user",
                 "manager": "imap_sent_sync.group_mailsync_manager"}[level]
        return new_test_user(
            cls.env, login=login, name=name, email=f"{login}@example.com",
            groups=f"base.group_user,{group}",
            context={"mail_create_nolog": True, "no_reset_password": True}, **values)

    def _create_rig_mailbox(self, user, rig_user, **overrides):
        """A mailbox of ``user`` pointing at ``rig_user`` on the rig, secret saved.

        IMAP over implicit TLS and SMTP submission over implicit TLS, trusting
        the rig CA through the mailbox's custom CA field (as a self-hosted
        server with a private CA would be configured). ``overrides`` replace
        any value, e.g. ``imap_port=self.rig.closed_port()`` or ``ca_pem=False``.
        Created as superuser; returns the record in the superuser environment
        (use ``.with_user(user)`` to act as the owner).
        """
        values = {
            "user_id": user.id,
            "email": rig_user.address,
            "login": rig_user.login,
            "secret": rig_user.password,
            "provider": "custom",
            "imap_host": self.rig.host,
            "imap_port": self.rig.imaps_port,
            "imap_security": "ssl",
            "smtp_host": self.rig.host,
            "smtp_port": self.rig.smtps_port,
            "smtp_security": "ssl",
            "ca_pem": self.rig.ca_pem,
        }
        values.update(overrides)
        return self.env["mailsync.mailbox"].create(values)

    def _report_steps(self, mailbox):
        """{step key: step dict} of the mailbox's last connection test."""
        return {step["key"]: step for step in (mailbox.connection_report or {}).get("steps", [])}

    def _folder_roles(self, mailbox):
        """{folder path: role} of the mailbox's folders that exist on the server."""
        return {folder.path: folder.role
                for folder in mailbox.folder_ids.filtered("exists_on_server")}

    @contextlib.contextmanager
    def _real_smtp(self):
        """Let Odoo really open SMTP connections inside the block.

        Odoo never sends mail in tests (``odoo.modules.module.current_test``,
        which the root conftest.py sets as Odoo's own runner does, and the
        thread's ``testing`` flag). Tests that must deliver to the rig lift
        both here, and only for the block.
        """
        thread = threading.current_thread()
        saved = (odoo.modules.module.current_test, getattr(thread, "testing", False))
        odoo.modules.module.current_test = False
        thread.testing = False
        try:
            yield
        finally:
            odoo.modules.module.current_test, thread.testing = saved


# Database scans for the privacy and secrecy tests ----------------------------

def text_columns(env):
    """{table: [(column, data_type)]} for every text-like or bytea column of the
    database's own tables."""
    env.cr.execute("""
        SELECT c.table_name, c.column_name, c.data_type
          FROM information_schema.columns c
          JOIN information_schema.tables t
            ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
           AND c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json', 'bytea')
         ORDER BY c.table_name, c.column_name
    """)
    by_table = {}
    for table, column, data_type in env.cr.fetchall():
        by_table.setdefault(table, []).append((column, data_type))
    return by_table


def columns_containing(env, needle, by_table=None):
    """[(table, column)] of every text-like or bytea column holding ``needle``.

    Pending ORM writes are flushed first. One pass over each table, whatever
    its number of columns.
    """
    env.flush_all()
    by_table = by_table if by_table is not None else text_columns(env)
    found = []
    for table, columns in by_table.items():
        conditions, params = [], []
        for column, data_type in columns:
            if data_type == "bytea":
                conditions.append(f'position(%s::bytea in "{column}") > 0')
                params.append(needle.encode())
            else:
                conditions.append(f'position(%s in "{column}"::text) > 0')
                params.append(needle)
        env.cr.execute(f'SELECT {", ".join(f"bool_or({c})" for c in conditions)} FROM "{table}"',
                       params)
        row = env.cr.fetchone()
        found.extend((table, column) for (column, _type), hit in zip(columns, row) if hit)
    return found
