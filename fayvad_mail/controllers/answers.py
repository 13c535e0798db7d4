"""The answers of the provisioning routes (the HTTP layer): a request's body
parsed and validated, the model's work (``fayvad.mail.provisioning``: the
records and their outcome), and the JSON answer the API document describes —
201 done, 202 pending, 500 refused — replayed for a repeated
``Idempotency-Key``."""

from ..tools.api_errors import ApiError
from ..tools.validation import parse_json_object

STATUS = {"done": 201, "pending": 202, "failed": 500}


def _iso(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def handle(env, kind, raw, validate, idempotency_key=None):
    """(status, body) of a provisioning request; with an ``Idempotency-Key``
    the first answer is stored, and replayed for the same body."""
    Requests = env["fayvad.mail.api.request"]
    if idempotency_key is None:
        return _answer_or_error(env, kind, raw, validate)
    try:
        replay = Requests._claim(idempotency_key, kind, raw)
    except ApiError as exc:  # another body, or the first request is still at work
        return exc.status, exc.body()
    if replay:
        return replay
    try:  # the key's lock is ours until the answer is stored
        try:
            status, body = _answer_or_error(env, kind, raw, validate)
        except Exception:
            Requests._release(idempotency_key)
            raise
        Requests._store(idempotency_key, status, body)
        return status, body
    finally:
        Requests._let_go(idempotency_key)


def _answer_or_error(env, kind, raw, validate):
    try:
        record, outcome = env["fayvad.mail.provisioning"]._provision(kind, validate(parse_json_object(raw)))
    except ApiError as exc:
        return exc.status, exc.body()
    return answer(kind, record, outcome)


def answer(kind, record, outcome):
    """(status, body) of what a request created and its outcome."""
    state, reason = outcome
    body = DESCRIBE[kind](record)
    body["provisioned"] = state == "done"
    if state == "failed":
        body["provisioning_status"] = "failed"
        return 500, {
            **body,
            "error": f"The mail server refused: {reason}"
            if reason
            else "Provisioning failed on the mail server; it is recorded for the administrators",
            "error_code": "PROVISIONING_FAILED",
        }
    if state == "pending":
        body["provisioning_status"] = "pending"
    return STATUS[state], body


def _organization(org):
    domain = org.domain_ids.sorted("id")[:1]
    sub = org.subscription_id
    return {
        "provisioned": False,
        "organization": {
            "id": org.id,
            "name": org.name,
            "domain_name": domain.name,
            "odoo_customer_id": org.partner_id.id,
            "max_users": org.max_users,
            "max_storage_gb": org.max_storage_gb,
            "is_active": org.state in ("draft", "provisioning", "active"),
            "state": org.state,
            "created_at": _iso(org.create_date),
        },
        "subscription": {
            "id": sub.id,
            "plan_name": sub.plan_id.name or None,
            "status": sub.state,
            "amount": round(sub.amount, sub.currency_id.decimal_places),
        }
        if sub
        else None,
        "provisioning_details": {
            "domain_created": bool(domain.remote_id),
            "dns_records_generated": bool(domain.dkim_public_key),
            "initial_admin_created": bool(domain.admin_created),
            "domain_verified": domain.verification_state == "verified",
            "receives_mail": bool(domain.mail_enabled),
            "dns_records": [
                {
                    "purpose": record.purpose,
                    "type": record.record_type,
                    "name": record.name,
                    "value": record.value or "",
                    "priority": record.priority,
                    "status": record.status,
                }
                for record in domain.dns_record_ids
            ],
        },
    }


def _account(account):
    created = bool(account.remote_id) and account.state in ("active", "suspended")
    return {
        "provisioned": False,
        "email_account": {
            "id": account.id,
            "email": account.email,
            "first_name": account.first_name or "",
            "last_name": account.last_name or "",
            "quota": account.quota,
            "organization_id": account.organization_id.id,
            "domain_id": account.domain_id.id,
            "state": account.state,
        },
        "provisioning_details": {
            "mailbox_created": created,
            "user_profile_created": created,
            "quota_set": created,
        },
    }


def _alias(alias):
    return {
        "provisioned": False,
        "alias": {
            "id": alias.id,
            "email": alias.address,
            "recipients": alias._recipient_list(),
            "organization_id": alias.organization_id.id,
            "domain_id": alias.domain_id.id,
            "state": alias.state,
        },
    }


def _domain_alias(alias):
    return {
        "provisioned": False,
        "domain_alias": {
            "id": alias.id,
            "name": alias.name,
            "domain_id": alias.domain_id.id,
            "organization_id": alias.organization_id.id,
            "state": alias.state,
            "dns_records": (alias.dns_zone or "").splitlines(),
        },
    }


DESCRIBE = {
    "organization": _organization,
    "email_account": _account,
    "alias": _alias,
    "domain_alias": _domain_alias,
}
