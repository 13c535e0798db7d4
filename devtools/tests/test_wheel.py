"""The addon deployed the way Odoo people deploy addons: built as an OCA-style
wheel (whool), installed into a fresh virtualenv that holds Odoo, served from
there with ``--workers 2`` on a new database, the addon loaded from the wheel
and not from the checkout; then each of the four routes is called once (the
provisioning against the real Modoboa of ./dev test)."""

import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
MODOBOA_URL = os.environ.get("FAYVAD_TEST_MODOBOA_URL")
MODOBOA_TOKEN = os.environ.get("FAYVAD_TEST_MODOBOA_TOKEN")
LAUNCHER = '__import__("os").environ["TZ"] = "UTC"\nimport odoo\n\nodoo.cli.main()\n'

SETUP = """
import json
env = odoo.api.Environment(env.cr, odoo.SUPERUSER_ID, {})
server = env["fayvad.mail.server"].create({"name": "Wheel test Modoboa", "url": URL, "token": TOKEN,
                                         "mail_host": "mx.wheel.example", "sequence": 0, "read_timeout": 15})
user = env["res.users"].create({"name": "Wheel API", "login": "wheel_api",
    "groups_id": [(6, 0, [env.ref("base.group_user").id, env.ref("fayvad_mail.fayvad_mail_group_api").id])]})
key = env["res.users.apikeys"].with_user(user).sudo()._generate("fayvad_mail.erp_api", "wheel test", None)
secret = env["fayvad.mail.webhook.secret"].create({"secret": SECRET})
customer = env["res.partner"].create({"name": "Wheel Customer", "is_company": True})
import odoo.addons.fayvad_mail as addon
env.cr.commit()
print("RESULT " + json.dumps({"key": key, "customer": customer.id, "addon_file": addon.__file__}))
"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post_webhook(base, raw, secret, host):
    """``raw`` signed with ``secret``, posted to the billing webhook of the database served as ``host``."""
    return requests.post(
        f"{base}/webhooks/billing/",
        data=raw,
        headers={"Content-Type": "application/json", "X-Webhook-Signature": _sign(secret, raw), "Host": host},
        timeout=60,
    )


def _sign(secret, raw):
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


@pytest.fixture
def deployed(tmp_path):
    """Odoo served from a fresh virtualenv with the addon's wheel: (url, setup)."""
    from odoo.tools import config

    if not (MODOBOA_URL and MODOBOA_TOKEN):
        pytest.skip("needs the real Modoboa of ./dev test")
    odoo_dir = Path(os.environ.get("FAYVAD_CACHE") or Path.home() / ".cache" / "fayvad_mail") / "odoo"
    # the wheel, built from the checkout by whool (from the package index)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, REPO / "fayvad_mail"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("odoo_addon_fayvad_mail-18.0.*-py3-none-any.whl")
    # a fresh virtualenv holding Odoo: the cached Odoo and its dependencies
    # (the test virtualenv's), the addon from the wheel only
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "requests").is_dir())
    (site / "odoo_and_deps.pth").write_text(f"{odoo_dir}\n{deps}\n")
    subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], check=True, timeout=300
    )
    tag = uuid.uuid4().hex[:8]
    dbs = [f"fayvad_wheel_{tag}", f"fayvad_other_{tag}"]
    port = _free_port()
    conf = tmp_path / "odoo.conf"
    conf.write_text(
        "[options]\n"
        f"addons_path = {odoo_dir / 'odoo' / 'addons'}\n"  # Odoo's own: fayvad_mail comes from the wheel
        f"data_dir = {tmp_path / 'data'}\n"
        f"db_host = {config['db_host']}\ndb_port = {config['db_port']}\ndb_user = {config['db_user']}\n"
        "dbfilter = ^%d$\nlist_db = False\n"  # several databases: the host's first label names the database
        f"http_interface = 127.0.0.1\nhttp_port = {port}\ngevent_port = {_free_port()}\n"
        "workers = 2\nmax_cron_threads = 1\nlimit_time_real_cron = 300\n"
        f"fayvad_mail_vault_key = {uuid.uuid4().hex}{uuid.uuid4().hex}\n"
        f"logfile = {tmp_path / 'odoo.log'}\n"
    )
    launcher = tmp_path / "odoo-bin"
    launcher.write_text(LAUNCHER)
    odoo = [str(python), str(launcher), "-c", str(conf)]
    pg = {
        "host": config["db_host"],
        "port": config["db_port"],
        "user": config["db_user"],
        "dbname": "postgres",
    }
    try:
        subprocess.run(
            [
                *odoo,
                "-d",
                dbs[0],
                "-i",
                "fayvad_mail",
                "--without-demo=all",
                "--stop-after-init",
                "--log-level=warn",
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
        _sql(pg, f'CREATE DATABASE "{dbs[1]}" TEMPLATE "{dbs[0]}"')  # a second database on the same server
        filestore = tmp_path / "data" / "filestore"
        if (filestore / dbs[0]).exists():
            shutil.copytree(filestore / dbs[0], filestore / dbs[1])
        setups = {}
        for db in dbs:
            secret = "wheel-secret-" + secrets.token_hex(16)
            proc = subprocess.run(
                [
                    str(python),
                    str(launcher),
                    "shell",
                    "-c",
                    str(conf),
                    "-d",
                    db,
                    "--no-http",
                    "--log-level=warn",
                ],
                input=f"URL = {MODOBOA_URL!r}\nTOKEN = {MODOBOA_TOKEN!r}\nSECRET = {secret!r}\n{SETUP}",
                text=True,
                capture_output=True,
                check=True,
                timeout=300,
            )
            setup = json.loads(
                next(line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT "))
            )
            setups[db] = {**setup, "secret": secret, "host": f"{db}.wheel.test"}
        server = subprocess.Popen(odoo, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{url}/web/health", timeout=5).status_code == 200:
                        break
                except requests.ConnectionError:
                    time.sleep(0.5)
            yield url, [setups[db] for db in dbs], server
        finally:
            os.killpg(server.pid, 15)
            server.wait(60)
    finally:
        for db in dbs:
            _sql(pg, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _sql(pg, statement):
    conn = psycopg2.connect(**pg)
    try:
        conn.autocommit = True
        conn.cursor().execute(statement)
    finally:
        conn.close()


def test_wheel_installed_into_a_fresh_odoo_serves_the_four_routes(deployed):
    url, (setup, other), server = deployed
    assert "/site-packages/odoo/addons/fayvad_mail/" in setup["addon_file"], setup["addon_file"]
    workers = subprocess.run(["pgrep", "-g", str(server.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) >= 3, "prefork: the server and its workers"
    api = requests.Session()
    api.headers.update(Authorization=f"Token {setup['key']}", Host=setup["host"])
    base = f"{url}/fayvad_api/erp"

    domain = f"wheel-{uuid.uuid4().hex[:8]}.example"
    answer = api.post(
        f"{base}/provision/organization/",
        json={
            "organization_data": {
                "name": "Wheel Org",
                "domain": domain,
                "odoo_customer_id": setup["customer"],
                "max_users": 5,
                "max_storage_gb": 2,
                "contact_info": {"primary_email": "it@wheel.example"},
            }
        },
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    org = answer.json()["organization"]

    answer = api.get(
        f"{base}/usage-summary/", params={"organization_id": org["id"], "include_details": "true"}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    (listed,) = answer.json()["organizations"]
    assert (listed["name"], listed["domains"][0]["name"]) == ("Wheel Org", domain)

    answer = api.post(
        f"{base}/provision/email-account/",
        json={
            "email_account_data": {
                "organization_id": org["id"],
                "address": "john",
                "domain": listed["domains"][0]["id"],
                "quota": 50 * 1024 * 1024,
                "user_info": {"first_name": "John", "last_name": "Wheel", "password": "securepassword123"},
            }
        },
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    remote = requests.get(
        f"{MODOBOA_URL}/api/v2/accounts/",
        params={"search": f"john@{domain}"},
        headers={"Authorization": f"Token {MODOBOA_TOKEN}"},
        timeout=30,
    ).json()["results"]
    assert [a["username"] for a in remote] == [f"john@{domain}"]

    raw = json.dumps(
        {
            "event_type": "payment_received",
            "organization_id": org["id"],
            "billing_data": {"amount": "10.00", "currency": "USD", "invoice_id": "INV-WHEEL"},
            "timestamp": "2026-12-01T10:00:00Z",
        }
    ).encode()
    answer = _post_webhook(base, raw, setup["secret"], setup["host"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["processed"] is True

    # the other database on the same server: its own keys, secrets and organizations
    answer = requests.get(
        f"{base}/usage-summary/",
        headers={"Authorization": f"Token {setup['key']}", "Host": other["host"]},
        timeout=60,
    )
    assert answer.status_code == 401, "an API key of one database is unknown to the other"
    answer = requests.get(
        f"{base}/usage-summary/",
        headers={"Authorization": f"Token {other['key']}", "Host": other["host"]},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["summary"]["total_organizations"] == 0
    answer = _post_webhook(base, raw, setup["secret"], other["host"])
    assert (answer.status_code, answer.json()["error_code"]) == (400, "INVALID_WEBHOOK_SIGNATURE"), (
        answer.text
    )
