"""``./dev bench --scale``: hosting-company scale, served as in production.

Two copies of the freshly installed database get bulk data (SQL inserts
into the real tables, fayvad_mail/tests/bulk.py): 10,000 organizations
with 10 mailboxes, 100 billing events and 30 days of usage snapshots each
(100,000 mailboxes, 1,000,000 events, 3,000,000 snapshots), and 1,000
organizations alike. Odoo serves each with ``--workers 2``; every request
is timed next to its floor measured in the same run:

- ``/web/health?db_server_status=1`` (Odoo's cheapest request that uses the
  database);
- the same summary computed by hand-written SQL and ``json.dumps`` over one
  psycopg2 connection (no Odoo at all);
- the Modoboa calls of a mailbox creation made by a plain script.

Run by ``./dev`` with the bench's Odoo virtualenv: ``python -m
devtools.bench.scale CONFIG_JSON``."""

import contextlib
import hashlib
import hmac
import json
import statistics
import sys
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import psycopg2
import requests

from devtools.bench.figures import latency, record
from devtools.serve import OdooServer, odoo_script, peak_rss_mb, start_odoo_script

BIG, SMALL = 10_000, 1_000
ACCOUNTS, EVENTS, DAYS = 10, 100, 30
THROUGHPUT_SECONDS = 30
THROUGHPUT_ROUNDS = 3  # the webhook and its floor take turns, 10 s each (the provisioning too)
CLIENTS = 4
MAILBOXES = 30
USAGE = "/fayvad_api/erp/usage-summary/"
HEALTH = "/web/health?db_server_status=1"

SETUP = """
from devtools.odoo_hooks import new_api_key, webhook_secret
from odoo.addons.fayvad_mail.tests.bulk import bulk_organizations
with registry.cursor() as cr:
    env = environment(cr)
    company = env.ref("base.main_company")
    plan = env["fayvad.mail.plan"].create({"name": "Scale Plan", "monthly_price": 30, "included_users": 10})
    started = time.monotonic()
    ids = bulk_organizations(env, company, plan, COUNT, accounts=ACCOUNTS, events=EVENTS, snapshot_days=DAYS)
    seconds = time.monotonic() - started
    user = env["res.users"].create({
        "name": "Scale API", "login": "scale_api",
        "groups_id": [(6, 0, [env.ref("base.group_user").id, env.ref("fayvad_mail.fayvad_mail_group_api").id])],
    })
    key = new_api_key(env, "scale_api")
    secret = webhook_secret(env)
    server = env["fayvad.mail.server"].create({
        "name": "Bench Modoboa", "url": MODOBOA_URL, "token": MODOBOA_TOKEN, "mail_host": "mx.bench.example",
        "sequence": 0, "read_timeout": 30,
    })
    env["fayvad.mail.organization"].browse(ids).write({"mail_server_id": server.id})
    partner = env["res.partner"].create({"name": "Provisioned customer"})
    print(json.dumps({"ids": [ids[0], ids[-1]], "seconds": seconds, "key": key, "secret": secret,
                      "partner": partner.id, "plan": plan.id}))
"""


def _setup(cfg, db, count):
    code = (
        f"COUNT, ACCOUNTS, EVENTS, DAYS = {count}, {ACCOUNTS}, {EVENTS}, {DAYS}\n"
        f"MODOBOA_URL, MODOBOA_TOKEN = {cfg['modoboa_url']!r}, {cfg['modoboa_token']!r}\n" + SETUP
    )
    return odoo_script(cfg["python"], cfg["conf"], db, cfg["logs"], code, f"setup-{db}", cfg["work"])


class Database:
    def __init__(self, cfg, db):
        self.pg, self.db = cfg["pg"], db

    def connect(self):
        conn = psycopg2.connect(
            host=self.pg["socket_dir"], port=self.pg["port"], user=self.pg["user"], dbname=self.db
        )
        conn.autocommit = True
        return conn

    def analyze(self):
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cr:
            cr.execute("VACUUM ANALYZE")


def _timed_get(session, url, repeat, **kw):
    samples, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = session.get(url, timeout=600, **kw)
        response.raise_for_status()
        size = len(response.content)
        samples.append(time.perf_counter() - started)
    return samples, size


def _median_ms(samples):
    return round(statistics.median(samples) * 1000, 1)


