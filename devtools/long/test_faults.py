"""Faults injected for real, and nothing lost: the Modoboa stopped while
accounts are provisioned, an Odoo process killed with SIGKILL in the middle
of the job runner's batch, PostgreSQL restarted under webhook traffic, two
Odoo processes running the job runner over the same queue."""

import collections
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from devtools.long.clients import api, until_done, webhook
from devtools.long.harness import ModoboaApi, kill_group, modoboa, odoo_script, start_odoo_script
from devtools.long.secrets_used import record

MB = 1024 * 1024
PASSWORD = "Long-Tests-" + uuid.uuid4().hex[:12]

RUNNER = """
import os
deadline = time.time() + float(os.environ.get("RUNNER_SECONDS", "600"))
ran = 0
while time.time() < deadline:
    with registry.cursor() as cr:
        done = environment(cr)["fayvad.mail.job"]._cron_run(limit=1000)
        cr.commit()
    ran += done
    print(json.dumps({"ran": ran}), flush=True)
    if not done:
        with registry.cursor() as cr:
            cr.execute("SELECT count(*) FROM fayvad_mail_job WHERE state = 'pending'")
            if not cr.fetchone()[0]:
                break
        time.sleep(0.3)
print(json.dumps({"ran": ran}), flush=True)
"""


def run_jobs_to_the_end(db):
    """Make every pending job due, then run the job runner until none is left."""
    db.query("UPDATE fayvad_mail_job SET next_attempt_at = NULL WHERE state = 'pending'")
    return odoo_script(RUNNER, name="runner-finish")


def queue_accounts(domain_ids, per_domain, prefix):
    """Accounts on each domain, queued for creation on the mail server (committed); their emails."""
    return odoo_script(
        f"""
with registry.cursor() as cr:
    env = environment(cr)
    emails = []
    for domain_id in {domain_ids!r}:
        accounts = env["fayvad.mail.account"].create([
            {{"local_part": f"{prefix}{{i}}", "domain_id": domain_id, "quota": 10 * 1024 * 1024}}
            for i in range({per_domain})
        ])
        accounts._queue_provisioning()
        emails += accounts.mapped("email")
    print(json.dumps(emails))
""",
        name="queue",
    )


def post_accounts_created(before):
    return ModoboaApi().requests_in_log("POST", "/api/v2/accounts/", 201) - before


def post_accounts_refused():
    """Account creations Modoboa refused (400: e.g. one asked for twice)."""
    return ModoboaApi().requests_in_log("POST", "/api/v2/accounts/", 400)


def test_mail_server_stopped_during_100_account_provisions(server, data, db):
    record(PASSWORD)
    created_before = ModoboaApi().requests_in_log("POST", "/api/v2/accounts/", 201)
    service = modoboa()
    addresses = [f"outage{i}" for i in range(100)]
    answers = {}
    answered = threading.Semaphore(0)

    def provision(address):
        payload = {
            "email_account_data": {
                "organization_id": data["org_id"],
                "domain": data["domain_id"],
                "address": address,
                "quota": 10 * MB,
                "user_info": {"password": PASSWORD},
            }
        }
        answers[address] = api(server, data["key"], "POST", "/provision/email-account/", payload)
        answered.release()

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(provision, address) for address in addresses]
        for _ in range(20):
            answered.acquire(timeout=120)
        service.stop()  # the mail server goes away for a while ...
        stopped_at = time.monotonic()
        for _ in range(50):
            answered.acquire(timeout=120)
        time.sleep(max(0.0, 8 - (time.monotonic() - stopped_at)))
        service.start()  # ... and comes back
        for future in futures:
            future.result()
    outcomes = collections.Counter(a.status for a in answers.values())
    assert all(a.is_json for a in answers.values()), outcomes
    assert set(outcomes) <= {201, 202}, outcomes
    assert outcomes[202] > 0, "some requests met the outage"
    run_jobs_to_the_end(db)
    states = dict(
        db.query(
            "SELECT state, count(*) FROM fayvad_mail_account WHERE local_part LIKE 'outage%%' AND domain_id = %s "
            "GROUP BY state",
            [data["domain_id"]],
        )
    )
    assert states == {"active": 100}, states
    remote = collections.Counter(a["username"] for a in ModoboaApi().accounts_of(data["domain"]))
    for address in addresses:
        assert remote[f"{address}@{data['domain']}"] == 1, address
    assert post_accounts_created(created_before) == 100, "each mailbox was created once on Modoboa"
    # (the served Odoo's crons may queue jobs of their own meanwhile: only this test's are judged)
    left = db.query(
        "SELECT j.id, j.job_type, j.state, j.last_error FROM fayvad_mail_job j "
        "JOIN fayvad_mail_account a ON a.id = j.account_id "
        "WHERE j.state IN ('pending', 'failed') AND a.local_part LIKE 'outage%%' AND a.domain_id = %s",
        [data["domain_id"]],
    )
    assert not left, left


