"""Root pytest configuration, shared by the protocol tests and the Odoo tests.

The repository root goes on sys.path so that tests (and the Odoo tests run by
pytest-odoo) can import ``mailrig`` and ``imap_sent_sync.mailsync``.

When pytest-odoo runs Odoo tests it does not set ``odoo.modules.module.current_test``
the way Odoo's own test runner does. Odoo uses that flag to never open SMTP
connections in tests; we set it so tests behave exactly as under Odoo's runner.
Tests that must really send lift it explicitly (see imap_sent_sync/tests/common.py).
"""
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def pytest_configure(config):
    try:
        odoo_database = config.getoption("--odoo-database")
    except ValueError:  # pytest-odoo not installed: protocol tests only
        odoo_database = None
    if odoo_database:
        import odoo.modules.module
        odoo.modules.module.current_test = True