def _throughput(func, seconds=THROUGHPUT_SECONDS, clients=CLIENTS):
    """Calls per second of ``func(session, n)`` from ``clients`` threads; errors."""
    stop = time.monotonic() + seconds
    counts, errors = [0] * clients, []

    def client(i):
        session = requests.Session()
        n = 0
        while time.monotonic() < stop:
            ok = func(session, f"{i}-{n}")
            n += 1
            if ok:
                counts[i] += 1
            else:
                errors.append(n)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started), len(errors)


def _alternating(first, second, rounds=THROUGHPUT_ROUNDS, seconds=THROUGHPUT_SECONDS):
    """The throughputs of two requests measured in turns (``rounds`` times
    each for ``seconds`` / ``rounds``), so that a machine slowing down or
    speeding up during the run weighs on both alike: ((calls/s, errors),
    (calls/s, errors))."""
    totals = [[0.0, 0], [0.0, 0]]
    for _ in range(rounds):
        for total, func in zip(totals, (first, second), strict=True):
            rate, errors = _throughput(func, seconds=seconds / rounds)
            total[0] += rate / rounds
            total[1] += errors
    return tuple(tuple(total) for total in totals)


# -- the floors -------------------------------------------------------------------------
FLOOR_ORGS = """
SELECT o.id, o.name, o.partner_id, o.state, o.max_storage_gb,
       count(a.id), count(a.id) FILTER (WHERE a.state = 'active'), COALESCE(sum(a.storage_used), 0),
       s.id, p.name->>'en_US', s.amount, c.name, s.state
  FROM fayvad_mail_organization o
  LEFT JOIN fayvad_mail_account a ON a.organization_id = o.id AND a.state != 'terminated'
  LEFT JOIN fayvad_mail_subscription s ON s.organization_id = o.id
  LEFT JOIN fayvad_mail_plan p ON p.id = s.plan_id
  LEFT JOIN res_currency c ON c.id = s.currency_id
 GROUP BY o.id, s.id, p.name, c.name ORDER BY o.id
"""
FLOOR_EVENTS = """
SELECT e.id, e.organization_id, e.event_type, e.date, e.quantity, e.unit_price, e.amount, c.name,
       COALESCE(e.description, ''), e.odoo_synced
  FROM fayvad_mail_billing_event e JOIN res_currency c ON c.id = e.currency_id
 WHERE e.date BETWEEN %s AND %s ORDER BY e.date, e.id
"""


def floor_summary(database, start, end):
    """The full summary's data by hand: two queries and json.dumps."""
    started = time.perf_counter()
    with contextlib.closing(database.connect()) as conn, conn.cursor() as cr:
        cr.execute(FLOOR_ORGS)
        rows = [(*r[:7], int(r[7]), *r[8:]) for r in cr.fetchall()]
        orgs = [
            {
                "id": r[0],
                "name": r[1],
                "odoo_customer_id": r[2],
                "state": r[3],
                "users": {"total": r[5], "active": r[6], "inactive": r[5] - r[6]},
                "storage": {
                    "used_gb": round(r[7] / 1e9, 2),
                    "limit_gb": float(r[4]),
                    "percentage": round(r[7] * 100 / (r[4] * 1e9), 2),
                },
                "subscription": {
                    "plan_name": r[9],
                    "amount": float(r[10]),
                    "currency": r[11],
                    "status": r[12],
                },
            }
            for r in rows
        ]
        cr.execute(FLOOR_EVENTS, (start, end))
        events = [
            {
                "id": r[0],
                "organization_id": r[1],
                "event_type": r[2],
                "event_date": r[3].isoformat(),
                "quantity": float(r[4]),
                "unit_price": float(r[5]),
                "amount": float(r[6]),
                "currency": r[7],
                "description": r[8],
                "odoo_synced": r[9],
            }
            for r in cr.fetchall()
        ]
    text = json.dumps({"organizations": orgs, "billing_events": events})
    return time.perf_counter() - started, len(text)


def explain_usage(database, end):
    """The plan of the storage "as of end_date" read for one organization's accounts."""
    with contextlib.closing(database.connect()) as conn, conn.cursor() as cr:
        cr.execute("SELECT id FROM fayvad_mail_organization ORDER BY id DESC LIMIT 1")
        org = cr.fetchone()[0]
        cr.execute(
            """EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
               SELECT a.id, CASE WHEN a.usage_date <= %(end)s THEN a.storage_used
                      ELSE COALESCE((SELECT s.bytes_used FROM fayvad_mail_usage_snapshot s
                                      WHERE s.account_id = a.id AND s.date <= %(end)s
                                   ORDER BY s.date DESC LIMIT 1), 0) END
                 FROM fayvad_mail_account a WHERE a.organization_id = %(org)s""",
            {"end": end, "org": org},
        )
        return [row[0] for row in cr.fetchall()]


