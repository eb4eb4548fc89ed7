{
    "name": "IMAP/SMTP Mailbox Sync - CRM",
    "summary": "Synced email with contacts also appears on their open opportunities",
    "version": "18.0.1.0.0",
    "category": "Sales/CRM",
    "license": "LGPL-3",
    "author": "imap_sent_sync developers",
    "website": "https://example.invalid/imap_sent_sync",
    "depends": ["imap_sent_sync", "crm"],
    "data": [],
    "auto_install": True,
    "installable": True,
}
