"""Last of the run (named to sort last): every log file the run wrote is
searched for every secret the tests used — API keys, webhook secrets, the
mail server's token, mailbox passwords — and none is found."""

import os

from devtools.long.harness import WORK, modoboa
from devtools.long.secrets_used import recorded


def log_files():
    files = set(WORK.glob("*.log")) | set((WORK / "long-logs").glob("*"))
    files |= set(modoboa().server_log.parent.glob("*"))
    return sorted(path for path in files if path.is_file())


def test_no_secret_in_any_log():
    secrets = recorded()
    assert os.environ["FAYVAD_TEST_MODOBOA_TOKEN"] in secrets, "the mail server's token is searched for"
    assert len(secrets) >= 4, f"only {len(secrets)} secrets were recorded: is FAYVAD_TEST_SECRETS_FILE set?"
    files = log_files()
    assert any(path.name == "odoo-test.log" for path in files), files
    assert any(path.name == "postgres.log" for path in files), files
    found = []
    searched = 0
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        searched += len(text)
        found += [(path.name, secret[:4] + "...") for secret in secrets if secret in text]
    print(
        f"\nsecrets: {len(secrets)} searched for in {len(files)} log files ({searched // 1024} KiB): {len(found)} found"
    )
    assert not found, found