PROFILE = """
import cProfile, io, pstats
from odoo.addons.fayvad_mail.tools.validation import validate_usage_query
with registry.cursor() as cr:
    env = environment(cr)
    user = env["res.users"].search([("login", "=", "scale_api")])
    today = env.cr.now().date()
    summary = env["fayvad.mail.usage.summary"].with_user(user)
    for params in QUERIES:
        query = validate_usage_query(params, today)
        summary._summary(query)  # warm
        profile = cProfile.Profile()
        profile.enable()
        summary._summary(query)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(15)
        print(json.dumps({"params": params, "profile": out.getvalue()}))
"""


def profile_summary(cfg, db, queries):
    """cProfile's top frames of ``_summary`` for each query (in an Odoo process)."""
    code = f"QUERIES = {queries!r}\n" + PROFILE
    proc = start_odoo_script(cfg["python"], cfg["conf"], db, cfg["logs"], code, "profile", cfg["work"])
    out, err = proc.communicate(timeout=900)
    if proc.returncode:
        return [f"profile failed: {err[-2000:]}"]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


# -- the run ----------------------------------------------------------------------------
PAGE_ROUNDS, PAGE_REPEAT = 5, 4  # the two pages take turns: 5 x 4 requests each


def _period():
    today = date.today()
    start = today.replace(day=1) if today.day >= 2 else today - timedelta(days=DAYS - 1)
    return start, today


def _api_session(setup):
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {setup['key']}"})
    return session


def measure_pages(small, big, setups):
    """The limit=100 page at 1,000 and at 10,000 organizations, both servers
    up, timed in PAGE_ROUNDS alternating turns (a machine changing speed
    during the run weighs on both alike), and health next to each."""
    start, today = _period()
    params = {"start_date": start.isoformat(), "end_date": today.isoformat(), "limit": 100}
    samples = {"small": {"page": [], "health": []}, "big": {"page": [], "health": []}}
    sessions = {name: _api_session(setup) for name, setup in setups.items()}
    for name, server in (("small", small), ("big", big)):
        session = sessions[name]
        _timed_get(session, server.url + HEALTH, 10)
        _timed_get(session, f"{server.url}{USAGE}", 2, params=params)
    sizes = {}
    for _ in range(PAGE_ROUNDS):
        for name, server in (("small", small), ("big", big)):
            session = sessions[name]
            health, _ = _timed_get(session, server.url + HEALTH, 20)
            page, sizes[name] = _timed_get(session, f"{server.url}{USAGE}", PAGE_REPEAT, params=params)
            samples[name]["health"] += health
            samples[name]["page"] += page
    return {
        name: {
            "page_ms": _median_ms(samples[name]["page"]),
            "page_bytes": sizes[name],
            "health_ms": _median_ms(samples[name]["health"]),
        }
        for name in samples
    }


def measure_big(cfg, db, server, setup):
    """Every other request of the issue against the 10,000 organizations."""
    figures = {}
    start, today = _period()
    session = _api_session(setup)
    url = server.url
    day = {"start_date": today.isoformat(), "end_date": today.isoformat()}
    one, _ = _timed_get(session, url + USAGE, 30, params={**day, "limit": 1})
    figures["limit1_day_ms"] = _median_ms(one)
    org, _ = _timed_get(session, url + USAGE, 30, params={**day, "organization_id": setup["ids"][-1]})
    figures["one_org_day_ms"] = _median_ms(org)
    full_params = {"start_date": start.isoformat(), "end_date": today.isoformat()}
    full, full_size = _timed_get(session, url + USAGE, 3, params=full_params)
    figures["full_ms"], figures["full_bytes"] = _median_ms(full), full_size
    figures["full_worker_peak_rss_mb"] = round(max(peak_rss_mb(pid) or 0 for pid in server.worker_pids()), 1)
    webhook, health = _alternating(
        lambda s, n: _deliver(s, url, setup, n),
        lambda s, n: s.get(url + HEALTH, timeout=60).status_code == 200,
    )
    figures["webhook_per_s"], figures["webhook_errors"] = webhook
    figures["health_per_s"], figures["health_errors"] = health
    figures.update(measure_provisioning(cfg, db, url, setup))
    figures["start"] = start.isoformat()
    return figures


