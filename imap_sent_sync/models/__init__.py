from . import mailsync_mailbox
from . import mailsync_folder
from . import mailsync_log
from . import res_config_settings
from . import mailsync_vault
# Outbound
from . import mailsync_outbox
from . import ir_mail_server
from . import mail_mail
