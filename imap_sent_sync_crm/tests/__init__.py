from . import test_crm_inbound
