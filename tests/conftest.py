"""Protocol tests need no Odoo database.

pytest-odoo's session fixtures open an Odoo registry for every test in the run;
these no-op overrides keep the tests in this folder runnable on their own
(``pytest tests/``) while the same run can include the Odoo tests, which get
the plugin's real fixtures.
"""
import pytest


@pytest.fixture(scope="session", autouse=True)
def load_registry():
    yield


@pytest.fixture(scope="session", autouse=True)
def load_http():
    yield
