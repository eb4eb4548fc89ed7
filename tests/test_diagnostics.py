"""The connection test against the real rig, and the no-secret-in-logs guarantee."""
import base64
import logging
import socket

import pytest

from mailrig import get_shared_rig

from imap_sent_sync.mailsync.diagnostics import (
    STEP_KEYS, TEST_HEADER, ConnectionReport, StepResult, remove_marked_message,
    run_connection_test,
)
from imap_sent_sync.mailsync.endpoint import Endpoint
from imap_sent_sync.mailsync.errors import MailsyncError
from imap_sent_sync.mailsync.imap import close_imap, connect_imap, imap_session
from imap_sent_sync.mailsync.presets import PRESETS
from imap_sent_sync.mailsync.smtp import close_smtp, connect_smtp


@pytest.fixture(scope="session")
def rig():
    return get_shared_rig()


@pytest.fixture(scope="module")
def user(rig):
    """A mailbox for tests that do not change it (a rig user costs ~0.4 s)."""
    return rig.add_user()


def imap_endpoint(rig, user, **kw):
    values = dict(host=rig.host, port=rig.imaps_port, security="ssl", login=user.login,
                  secret=user.password, ca_pem=rig.ca_pem, timeout=5)
    values.update(kw)
    return Endpoint(**values)


def smtp_endpoint(rig, user, **kw):
    values = dict(host=rig.host, port=rig.smtp_port, security="starttls", login=user.login,
                  secret=user.password, ca_pem=rig.ca_pem, timeout=5)
    values.update(kw)
    return Endpoint(**values)


def outcome(report):
    return {step.key: step.ok for step in report.steps}


def without_recent(flags_by_uid):
    # \Recent is a per-session marker that any read-write SELECT consumes
    # (RFC 3501 2.3.2; gone in IMAP4rev2): not something the user sees.
    return {uid: tuple(f for f in flags if f != b"\\Recent") for uid, flags in flags_by_uid.items()}


def sent_state(rig, user):
    return without_recent(rig.fetch_flags(user, user.sent_folder))


# -- pure report behaviour --------------------------------------------------------

def test_report_ok_and_text():
    report = ConnectionReport(steps=[
        StepResult("imap_reach", "IMAP server reachable", True, "fine"),
        StepResult("imap_tls", "IMAP encryption", False, "bad cert", "paste the CA"),
        StepResult("imap_login", "IMAP login", None, "Skipped"),
    ])
    assert report.ok is False
    assert report.first_failure.key == "imap_tls"
    assert "[FAILED] IMAP encryption: bad cert\n    Fix: paste the CA" in report.as_text()
    assert report.as_dict()["steps"][2]["ok"] is None
    assert ConnectionReport(steps=[StepResult("x", "x", None, "skipped")]).ok is True


# -- good mailboxes -----------------------------------------------------------------

@pytest.mark.parametrize("layout", ["standard", "gmail", "outlook"])
def test_good_mailbox_all_steps_pass(rig, layout):
    user = rig.add_user(layout=layout)
    rig.append(user, user.sent_folder, b"Subject: earlier\r\n\r\nold mail\r\n", flags=(b"\\Seen",))
    before_sent = sent_state(rig, user)
    before_inbox = without_recent(rig.fetch_flags(user, "INBOX"))
    report = run_connection_test(imap_endpoint(rig, user), smtp_endpoint(rig, user))
    assert [step.key for step in report.steps] == list(STEP_KEYS)
    assert report.ok, report.as_text()
    assert all(step.ok is True for step in report.steps)
    assert all(step.message and step.duration_ms >= 0 for step in report.steps)
    assert "TLS 1." in report.step("imap_tls").message
    assert "STARTTLS" in report.step("smtp_tls").message
    assert user.sent_folder in report.step("imap_folders").message
    assert "added to %r and removed again" % user.sent_folder in report.step("imap_append").message
    assert {f.path for f in report.folders} >= set(user.folders)
    assert "UIDPLUS" in report.capabilities and "auth" in report.smtp_features
    # The append check leaves the mailbox exactly as it was: same UIDs, same flags.
    assert sent_state(rig, user) == before_sent
    assert without_recent(rig.fetch_flags(user, "INBOX")) == before_inbox
    assert rig.search(user, user.sent_folder, ["HEADER", TEST_HEADER, ""]) == []
    assert [d for d in rig.deliveries if d.login == user.login] == []   # nothing was sent


def test_append_check_does_not_expunge_other_deleted_messages(rig):
    user = rig.add_user()
    deleted = rig.append(user, user.sent_folder, b"Subject: trashed by the user\r\n\r\nx\r\n",
                         flags=(b"\\Seen", b"\\Deleted"))
    report = run_connection_test(imap_endpoint(rig, user), None)
    assert report.step("imap_append").ok is True
    assert {uid: set(flags) for uid, flags in sent_state(rig, user).items()} == {
        deleted: {b"\\Seen", b"\\Deleted"}}


