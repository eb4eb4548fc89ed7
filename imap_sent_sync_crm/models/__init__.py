from . import mailsync_importer
