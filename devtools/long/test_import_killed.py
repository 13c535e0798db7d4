"""An import from the mail server whose Odoo process is killed with SIGKILL
half-way through its dry run, and another half-way through the import, each
resumed by another: every object the server holds is in the preview once and
exists exactly once in Odoo, and the import wrote nothing on the server."""

import time
import uuid

import requests

from devtools.long.harness import ModoboaApi, kill_group, odoo_script, start_odoo_script

DOMAINS = 40
MAILBOXES = 3  # a domain, besides an alias to its first mailbox


def importer(run_id):
    """An Odoo process running the import's cron (a few domains read a
    transaction, one domain imported a transaction), starting the import
    once the preview is read, to the end."""
    return f"""
deadline = time.time() + 600
while time.time() < deadline:
    with registry.cursor() as cr:
        env = environment(cr)
        run = env["fayvad.mail.import"].browse({run_id})
        if run.state == "preview":
            run.action_import()
            cr.commit()
        env["fayvad.mail.import"]._cron_import(limit=1)
        cr.commit()
        cr.execute("SELECT state FROM fayvad_mail_import WHERE id = %s", [{run_id}])
        state = cr.fetchone()[0]
    print(json.dumps({{"state": state}}), flush=True)
    if state == "done":
        break
"""


def make_on_modoboa(prefix):
    """``DOMAINS`` domains with their mailboxes and an alias, made directly on
    Modoboa (as another tool would have); their names."""
    api = ModoboaApi()
    session = requests.Session()
    session.headers["Authorization"] = f"Token {api.token}"

    def post(path, body):
        response = session.post(f"{api.url}/api/v2{path}", json=body, timeout=60)
        assert response.status_code == 201, (path, response.status_code, response.text[:300])

    names = [f"{prefix}-{i:02d}.example" for i in range(DOMAINS)]
    for name in names:
        post(
            "/domains/",
            {"name": name, "quota": 0, "default_mailbox_quota": 10, "enabled": True, "type": "domain"},
        )
        for n in range(MAILBOXES):
            post(
                "/accounts/",
                {
                    "username": f"user{n}@{name}",
                    "role": "SimpleUsers",
                    "password": "Imported-Passw0rd-1",
                    "mailbox": {"use_domain_quota": False, "quota": 10},
                },
            )
        post("/aliases/", {"address": f"sales@{name}", "recipients": [f"user0@{name}"], "enabled": True})
    return names


def writes_on_modoboa():
    api = ModoboaApi()
    return sum(
        api.requests_in_log(method, path, status)
        for method, path, status in (
            ("POST", "/api/v2/domains/", 201),
            ("POST", "/api/v2/accounts/", 201),
            ("POST", "/api/v2/aliases/", 201),
        )
    )


def test_an_import_killed_half_way_resumes_with_every_object_once(db, data):
    prefix = f"imp-{uuid.uuid4().hex[:8]}"
    names = make_on_modoboa(prefix)
    writes_before = writes_on_modoboa()
    run = odoo_script(
        f"""
with registry.cursor() as cr:
    env = environment(cr)
    run = env["fayvad.mail.import"].create({{
        "server_id": {data["server_id"]}, "domain_filter": {prefix!r}, "plan_id": {data["plan_id"]},
    }})
    run.action_read()
    cr.commit()
    print(json.dumps({{"id": run.id}}))
""",
        name="import-start",
    )

    def domains(where):
        return db.value(
            f"SELECT count(*) FROM fayvad_mail_import_line WHERE import_id = %s AND kind = 'domain' AND {where}",
            [run["id"]],
        )

    def kill_when(where, count):
        """Start an importer, and kill -9 it once ``count`` domain lines are ``where``."""
        running = start_odoo_script(importer(run["id"]), name="importer")
        deadline = time.monotonic() + 300
        while domains(where) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        kill_group(running)
        return domains(where)

    # killed in the middle of the dry run (its first batch of domains read, not the second)
    read = kill_when("contents_read", DOMAINS // 2)
    assert DOMAINS // 2 <= read < DOMAINS, read
    assert db.value("SELECT state FROM fayvad_mail_import WHERE id = %s", [run["id"]]) == "reading"
    # killed in the middle of the import
    halfway = kill_when("imported", DOMAINS // 4)
    assert DOMAINS // 4 <= halfway < DOMAINS, halfway
    assert db.value(
        "SELECT count(*) FROM fayvad_mail_import_line WHERE import_id = %s AND action = 'create'", [run["id"]]
    ) == DOMAINS * (2 + MAILBOXES), "every object in the preview, once"

    finished = odoo_script(importer(run["id"]), name="importer-resumed")
    assert finished["state"] == "done", finished
    like = f"%@{prefix}-%"
    counts = dict(
        db.query(
            "SELECT 'domains', count(*) FROM fayvad_mail_domain WHERE name LIKE %s "
            "UNION ALL SELECT 'distinct domains', count(DISTINCT name) FROM fayvad_mail_domain WHERE name LIKE %s "
            "UNION ALL SELECT 'mailboxes', count(*) FROM fayvad_mail_account WHERE email LIKE %s "
            "UNION ALL SELECT 'distinct mailboxes', count(DISTINCT email) FROM fayvad_mail_account WHERE email LIKE %s "
            "UNION ALL SELECT 'aliases', count(*) FROM fayvad_mail_alias a "
            "JOIN fayvad_mail_domain d ON d.id = a.domain_id WHERE d.name LIKE %s",
            [f"{prefix}-%", f"{prefix}-%", like, like, f"{prefix}-%"],
        )
    )
    assert counts == {
        "domains": DOMAINS,
        "distinct domains": DOMAINS,
        "mailboxes": DOMAINS * MAILBOXES,
        "distinct mailboxes": DOMAINS * MAILBOXES,
        "aliases": DOMAINS,
    }, counts
    assert (
        db.value(
            "SELECT count(*) FROM fayvad_mail_import_line WHERE import_id = %s AND action = 'create' AND NOT imported",
            [run["id"]],
        )
        == 0
    )
    assert (
        db.value(
            "SELECT count(*) FROM fayvad_mail_job j JOIN fayvad_mail_domain d ON d.id = j.domain_id "
            "WHERE d.name LIKE %s",
            [f"{prefix}-%"],
        )
        == 0
    ), "nothing queued for the server"
    assert writes_on_modoboa() == writes_before, "the import wrote nothing on Modoboa"
    assert sorted(names) == sorted(
        r[0] for r in db.query("SELECT name FROM fayvad_mail_domain WHERE name LIKE %s", [f"{prefix}-%"])
    )
