"""Exactly once under real concurrency, over real HTTP: Odoo serving with
two workers (each request in its own transaction, committed), many clients
sending the same thing at the same moment."""

import collections
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from devtools.long.clients import api, webhook
from devtools.long.harness import ModoboaApi, odoo_script


def at_once(count, send):
    """``count`` calls of ``send`` released together; their answers."""
    barrier = threading.Barrier(count)

    def one(_):
        barrier.wait(60)
        return send()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize("count", [50, 100])
def test_identical_signed_deliveries_at_once_apply_once(server, data, db, count):
    invoice = f"LONG-RACE-{uuid.uuid4().hex[:8]}"
    payload = {
        "event_type": "payment_failed",
        "organization_id": data["org_id"],
        "billing_data": {"invoice_id": invoice, "amount": 12.5, "currency": "USD"},
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    answers = at_once(count, lambda: webhook(server, data["secret"], payload))
    assert [a.status for a in answers] == [200] * count, collections.Counter(
        (a.status, a.error) for a in answers
    )
    assert all(a.is_json for a in answers)
    assert sum(not a.body["duplicate"] for a in answers) == 1, "one delivery applied it"
    assert len({a.body["webhook_id"] for a in answers}) == 1, "every answer names the same delivery"
    applied = db.value(
        "SELECT count(*) FROM fayvad_mail_billing_event WHERE external_invoice_id = %s", [invoice]
    )
    assert applied == 1


def test_identical_organization_requests_at_once_make_one_organization(server, data, db):
    partner_id = odoo_script(
        """
with registry.cursor() as cr:
    print(json.dumps(environment(cr)["res.partner"].create({"name": "Long race customer"}).id))
""",
        name="partner",
    )
    domain = f"race-{uuid.uuid4().hex[:8]}.example"
    payload = {"organization_data": {"name": "Race", "domain": domain, "odoo_customer_id": partner_id}}
    answers = at_once(20, lambda: api(server, data["key"], "POST", "/provision/organization/", payload))
    outcomes = collections.Counter((a.status, (a.body or {}).get("error_code")) for a in answers)
    assert all(a.is_json for a in answers), outcomes
    assert set(outcomes) <= {(201, None), (202, None), (400, "ORGANIZATION_ALREADY_EXISTS")}, outcomes
    assert outcomes[(201, None)] + outcomes[(202, None)] >= 1
    ids = {a.body["organization"]["id"] for a in answers if a.status in (201, 202)}
    assert len(ids) == 1, "every request that created or resumed it names the same organization"
    assert db.value("SELECT count(*) FROM fayvad_mail_domain WHERE name = %s", [domain]) == 1
    assert db.value("SELECT count(*) FROM fayvad_mail_organization WHERE partner_id = %s", [partner_id]) == 1
    jobs = db.query(
        "SELECT job_type, count(*) FROM fayvad_mail_job j JOIN fayvad_mail_domain d ON d.id = j.domain_id "
        "WHERE d.name = %s GROUP BY job_type",
        [domain],
    )
    assert dict(jobs).get("create_domain") == 1, jobs
    remote = [d for d in ModoboaApi().get("/domains/", search=domain)["results"] if d["name"] == domain]
    assert len(remote) <= 1, "never created twice on the mail server"
