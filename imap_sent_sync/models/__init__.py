from . import mailsync_mailbox
from . import mailsync_folder
from . import mailsync_log
from . import res_config_settings
from . import mailsync_vault