def test_remove_marked_message_touches_only_the_marked_uid(rig):
    # What the append check does in Gmail's All Mail, where the test message also shows.
    user = rig.add_user(layout="gmail")
    all_mail = user.folder("all")
    marker = "5ad0c0ffee"
    keep = rig.append(user, all_mail, b"Subject: keep\r\n\r\nx\r\n", flags=(b"\\Deleted",))
    lookalike = rig.append(user, all_mail, ("Subject: t\r\n%s: other\r\n\r\nx\r\n"
                                            % TEST_HEADER).encode())
    marked = rig.append(user, all_mail, ("Subject: t\r\n%s: %s\r\n\r\nx\r\n"
                                         % (TEST_HEADER, marker)).encode())
    with connect_imap_session(rig, user) as client:
        assert remove_marked_message(client, all_mail, "not-there") == (False, False)
        assert remove_marked_message(client, all_mail, marker) == (True, True)
    assert rig.folder_uids(user, all_mail) == [keep, lookalike]
    assert marked not in rig.folder_uids(user, all_mail)


def test_append_falls_back_to_inbox_without_sent_folder(rig):
    user = rig.add_user()
    with connect_imap_session(rig, user) as client:
        client.delete_folder(user.sent_folder)
    before = without_recent(rig.fetch_flags(user, "INBOX"))
    report = run_connection_test(imap_endpoint(rig, user), None)
    assert report.ok, report.as_text()
    assert "No Sent folder" in report.step("imap_folders").message
    assert report.step("imap_folders").hint
    assert "'INBOX'" in report.step("imap_append").message
    assert without_recent(rig.fetch_flags(user, "INBOX")) == before


def connect_imap_session(rig, user):
    return imap_session(imap_endpoint(rig, user))


def test_append_check_can_be_skipped(rig, user):
    report = run_connection_test(imap_endpoint(rig, user), None, check_append=False)
    assert outcome(report)["imap_append"] is None
    assert report.step("imap_append").message == "Not checked (not requested)."
    assert [outcome(report)[k] for k in ("smtp_reach", "smtp_tls", "smtp_auth")] == [None] * 3
    assert report.step("smtp_reach").message == "No SMTP server configured."
    assert report.ok


def test_unencrypted_but_allowed_is_ok_with_a_warning(rig, user):
    report = run_connection_test(
        imap_endpoint(rig, user, port=rig.imap_nostarttls_port, security="none",
                      allow_unencrypted=True),
        smtp_endpoint(rig, user, port=rig.smtp_nostarttls_port, security="none",
                      allow_unencrypted=True), check_append=False)
    assert report.ok, report.as_text()
    assert "WITHOUT encryption" in report.step("imap_tls").message
    assert "WITHOUT encryption" in report.step("smtp_tls").message


# -- bad mailboxes ------------------------------------------------------------------

def test_wrong_password_report(rig, user):
    report = run_connection_test(imap_endpoint(rig, user, secret="wrong-Pw-77aa"),
                                 smtp_endpoint(rig, user, secret="wrong-Pw-77aa"),
                                 preset_key="gmail")
    assert outcome(report) == {
        "imap_reach": True, "imap_tls": True, "imap_login": False, "imap_folders": None,
        "imap_append": None, "smtp_reach": True, "smtp_tls": True, "smtp_auth": False}
    assert not report.ok
    login = report.step("imap_login")
    assert "refused the login" in login.message and login.reason == "wrong_credentials"
    assert login.hint == PRESETS["gmail"].app_password_hint   # the provider's own advice
    assert "myaccount.google.com/apppasswords" in report.step("smtp_auth").hint
    assert report.step("imap_folders").message == "Skipped: IMAP login failed."
    assert report.folders == []
    assert "wrong-Pw-77aa" not in report.as_text()


def test_closed_port_report(rig, user):
    report = run_connection_test(imap_endpoint(rig, user, port=rig.closed_port()),
                                 smtp_endpoint(rig, user, port=rig.closed_port()))
    assert outcome(report) == {
        "imap_reach": False, "imap_tls": None, "imap_login": None, "imap_folders": None,
        "imap_append": None, "smtp_reach": False, "smtp_tls": None, "smtp_auth": None}
    reach = report.step("imap_reach")
    assert reach.reason == "refused" and "refused the connection" in reach.message
    assert reach.hint


def test_dns_failure_report(rig, user):
    report = run_connection_test(imap_endpoint(rig, user, host="no-such-host.invalid"), None)
    reach = report.step("imap_reach")
    assert reach.ok is False and reach.reason == "dns"
    assert "no-such-host.invalid" in reach.message


