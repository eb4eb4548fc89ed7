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
import types

ROOT = os.path.dirname(os.path.abspath(__file__))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# ``imap_sent_sync/__init__.py`` imports the Odoo models. Protocol tests import the
# pure ``imap_sent_sync.mailsync`` package, so register ``imap_sent_sync`` as a bare
# package: importing the models outside ``odoo.addons`` would define every Odoo
# model a second time. Odoo itself loads the addon as ``odoo.addons.imap_sent_sync``.
if "imap_sent_sync" not in sys.modules:
    _addon_package = types.ModuleType("imap_sent_sync")
    _addon_package.__path__ = [os.path.join(ROOT, "imap_sent_sync")]
    sys.modules["imap_sent_sync"] = _addon_package


def pytest_configure(config):
    try:
        odoo_database = config.getoption("--odoo-database")
    except ValueError:  # pytest-odoo not installed: protocol tests only
        odoo_database = None
    if odoo_database:
        import odoo.modules.module
        odoo.modules.module.current_test = True


# A skipped test is a test that did not run. scripts/test.sh sets
# MAILSYNC_FAIL_ON_SKIP=1 so that a run which skipped anything (a missing server,
# a missing optional Odoo app) is not reported green.
_skipped = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _skipped and os.environ.get("MAILSYNC_FAIL_ON_SKIP") == "1" and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _skipped and os.environ.get("MAILSYNC_FAIL_ON_SKIP") == "1":
        terminalreporter.write_line(
            "FAILED: %d test(s) skipped; every test must run (MAILSYNC_FAIL_ON_SKIP=1): %s"
            % (len(_skipped), ", ".join(_skipped)), red=True)