def test_job_runner_killed_mid_batch_resumes_without_duplicates(db, data):
    created_before = ModoboaApi().requests_in_log("POST", "/api/v2/accounts/", 201)
    refused_before = post_accounts_refused()
    emails = queue_accounts([data["domain_id"]], 60, "killed")
    runner = start_odoo_script(RUNNER, name="runner-killed")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        done = db.value(
            "SELECT count(*) FROM fayvad_mail_job j JOIN fayvad_mail_account a ON a.id = j.account_id "
            "WHERE a.email = ANY(%s) AND j.state = 'done'",
            [emails],
        )
        if done >= 15:
            break
        time.sleep(0.1)
    kill_group(runner)  # kill -9, in the middle of the batch
    assert 15 <= done < 60, done
    locks = db.value(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'fayvad_mail_job'"
    )
    run_jobs_to_the_end(db)
    states = dict(
        db.query(
            "SELECT j.state, count(*) FROM fayvad_mail_job j JOIN fayvad_mail_account a ON a.id = j.account_id "
            "WHERE a.email = ANY(%s) GROUP BY j.state",
            [emails],
        )
    )
    assert states == {"done": 60}, (states, locks)
    remote = collections.Counter(a["username"] for a in ModoboaApi().accounts_of(data["domain"]))
    assert all(remote[email] == 1 for email in emails)
    # the mailbox whose creation was cut by the kill was found, not asked for again
    assert post_accounts_refused() == refused_before, "no mailbox asked for twice"
    # (Modoboa may not log the 201 of the request whose client was killed)
    assert post_accounts_created(created_before) in (59, 60)


def test_two_odoo_processes_run_the_job_runner_over_200_mailbox_jobs(db, data):
    orgs = odoo_script(
        f"""
with registry.cursor() as cr:
    env = environment(cr)
    made = []
    for i in range(10):
        partner = env["res.partner"].create({{"name": f"Two runners {{i}}"}})
        org = env["fayvad.mail.organization"].create({{"name": f"Two runners {{i}}", "partner_id": partner.id,
            "plan_id": {data["plan_id"]}, "max_users": 100, "max_storage_gb": 10}})
        env["fayvad.mail.domain"].create({{"name": f"runners{{i}}-{uuid.uuid4().hex[:6]}.example", "organization_id": org.id}})
        org._queue_provisioning()
        made.append([org.id, org.domain_ids.id, org.domain_ids.name])
    print(json.dumps(made))
""",
        name="two-runners-orgs",
    )
    created_before = ModoboaApi().requests_in_log("POST", "/api/v2/accounts/", 201)
    emails = queue_accounts([domain_id for _org, domain_id, _name in orgs], 20, "pair")
    assert len(emails) == 200
    runners = [start_odoo_script(RUNNER, name=f"runner-{i}") for i in range(2)]
    outputs = [runner.communicate(timeout=600) for runner in runners]
    assert [runner.returncode for runner in runners] == [0, 0], [err[-2000:] for _out, err in outputs]
    ran = [json.loads(out.strip().splitlines()[-1])["ran"] for out, _err in outputs]
    jobs = db.query(
        "SELECT j.state, j.attempts FROM fayvad_mail_job j JOIN fayvad_mail_account a ON a.id = j.account_id "
        "WHERE a.email = ANY(%s)",
        [emails],
    )
    assert collections.Counter(jobs) == {("done", 1): 200}, collections.Counter(jobs)
    # (the 10 domain administrator logins are created with the same call)
    assert post_accounts_created(created_before) == 200 + 10, "each mailbox job executed once on Modoboa"
    for _org_id, _domain_id, name in orgs:
        assert len(ModoboaApi().accounts_of(name)) == 20
    print(f"\ntwo runners: {ran} jobs each")


def test_postgresql_restarted_during_webhook_traffic(server, data, db):
    clients, per_client = 4, 25
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    invoices = [[f"PG-{c}-{i}-{uuid.uuid4().hex[:6]}" for i in range(per_client)] for c in range(clients)]
    answers = []
    lock = threading.Lock()

    def client(mine):
        for invoice in mine:
            payload = {
                "event_type": "payment_failed",
                "organization_id": data["org_id"],
                "billing_data": {"invoice_id": invoice},
                "timestamp": f"{stamp}Z",
            }
            got = until_done(lambda payload=payload: webhook(server, data["secret"], payload))
            with lock:
                answers.extend(got)

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, mine) for mine in invoices]
        time.sleep(1.5)
        db.pg_ctl("restart")
        for future in futures:
            future.result()
    statuses = collections.Counter(a.status for a in answers)
    assert statuses[200] == clients * per_client, statuses
    assert set(statuses) <= {200, 500, 503}, statuses
    assert statuses[500] + statuses[503] > 0, "the restart was seen by some requests"
    assert all(a.is_json for a in answers), [a for a in answers if not a.is_json][:5]
    assert max(a.seconds for a in answers) < 30, "no request hung"
    applied = dict(
        db.query(
            "SELECT external_invoice_id, count(*) FROM fayvad_mail_billing_event WHERE external_invoice_id = ANY(%s) "
            "GROUP BY external_invoice_id",
            [[invoice for mine in invoices for invoice in mine]],
        )
    )
    assert len(applied) == clients * per_client and set(applied.values()) == {1}, (
        "each event applied exactly once"
    )
    print(f"\npostgres restart: {dict(statuses)}")
