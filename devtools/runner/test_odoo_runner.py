"""Odoo's own test runner finds every test of the addon (as OCA CI and
runboat run them): ``odoo-bin --test-enable --test-tags /fayvad_mail`` runs
as many tests as pytest collects of the addon's test cases, and they pass.

Run by ``./dev test`` on a copy of the test database, after pytest."""

import os
import re
import subprocess
import sys

RUNNER_LOG = re.compile(r"odoo\.service\.server: (\d+) post-tests in")
RESULT_LOG = re.compile(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests")


def pytest_count():
    """The test methods of unittest test cases pytest collects in fayvad_mail/tests
    (a collection only, on the test database)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-q",
            f"--odoo-config={os.environ['FAYVAD_RUNNER_COLLECT_CONF']}",
            f"--odoo-database={os.environ['FAYVAD_RUNNER_COLLECT_DB']}",
            "fayvad_mail/tests",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    items = [line for line in proc.stdout.splitlines() if line.startswith("fayvad_mail/tests/")]
    # path::Class::method; a parametrized function's id may hold "::" too ("[::1]:54")
    return len([item for item in items if item.split("[", 1)[0].count("::") == 2]), len(items)


def test_odoos_runner_runs_as_many_tests_as_pytest():
    expected, everything = pytest_count()
    assert expected > 200, f"pytest collected only {expected} test-case tests ({everything} items)"
    log = os.environ["FAYVAD_RUNNER_LOG"]
    proc = subprocess.run(
        [
            os.environ["FAYVAD_RUNNER_PYTHON"],
            os.environ["FAYVAD_RUNNER_LAUNCHER"],
            "-c",
            os.environ["FAYVAD_RUNNER_CONF"],
            "-d",
            os.environ["FAYVAD_RUNNER_DB"],
            "--test-enable",
            "--test-tags",
            "/fayvad_mail",
            "--stop-after-init",
            "--log-level=warn",
            "--log-handler=odoo.service.server:INFO",
            "--log-handler=odoo.tests.result:INFO",
            f"--logfile={log}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    with open(log, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    ran = [int(n) for n in RUNNER_LOG.findall(text)]
    assert ran, f"Odoo's runner reported no post-install tests (exit {proc.returncode}); see {log}"
    results = RESULT_LOG.findall(text)
    failed, errors = (int(n) for n in results[-1][:2]) if results else (0, 0)
    print(
        f"\nOdoo's runner: {ran[-1]} tests ({failed} failed, {errors} errors); pytest: {expected} test-case tests"
    )
    assert ran[-1] == expected, f"Odoo's runner ran {ran[-1]} tests, pytest collects {expected}; see {log}"
    assert (failed, errors) == (0, 0), f"Odoo's runner: {failed} failed, {errors} errors; see {log}"
    assert proc.returncode == 0, f"odoo-bin exited {proc.returncode}; see {log}"
