"""Folder layouts a rig user can have, mimicking three kinds of real servers.

Each layout maps to its own Dovecot namespace (all with prefix "" and separator
"/"); a user enables exactly one through a userdb extra field. That is how the
same folder name ("Drafts", "Archive") can be \\Drafts for a standard user and a
plain folder for an outlook user: SPECIAL-USE in Dovecot is per namespace
`mailbox` block, and namespaces are switchable per user.
"""

# layout -> Dovecot namespace name
NAMESPACES = {"standard": "std", "gmail": "gmail", "outlook": "outlook"}

# layout -> ordered list of (folder, special-use flag or None). INBOX is implicit.
LAYOUTS = {
    "standard": [
        ("Sent", "\\Sent"),
        ("Drafts", "\\Drafts"),
        ("Trash", "\\Trash"),
        ("Junk", "\\Junk"),
        ("Archive", "\\Archive"),
    ],
    "gmail": [
        ("[Gmail]/Sent Mail", "\\Sent"),
        ("[Gmail]/All Mail", "\\All"),
        ("[Gmail]/Trash", "\\Trash"),
        ("[Gmail]/Drafts", "\\Drafts"),
        ("[Gmail]/Spam", "\\Junk"),
        ("[Gmail]/Starred", "\\Flagged"),
        ("[Gmail]/Important", None),
    ],
    # Outlook.com / Microsoft 365 style names, deliberately WITHOUT special-use
    # attributes so clients must fall back on names.
    "outlook": [
        ("Sent Items", None),
        ("Deleted Items", None),
        ("Drafts", None),
        ("Junk Email", None),
        ("Archive", None),
    ],
}

# layout -> role -> folder name (what a correct client should pick).
ROLES = {
    "standard": {"inbox": "INBOX", "sent": "Sent", "drafts": "Drafts", "trash": "Trash",
                 "junk": "Junk", "archive": "Archive"},
    "gmail": {"inbox": "INBOX", "sent": "[Gmail]/Sent Mail", "drafts": "[Gmail]/Drafts",
              "trash": "[Gmail]/Trash", "junk": "[Gmail]/Spam", "all": "[Gmail]/All Mail",
              "flagged": "[Gmail]/Starred", "important": "[Gmail]/Important"},
    "outlook": {"inbox": "INBOX", "sent": "Sent Items", "drafts": "Drafts",
                "trash": "Deleted Items", "junk": "Junk Email", "archive": "Archive"},
}


def folders(layout):
    """All folder names of a layout, INBOX first."""
    return ["INBOX"] + [name for name, _flag in LAYOUTS[layout]]
