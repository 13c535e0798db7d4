"""Fuzzing from the contract: schemathesis, the OpenAPI document that the
server serves, positive and negative generation, against Odoo with two
workers. Every operation gets at least 2,000 generated requests; no answer
is a 5xx the contract does not document; every answer conforms to the
document (status, content type, schema), and invalid data is refused."""

import collections
import json
import os
import subprocess
import uuid

import pytest

from devtools.long.harness import LOGS, REPO, odoo_script
from devtools.long.secrets_used import record

REQUESTS_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
DOCUMENTED_5XX = {"PROVISIONING_FAILED", "WEBHOOK_PROCESSING_FAILED"}
# 5xx answers are judged below (the documented PROVISIONING_FAILED may happen:
# the demo organizations have no mail server), not by schemathesis.
CHECKS = (
    "status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection"
)


@pytest.fixture(scope="module")
def target(data):
    """An organization on an unreachable mail server: provisioning answers
    202 at once, and the fuzzer does not flood the real Modoboa."""
    domain = f"fuzz-{uuid.uuid4().hex[:8]}.example"
    made = odoo_script(
        f"""
with registry.cursor() as cr:
    env = environment(cr)
    server = env["fayvad.mail.server"].create({{"name": "Fuzz (unreachable)", "url": "http://127.0.0.1:9",
                                               "token": "f" * 40, "sequence": 99, "connect_timeout": 0.5}})
    partner = env["res.partner"].create({{"name": "Fuzz customer"}})
    org = env["fayvad.mail.organization"].create({{"name": "Fuzz", "partner_id": partner.id, "state": "active",
        "mail_server_id": server.id, "max_users": 100000, "max_storage_gb": 100000, "max_aliases": 100000}})
    domain = env["fayvad.mail.domain"].create({{"name": {json.dumps(domain)}, "organization_id": org.id, "state": "active"}})
    secret = env["fayvad.mail.webhook.secret"].create({{"organization_id": org.id}})
    print(json.dumps({{"org_id": org.id, "domain_id": domain.id, "token": org.webhook_token, "secret": secret.secret}}))
""",
        name="fuzz-fixture",
    )
    record(made["secret"])
    return made


def test_fuzzing_from_the_contract(server, data, target, tmp_path):
    log = tmp_path / "answers.jsonl"
    env = dict(
        os.environ,
        SCHEMATHESIS_HOOKS="devtools.long.fuzz_hooks",
        PYTHONPATH=str(REPO),
        FUZZ_WEBHOOK_SECRET=data["secret"],
        FUZZ_ORG_ID=str(target["org_id"]),
        FUZZ_DOMAIN_ID=str(target["domain_id"]),
        FUZZ_ORG_TOKEN=target["token"],
        FUZZ_ORG_SECRET=target["secret"],
        FUZZ_LOG=str(log),
    )
    cmd = [
        os.environ["FAYVAD_LONG_FUZZ_PYTHON"],
        "-m",
        "schemathesis.cli",
        "run",
        f"{server.url}/fayvad_api/erp/openapi.json",
        "--url",
        f"{server.url}/fayvad_api/erp",
        "--header",
        f"Authorization: Token {data['key']}",
        "--mode",
        "all",
        "--phases",
        "examples,coverage,fuzzing",  # (stateful: the API has no links between operations)
        "--max-examples",
        str(REQUESTS_PER_OPERATION),
        "--checks",
        CHECKS,
        "--workers",
        "1",  # (Hypothesis is not thread-safe: several workers broke some of its runs)
        "--seed",
        "20261201",
        "--no-shrink",
        "--continue-on-failure",
        "--generation-allow-x00",
        "true",
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
        "--output-sanitize",
        "true",
        "--no-color",
    ]
    # GET /metrics/ takes no input and answers Prometheus text, not JSON: there is
    # nothing to fuzz (test_monitoring and test_openapi check it)
    cmd += ["--exclude-path", "/metrics/"]
    if os.environ.get("FUZZ_OPERATION"):
        cmd += ["--include-path", os.environ["FUZZ_OPERATION"]]
    result = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / "schemathesis.txt").write_text(result.stdout + result.stderr)
    answers = [json.loads(line) for line in log.read_text().splitlines()]
    per_operation = collections.Counter(answer["operation"] for answer in answers)
    statuses = collections.Counter((answer["operation"], answer["status"]) for answer in answers)
    print(
        "\nfuzzing:",
        json.dumps(
            {
                "requests": dict(per_operation),
                "statuses": {f"{k[0]} {k[1]}": v for k, v in sorted(statuses.items())},
            },
            indent=1,
        ),
    )
    (LOGS / "fuzz-answers.jsonl").write_text(log.read_text())
    assert len(per_operation) == (1 if os.environ.get("FUZZ_OPERATION") else 7), per_operation
    for operation, count in per_operation.items():
        assert count >= REQUESTS_PER_OPERATION, f"{operation}: only {count} requests"
    server_errors = [a for a in answers if a["status"] >= 500 and a["error_code"] not in DOCUMENTED_5XX]
    assert not server_errors, server_errors[:20]
    not_json = [a for a in answers if not a["content_type"].startswith("application/json")]
    assert not not_json, not_json[:20]
    assert result.returncode == 0, result.stdout[-6000:]
