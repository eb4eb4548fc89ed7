from . import test_mailbox_connection
from . import test_mailbox_folders
from . import test_mailbox_form
from . import test_mailbox_health
from . import test_security
from . import test_no_secret_in_logs
from . import test_outbound_send
from . import test_outbound_outbox
from . import test_outbound_chatter_once
from . import test_outbound_mass_mailing
from . import test_outbound_concurrency
# Inbound sync
from . import test_inbound_backfill
from . import test_inbound_badmail
from . import test_inbound_chatter
from . import test_inbound_concurrency
from . import test_inbound_crash
from . import test_inbound_cron
from . import test_inbound_dedupe
from . import test_inbound_lifecycle
from . import test_inbound_matching
from . import test_inbound_poll
from . import test_inbound_privacy
# Contacts
from . import test_partner_emails
# Propagation
from . import test_propagation_to_mailbox
from . import test_propagation_from_mailbox
from . import test_propagation_queue
