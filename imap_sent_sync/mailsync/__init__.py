"""Pure-Python mailbox protocol, MIME and credential code for imap_sent_sync.

Nothing in this package imports Odoo: the Odoo models orchestrate it, and it is
tested on its own against real IMAP/SMTP servers (see ``mailrig`` and ``tests/``
at the repository root).
"""