def test_silent_server_report(rig, user):
    with socket.create_server(("127.0.0.1", 0)) as silent:
        report = run_connection_test(imap_endpoint(rig, user, port=silent.getsockname()[1],
                                                   timeout=0.5), None)
    assert outcome(report)["imap_reach"] is True          # TCP works ...
    tls = report.step("imap_tls")                          # ... but nothing answers
    assert tls.ok is False and tls.reason == "timeout"


def test_untrusted_certificate_report(rig, user):
    report = run_connection_test(imap_endpoint(rig, user, ca_pem=None),
                                 smtp_endpoint(rig, user, ca_pem=None))
    for key in ("imap_tls", "smtp_tls"):
        step = report.step(key)
        assert step.ok is False and step.reason == "untrusted"
        assert "unknown certificate authority" in step.message and "Custom CA" in step.hint
    assert outcome(report)["imap_login"] is None and outcome(report)["smtp_auth"] is None


def test_starttls_missing_report(rig, user):
    report = run_connection_test(
        imap_endpoint(rig, user, port=rig.imap_nostarttls_port, security="starttls"),
        smtp_endpoint(rig, user, port=rig.smtp_nostarttls_port, security="starttls"))
    assert report.step("imap_tls").reason == "starttls_unavailable"
    assert report.step("smtp_tls").reason == "starttls_unavailable"


def test_unencrypted_not_allowed_report(rig, user):
    report = run_connection_test(imap_endpoint(rig, user, port=rig.imap_nostarttls_port,
                                               security="none"), None)
    assert report.step("imap_reach").ok is True
    assert report.step("imap_tls").reason == "unencrypted_not_allowed"


def test_bad_custom_ca_report(rig, user):
    report = run_connection_test(imap_endpoint(rig, user, ca_pem="garbage"), None)
    assert report.step("imap_tls").reason == "bad_ca"


# -- no secret anywhere --------------------------------------------------------------

SECRET = "Pw-9f3c-unique!"
UNICODE_SECRET = "Pw-9f3c-ünïcode!"


def leaked_forms(secret, login):
    forms = {secret, base64.b64encode(secret.encode()).decode()}
    for authzid in ("", login):
        forms.add(base64.b64encode(("%s\0%s\0%s" % (authzid, login, secret)).encode()).decode())
    return forms


def test_no_secret_in_debug_logs(rig, caplog, capsys):
    ascii_user = rig.add_user(password=SECRET)
    unicode_user = rig.add_user(password=UNICODE_SECRET)
    caplog.set_level(logging.DEBUG)
    texts = []
    for user in (ascii_user, unicode_user):
        # LOGIN (ASCII) and AUTHENTICATE PLAIN (UTF-8); SMTP AUTH over STARTTLS and SSL.
        close_imap(connect_imap(imap_endpoint(rig, user)))
        close_imap(connect_imap(imap_endpoint(rig, user, port=rig.imap_port,
                                              security="starttls")))
        close_smtp(connect_smtp(smtp_endpoint(rig, user)))
        close_smtp(connect_smtp(smtp_endpoint(rig, user, port=rig.smtps_port, security="ssl")))
        good = run_connection_test(imap_endpoint(rig, user), smtp_endpoint(rig, user))
        assert good.ok, good.as_text()
        texts.append(good.as_text())
        texts.append(repr(good.as_dict()))
    # A refused login, where servers echo their reply into the error.
    for secret in (SECRET, UNICODE_SECRET):
        bad_user = rig.add_user()
        bad = run_connection_test(imap_endpoint(rig, bad_user, secret=secret),
                                  smtp_endpoint(rig, bad_user, secret=secret))
        assert not bad.ok
        texts.append(bad.as_text())
        for make in (connect_imap, connect_smtp):
            ep = (imap_endpoint if make is connect_imap else smtp_endpoint)(
                rig, bad_user, secret=secret)
            with pytest.raises(MailsyncError) as caught:
                make(ep)
            texts.append("%s %s %s %r" % (caught.value, caught.value.hint, caught.value.detail,
                                          caught.value.args))
    captured = capsys.readouterr()
    everything = "\n".join([caplog.text, captured.out, captured.err] + texts)
    # The test must really have exercised imapclient's DEBUG protocol log.
    assert "LOGIN" in caplog.text and "AUTHENTICATE" in caplog.text
    for user in (ascii_user, unicode_user):
        for form in leaked_forms(user.password, user.login):
            assert form not in everything, "secret leaked in form %r" % form
    for form in {SECRET, UNICODE_SECRET, "9f3c-unique", "9f3c-ünïcode"}:
        assert form not in everything
