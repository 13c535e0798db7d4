"""Fixtures of the long tests (``./dev test --long``): committed data on
their own database, and servers started and stopped for real."""

import json
import os
import secrets as random_secrets
import uuid

import pytest

from devtools.long.harness import Database, ModoboaApi, OdooServer, odoo_script
from devtools.long.secrets_used import record


@pytest.fixture(scope="session")
def db():
    return Database()


@pytest.fixture(scope="session")
def data():
    """An API key, a company webhook secret, the test Modoboa as the mail
    server, a plan, and a provisioned organization with its domain."""
    secret = random_secrets.token_urlsafe(32)
    domain = f"long-{uuid.uuid4().hex[:8]}.example"
    policy = json.loads(os.environ.get("FAYVAD_TEST_MODOBOA_PASSWORD_POLICY") or "{}")
    made = odoo_script(
        f"""
from devtools.odoo_hooks import new_api_key
with registry.cursor() as cr:
    env = environment(cr)
    Server = env["fayvad.mail.server"]
    Server.search([]).write({{"sequence": 50}})
    server = Server.create({{
        "name": "Long tests' Modoboa", "url": {json.dumps(ModoboaApi().url)}, "token": {json.dumps(ModoboaApi().token)},
        "mail_host": "mx.long.example", "sequence": 0, "read_timeout": 20, "connect_timeout": 2,
        **Server._password_policy_vals({policy}),
    }})
    env["fayvad.mail.webhook.secret"].search([]).write({{"expires_at": "2000-01-01 00:00:00"}})
    env["fayvad.mail.webhook.secret"].create({{"secret": {json.dumps(secret)}}})
    plan = env["fayvad.mail.plan"].create({{
        "name": "Long Plan", "monthly_price": 20, "included_users": 500, "max_users": 1000,
        "max_storage_gb": 500, "default_mailbox_quota_mb": 10,
    }})
    partner = env["res.partner"].create({{"name": "Long customer"}})
    key = new_api_key(env, "admin")
    org_id = env["fayvad.mail.provisioning"].with_user(env.ref("base.user_admin"))._create_organization({{
        "name": "Long", "domain": {json.dumps(domain)}, "odoo_customer_id": partner.id, "plan_id": plan.id,
        "max_users": 1000, "max_storage_gb": 500,
        "contact_info": {{"primary_email": None, "phone": None, "address": None}},
    }})
    cr.commit()
    env["fayvad.mail.job"]._cron_run(limit=10)
    org = env["fayvad.mail.organization"].browse(org_id)
    print(json.dumps({{"key": key, "plan_id": plan.id, "org_id": org.id, "domain_id": org.domain_ids.id,
                      "domain": org.domain_ids.name, "state": org.state, "server_id": server.id}}))
""",
        name="fixture",
    )
    assert made["state"] == "active", made
    record(made["key"], secret, ModoboaApi().token)
    return {**made, "secret": secret}


@pytest.fixture(scope="module")
def server():
    """Odoo with two workers on the long tests' database."""
    with OdooServer("workers", workers=2) as running:
        yield running
