"""Shared by every pytest run of the repository.

When FAYVAD_TEST_SECRETS_FILE is set (``./dev test``), the secrets the
tests hand to Odoo are written down as they are used: the API keys Odoo
generates, the mailbox passwords given to accounts or generated, the webhook secrets deliveries are
checked against, and the mail server's token. The last long test
then searches every log file of the run for each of them."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _record_secrets_used():
    if not os.environ.get("FAYVAD_TEST_SECRETS_FILE"):
        yield
        return
    from devtools.long.secrets_used import record

    record(os.environ.get("FAYVAD_TEST_MODOBOA_TOKEN", ""))
    patches = []
    try:
        from odoo.addons.base.models.res_users import APIKeys
        from odoo.addons.fayvad_mail.models.fayvad_mail_account import FayvadMailAccount
        from odoo.addons.fayvad_mail.models.fayvad_mail_webhook_delivery import FayvadMailWebhookDelivery
        from odoo.addons.fayvad_mail.tools.passwords import PasswordPolicy
    except ImportError:  # not an Odoo run (devtools' own tests)
        yield
        return

    def wrap(owner, name, capture):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            capture(args, kwargs, result)
            return result

        setattr(owner, name, wrapper)
        patches.append((owner, name, original))

    wrap(APIKeys, "_generate", lambda args, kwargs, key: record(key))
    wrap(FayvadMailAccount, "_set_pending_password", lambda args, kwargs, _r: record(args[1]))
    wrap(PasswordPolicy, "generate", lambda args, kwargs, password: record(password))
    wrap(FayvadMailWebhookDelivery, "_candidate_secrets", lambda args, kwargs, live: record(*live))
    try:
        yield
    finally:
        for owner, name, original in patches:
            setattr(owner, name, original)


# -- skipped tests are said loudly, and fail a run that must skip nothing ---------------------
_SKIPPED = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _SKIPPED.append(
            (report.nodeid, str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else "")
        )


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _SKIPPED:
        return
    terminalreporter.section(f"{len(_SKIPPED)} TESTS WERE SKIPPED: they proved nothing", sep="!", red=True)
    for nodeid, reason in _SKIPPED:
        terminalreporter.line(f"SKIPPED {nodeid}: {reason}", red=True)
    if os.environ.get("FAYVAD_TEST_NO_SKIPS") == "1":
        terminalreporter.line(
            "FAYVAD_TEST_NO_SKIPS=1 (./dev test, CI): a skipped test fails the run", red=True
        )


def pytest_sessionfinish(session, exitstatus):
    if _SKIPPED and os.environ.get("FAYVAD_TEST_NO_SKIPS") == "1" and session.exitstatus == 0:
        session.exitstatus = 1
