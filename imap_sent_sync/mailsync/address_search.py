"""SEARCH for a correspondent's mail (no Odoo import).

"Find Past Emails" on a contact created after the backfill: the server finds
the mail whose From/To/Cc/Bcc mention the contact's address, so that only
those messages have their headers read.
"""
from .inbound import search_window_uids


def address_criteria(addresses):
    """SEARCH keys (prefix notation) for mail with any of ``addresses`` in
    From, To, Cc or Bcc. The server matches substrings of the headers: the
    caller still applies the sync's matching rules to the parsed headers."""
    keys = []
    for addr in sorted(set(addresses)):
        one = ["OR", "OR", "FROM", addr, "TO", addr, "OR", "CC", addr, "BCC", addr]
        keys = ["OR"] + keys + one if keys else one
    return keys


def search_address_uids(client, addresses, since, below_uid):
    """UIDs of the selected folder below ``below_uid``, received since
    ``since`` (a date), with mail from or to ``addresses``; newest first."""
    if not addresses:
        return []
    # An IDN or SMTPUTF8 address cannot go out as US-ASCII.
    charset = None if all(addr.isascii() for addr in addresses) else "UTF-8"
    return search_window_uids(client, since, below_uid, extra=address_criteria(addresses),
                              charset=charset)
