"""IMAP connections: response parsing (pure), then connect/login against the real rig."""
import os
import sys
import types

import pytest

# imap_sent_sync/__init__.py imports the Odoo models; the pure package does not
# need them (same approach as test_vault.py).
if "imap_sent_sync" not in sys.modules:
    _package = types.ModuleType("imap_sent_sync")
    _package.__path__ = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                      "imap_sent_sync")]
    sys.modules["imap_sent_sync"] = _package

from imap_sent_sync.mailsync.imap import (  # noqa: E402
    AppendUid, parse_appenduid, parse_copyuid, parse_uid_set,
)


# -- UIDPLUS response parsing ---------------------------------------------------

def test_parse_uid_set():
    assert parse_uid_set("4") == (4,)
    assert parse_uid_set("4,7:9") == (4, 7, 8, 9)
    assert parse_uid_set("9:7") == (7, 8, 9)


@pytest.mark.parametrize("response, expected", [
    (b"[APPENDUID 38505 3955] APPEND completed", AppendUid(38505, (3955,))),
    ("[appenduid 1 2:4] Append completed.", AppendUid(1, (2, 3, 4))),
    ([b"[APPENDUID 7 12] Append completed (0.001 + 0.000 secs)."], AppendUid(7, (12,))),
    (b"APPEND completed", None),
    (None, None),
])
def test_parse_appenduid(response, expected):
    assert parse_appenduid(response) == expected
    if expected:
        assert parse_appenduid(response).uid == expected.uids[0]


def test_parse_copyuid():
    parsed = parse_copyuid(b"[COPYUID 38505 304,319:320 3956:3958] Done")
    assert parsed.uidvalidity == 38505
    assert parsed.source_uids == (304, 319, 320)
    assert parsed.dest_uids == (3956, 3957, 3958)
    assert parse_copyuid(b"OK Done") is None
