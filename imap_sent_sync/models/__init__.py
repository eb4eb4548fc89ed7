from . import mailsync_mailbox
from . import mailsync_folder
from . import mailsync_log
from . import res_config_settings
from . import mailsync_vault
# Work queue of the sent copies and the mailbox changes
from . import mailsync_queue
# Outbound
from . import mailsync_outbox
from . import ir_mail_server
from . import mail_mail
# Inbound sync
from . import mailsync_link
from . import mailsync_sync_importer
from . import mailsync_sync
from . import mailsync_sync_mail_message
from . import mailsync_sync_entry
# Propagation
from . import res_company
from . import mailsync_server_action
from . import mailsync_propagation
from . import mailsync_propagation_mail
# Contacts: synced emails, Find Past Emails
from . import mailsync_contact_search
from . import res_partner
