"""POST /provision/organization/ and /provision/email-account/ through
Odoo's HTTP stack against the local Modoboa of ``./dev bench``: each call
creates the records and runs their jobs on Modoboa (domain with its DKIM
key and administrator; mailbox) before answering 201."""

import os
import time
import uuid

from odoo.addons.fayvad_mail.tests.common import ApiCase
from odoo.addons.fayvad_mail.tools.units import MB

from devtools.bench.figures import latency, record

ORGANIZATIONS = 5
ACCOUNTS = 10


class BenchProvisioning(ApiCase):
    @classmethod
    def setUpClass(cls):
        if not os.environ.get("FAYVAD_TEST_MODOBOA_URL"):
            raise AssertionError("no Modoboa: run the benchmarks with ./dev bench")
        super().setUpClass()

    def provision(self, path, payload):
        started = time.perf_counter()
        status, body, _response = self.api("POST", path, payload)
        seconds = time.perf_counter() - started
        self.assertEqual(status, 201, body)
        return body, seconds

    def test_provision_organizations_and_accounts(self):
        orgs = []
        for _ in range(ORGANIZATIONS):
            customer = self.env["res.partner"].create({"name": f"Bench customer {uuid.uuid4().hex[:8]}"})
            data = {
                "name": "Bench Corporation",
                "domain": f"bench-{uuid.uuid4().hex[:10]}.example",
                "odoo_customer_id": customer.id,
                "max_users": ACCOUNTS,
                "max_storage_gb": 5,
                "plan_id": self.plan.id,
                "contact_info": {"primary_email": "admin@bench.example"},
            }
            orgs.append(self.provision("/provision/organization/", {"organization_data": data}))
        record("provisioning", "POST /provision/organization (201)", **latency([s for _b, s in orgs]))
        org = orgs[0][0]["organization"]
        domain_id = self.env["fayvad.mail.organization"].browse(org["id"]).domain_ids.id
        accounts = [
            self.provision(
                "/provision/email-account/",
                {
                    "email_account_data": {
                        "organization_id": org["id"],
                        "address": f"user{n}",
                        "domain": domain_id,
                        "quota": 10 * MB,
                        "user_info": {"first_name": "Bench", "last_name": f"User {n}"},
                    }
                },
            )
            for n in range(ACCOUNTS)
        ]
        record("provisioning", "POST /provision/email-account (201)", **latency([s for _b, s in accounts]))
