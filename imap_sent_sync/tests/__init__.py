from . import test_mailbox_connection
from . import test_mailbox_folders
from . import test_mailbox_form
from . import test_security
from . import test_no_secret_in_logs
from . import test_outbound_send
from . import test_outbound_outbox