def measure(cfg, setups):
    """Both databases served with --workers 2: first the two pages side by
    side, then (the 1,000 organizations' server stopped) the rest."""
    big = OdooServer(cfg["python"], cfg["conf"], cfg["db_big"], cfg["logs"], "scale-big", workers=2)
    small = OdooServer(cfg["python"], cfg["conf"], cfg["db_small"], cfg["logs"], "scale-small", workers=2)
    with big:
        with small:
            pages = measure_pages(small, big, setups)
        figures = measure_big(cfg, cfg["db_big"], big, setups["big"])
    return pages["small"], {**pages["big"], **figures}


def _sign(secret, raw):
    """The X-Webhook-Signature of CONTRACT.md (fayvad_mail/tools/signature.py)."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def _deliver(session, url, setup, n):
    payload = {
        "event_type": "payment_received",
        "organization_id": setup["ids"][-1],
        "billing_data": {
            "amount": 30.0,
            "currency": "USD",
            "invoice_id": f"SCALE-{n}-{uuid.uuid4().hex[:8]}",
        },
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60)),
    }
    raw = json.dumps(payload).encode()
    response = session.post(
        f"{url}/fayvad_api/erp/webhooks/billing/",
        data=raw,
        headers={"Content-Type": "application/json", "X-Webhook-Signature": _sign(setup["secret"], raw)},
        timeout=60,
    )
    return response.status_code == 200 and response.json().get("processed") is True


def measure_provisioning(cfg, db, url, setup):
    """MAILBOXES mailboxes through the API (201: created on Modoboa in the
    request) and as many made by a plain script with the same Modoboa calls,
    in THROUGHPUT_ROUNDS alternating turns (a machine changing speed during
    the run weighs on both alike)."""
    domain = f"scale-{uuid.uuid4().hex[:10]}.example"
    body = {
        "organization_data": {
            "name": "Provisioned at scale",
            "domain": domain,
            "odoo_customer_id": setup["partner"],
            "max_users": MAILBOXES * 3,
            "max_storage_gb": 50,
            "plan_id": setup["plan"],
        }
    }
    session = _api_session(setup)
    answer = session.post(f"{url}/fayvad_api/erp/provision/organization/", json=body, timeout=120)
    if answer.status_code != 201:
        raise RuntimeError(f"organization not provisioned: {answer.status_code} {answer.text[:500]}")
    org = answer.json()["organization"]
    domain_id = _domain_id(cfg, db, org["id"])
    modoboa = requests.Session()
    modoboa.headers.update({"Authorization": f"Token {cfg['modoboa_token']}"})

    def through_the_api(n):
        answer = session.post(
            f"{url}/fayvad_api/erp/provision/email-account/",
            json={
                "email_account_data": {
                    "organization_id": org["id"],
                    "address": f"api{n}",
                    "domain": domain_id,
                    "quota": 100 * 1024 * 1024,
                    "password": "Scale-Password-1234",
                    "user_info": {"first_name": "Api", "last_name": f"User {n}"},
                }
            },
            timeout=120,
        )
        if answer.status_code != 201:
            raise RuntimeError(f"mailbox not provisioned: {answer.status_code} {answer.text[:500]}")

    def by_a_script(n):
        email = f"script{n}@{domain}"
        found = modoboa.get(
            f"{cfg['modoboa_url']}/api/v2/accounts/", params={"search": email, "page": 1}, timeout=60
        )
        found.raise_for_status()
        created = modoboa.post(
            f"{cfg['modoboa_url']}/api/v2/accounts/",
            json={
                "username": email,
                "role": "SimpleUsers",
                "password": "Scale-Password-1234",
                "first_name": "Script",
                "last_name": f"User {n}",
                "mailbox": {"use_domain_quota": False, "quota": 100},
            },
            timeout=60,
        )
        created.raise_for_status()

    api, script = [], []
    per_turn = MAILBOXES // THROUGHPUT_ROUNDS
    for turn in range(THROUGHPUT_ROUNDS):
        for samples, make in ((api, through_the_api), (script, by_a_script)):
            for n in range(turn * per_turn, (turn + 1) * per_turn):
                started = time.perf_counter()
                make(n)
                samples.append(time.perf_counter() - started)
    return {
        "provision_api": latency(api),
        "provision_script": latency(script),
        "provision_api_ms": _median_ms(api),
        "provision_script_ms": _median_ms(script),
    }


def _domain_id(cfg, db, org_id):
    code = f"""
