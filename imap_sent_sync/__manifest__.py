{
    "name": "IMAP/SMTP Mailbox Sync",
    "summary": "Connect each user's own IMAP/SMTP mailbox: mail with contacts in the chatter, "
               "sends through the user's SMTP with a copy in their Sent folder",
    "version": "18.0.1.0.0",
    "category": "Productivity/Discuss",
    "license": "LGPL-3",
    "author": "imap_sent_sync developers",
    "website": "https://example.invalid/imap_sent_sync",
    "depends": ["mail", "contacts"],
    "external_dependencies": {"python": ["imapclient", "cryptography"]},
    "data": [
        "security/mailsync_security.xml",
        "security/ir.model.access.csv",
        "data/mailsync_vault_data.xml",
        "views/mailsync_mailbox_views.xml",
        "views/mailsync_folder_views.xml",
        "views/mailsync_log_views.xml",
        "views/res_config_settings_views.xml",
        "views/mailsync_menus.xml",
        # Outbound
        "data/ir_cron_outbox.xml",
        "views/mailsync_outbox_views.xml",
        # Inbound sync
        "data/ir_cron_inbound.xml",
        # Propagation
        "data/ir_cron_server_action.xml",
        "views/mailsync_server_action_views.xml",
        # Contacts: synced emails, Find Past Emails
        "views/res_partner_views.xml",
    ],
    "assets": {
        "web.assets_backend": [
            # Propagation: chatter actions on synced emails
            "imap_sent_sync/static/src/propagation/**/*",
        ],
    },
    "uninstall_hook": "uninstall_hook",  # Outbound: remove the mailbox mail servers
    "application": True,
    "installable": True,
}
