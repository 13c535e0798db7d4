"""Every secret a test run used (API keys, webhook secrets, the mail-server
token, mailbox passwords), written down as the tests use them, so that the
last long test can look for each one in every log file the run wrote.

The list lives in FAYVAD_TEST_SECRETS_FILE (outside the logs searched); a
run without it records nothing."""

import os
from pathlib import Path

MIN_LENGTH = 8  # shorter values are too common to be searched for meaningfully


def record(*values):
    target = os.environ.get("FAYVAD_TEST_SECRETS_FILE")
    if not target:
        return
    wanted = [value for value in values if isinstance(value, str) and len(value) >= MIN_LENGTH]
    if wanted:
        with Path(target).open("a", encoding="utf-8") as handle:
            for value in wanted:
                handle.write(value.replace("\n", " ") + "\n")


def recorded():
    target = os.environ.get("FAYVAD_TEST_SECRETS_FILE")
    if not target or not Path(target).exists():
        return set()
    return {line for line in Path(target).read_text(encoding="utf-8").splitlines() if line}