with registry.cursor() as cr:
    env = environment(cr)
    print(json.dumps(env["fayvad.mail.organization"].browse({org_id}).domain_ids[:1].id))
"""
    return odoo_script(cfg["python"], cfg["conf"], db, cfg["logs"], code, "domain", cfg["work"])


def main(cfg):
    results = {"machine_note": "ratios from this one run"}
    for db, count in ((cfg["db_small"], SMALL), (cfg["db_big"], BIG)):
        setup = _setup(cfg, db, count)
        Database(cfg, db).analyze()
        record("scale", f"bulk data, {count} organizations", seconds=round(setup["seconds"], 1))
        results[db] = {"setup": setup, "count": count}
    small, big = measure(
        cfg, {"small": results[cfg["db_small"]]["setup"], "big": results[cfg["db_big"]]["setup"]}
    )
    record("scale", "measured at 1,000 organizations", **small)
    record(
        "scale", "measured at 10,000 organizations", **{k: v for k, v in big.items() if "provision_" not in k}
    )
    database = Database(cfg, cfg["db_big"])
    floors = [floor_summary(database, big["start"], date.today().isoformat()) for _ in range(3)]
    floor_ms = _median_ms([seconds for seconds, _size in floors])
    plan = explain_usage(database, date.today().isoformat())
    today = date.today().isoformat()
    profiles = profile_summary(
        cfg,
        cfg["db_big"],
        [
            {"start_date": big["start"], "end_date": today, "limit": "100"},
            {"start_date": today, "end_date": today, "limit": "1"},
        ],
    )
    health = big["health_ms"]

    def ratio(a, b):
        return round(a / b, 2) if b else None

    rows = [
        (
            "full summary, one month, all organizations",
            big["full_ms"],
            f"hand-written SQL + json.dumps {floor_ms} ms",
            ratio(big["full_ms"], floor_ms),
            "<= 1.5",
        ),
        (
            f"limit=100 page at 10,000 vs at 1,000 ({PAGE_ROUNDS} alternating turns)",
            big["page_ms"],
            f"at 1,000: {small['page_ms']} ms",
            ratio(big["page_ms"], small["page_ms"]),
            "<= 1.3",
        ),
        (
            "limit=100 page",
            big["page_ms"],
            f"health with DB {health} ms",
            ratio(big["page_ms"], health),
            "<= 10",
        ),
        (
            "limit=1, one day",
            big["limit1_day_ms"],
            f"health with DB {health} ms",
            ratio(big["limit1_day_ms"], health),
            "<= 10",
        ),
        (
            "one organization, one day",
            big["one_org_day_ms"],
            f"health with DB {health} ms",
            ratio(big["one_org_day_ms"], health),
            "-",
        ),
        (
            f"webhook payment_received, {CLIENTS} clients, {THROUGHPUT_SECONDS} s in {THROUGHPUT_ROUNDS} turns with health (/s, errors {big['webhook_errors']})",
            round(big["webhook_per_s"], 1),
            f"health with DB {round(big['health_per_s'], 1)}/s",
            ratio(big["webhook_per_s"], big["health_per_s"]),
            ">= 0.7",
        ),
        (
            f"mailbox provisioning via API, {MAILBOXES} in {THROUGHPUT_ROUNDS} turns with the script (ms each)",
            big["provision_api_ms"],
            f"same Modoboa calls by a script {big['provision_script_ms']} ms",
            ratio(big["provision_script_ms"], big["provision_api_ms"]),
            ">= 0.8",
        ),
        (
            "peak RSS of the worker serving the full summary (MB)",
            big["full_worker_peak_rss_mb"],
            "-",
            None,
            "< 300",
        ),
    ]
    for name, value, floor, ratio_value, target in rows:
        record("scale", name, value=value, floor=floor, ratio=ratio_value, target=target)
    results.update(small=small, big=big, floor_ms=floor_ms, explain=plan, rows=rows, profiles=profiles)
    for entry in profiles:
        if isinstance(entry, dict):
            print(f"\ncProfile of _summary {entry['params']}:\n{entry['profile']}", flush=True)
    print("\nEXPLAIN of the storage read as of end_date:\n  " + "\n  ".join(plan), flush=True)
    Path(cfg["out"]).write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
