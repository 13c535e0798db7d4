import hashlib
import json
import logging
import time

from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools.api_errors import ApiError
from ..tools.signature import matching_secret
from ..tools.validation import ValidationFailed, parse_json_object, validate_billing_webhook

_logger = logging.getLogger(__name__)
VERDICT_OF_ERROR = {"INVALID_WEBHOOK_SIGNATURE": "invalid_signature", "WEBHOOK_PROCESSING_FAILED": "failed"}
HIDDEN_HEADERS = {"authorization", "cookie", "x-webhook-secret", "proxy-authorization"}

VERDICTS = [
    ("processed", "Processed"),
    ("duplicate", "Duplicate"),
    ("invalid_signature", "Invalid Signature"),
    ("no_secret", "No Secret Configured"),
    ("invalid", "Invalid Payload"),
    ("failed", "Processing Failed"),
]


class FayvadMailWebhookDelivery(models.Model):
    """Every billing webhook delivery, valid or not, as received."""

    _name = "fayvad.mail.webhook.delivery"
    _description = "Billing Webhook Delivery"
    _order = "id desc"
    _rec_name = "reference"

    reference = fields.Char(
        required=True, readonly=True, copy=False, index=True, help="The webhook_id answered to the sender."
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    organization_id = fields.Many2one(
        "fayvad.mail.organization", readonly=True, index=True, ondelete="set null"
    )
    route = fields.Selection(
        [("company", "Company URL"), ("organization", "Organization URL")], readonly=True
    )
    event_type = fields.Char(readonly=True)
    remote_addr = fields.Char(string="Sender Address", readonly=True)
    headers = fields.Text(readonly=True, help="Request headers; secrets and signatures removed.")
    body = fields.Text(readonly=True)
    signature_valid = fields.Boolean(readonly=True)
    verdict = fields.Selection(VERDICTS, readonly=True, index=True)
    http_status = fields.Integer(readonly=True)
    response = fields.Text(readonly=True)
    error = fields.Text(readonly=True)
    dedup_key = fields.Char(
        readonly=True, copy=False, help="Identity of the event for exactly-once processing."
    )
    # a reference, not a Many2one: the first delivery may be committed after
    # this transaction's snapshot, where a foreign key could not see it
    duplicate_of = fields.Char(readonly=True, help="The delivery that applied this event.")
    duration_ms = fields.Integer(string="Duration (ms)", readonly=True)
    billing_event_ids = fields.One2many("fayvad.mail.billing.event", "webhook_delivery_id", readonly=True)

    def init(self):
        # Exactly once: one processed delivery per event identity, enforced by the
        # database so that concurrent identical deliveries cannot both apply.
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS fayvad_mail_webhook_delivery_dedup_uniq "
            "ON fayvad_mail_webhook_delivery (dedup_key) WHERE dedup_key IS NOT NULL"
        )

    # -- receiving -----------------------------------------------------------------------
    @api.model
    def _receive(self, raw, headers, remote_addr, token=None):
        """Verify, store and apply one billing webhook delivery (in the
        caller's transaction, which commits whatever the verdict).
        Returns (HTTP status, JSON body)."""
        started = time.monotonic()
        delivery = self.create(
            {
                "reference": self.env["ir.sequence"].next_by_code("fayvad.mail.webhook.delivery")
                or "webhook",
                "company_id": self.env.company.id,
                "route": "organization" if token is not None else "company",
                "remote_addr": remote_addr,
                "headers": json.dumps(
                    {k: v for k, v in headers.items() if k.lower() not in HIDDEN_HEADERS}, indent=1
                ),
                "body": raw.decode("utf-8", errors="replace"),
            }
        )
        try:
            status, body = delivery._verify_and_apply(raw, headers, token)
        except ApiError as exc:
            verdict = exc.extra.pop("verdict", None) or VERDICT_OF_ERROR.get(exc.code, "invalid")
            status, body = exc.status, {**exc.body(), "processed": False}
            delivery.write({"verdict": verdict, "error": exc.message})
            if delivery.verdict in ("invalid_signature", "no_secret"):
                _logger.warning(
                    "billing webhook %s refused from %s: %s", delivery.reference, remote_addr, exc.message
                )
        delivery.write(
            {
                "http_status": status,
                "response": json.dumps(body, indent=1),
                "duration_ms": int((time.monotonic() - started) * 1000),
            }
        )
        return status, body

    def _verify_and_apply(self, raw, headers, token):
        self.ensure_one()
        Org = self.env["fayvad.mail.organization"]
        url_org = Org
        if token is not None:
            url_org = Org.search([("webhook_token", "=", token)], limit=1) if token else Org
            if not url_org:
                raise ApiError(404, "NOT_FOUND", "No such webhook URL")
            self.write({"organization_id": url_org.id, "company_id": url_org.company_id.id})
        candidates = self._candidate_secrets(url_org)
        if not candidates:
            raise ApiError(
                400,
                "INVALID_WEBHOOK_SIGNATURE",
                "No webhook secret is configured: deliveries are refused",
                verdict="no_secret",
            )
        signature = next((v for k, v in headers.items() if k.lower() == "x-webhook-signature"), "")
        secret = matching_secret(signature, raw, candidates)
        if secret is None:
            raise ApiError(400, "INVALID_WEBHOOK_SIGNATURE", "Invalid webhook signature")
        self.signature_valid = True
        company = candidates[secret]
        try:
            data = validate_billing_webhook(parse_json_object(raw))
        except ValidationFailed as exc:
            raise ApiError(
                400, "VALIDATION_ERROR", "Request data validation failed", details=exc.details
            ) from None
        self.event_type = data["event_type"]
        org = Org.search([("id", "=", data["organization_id"]), ("company_id", "=", company.id)])
        if not org:
            raise ApiError(404, "ORGANIZATION_NOT_FOUND", f"Organization {data['organization_id']} not found")
        if url_org and org != url_org:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                "Request data validation failed",
                details={"organization_id": ["Does not match the organization of this webhook URL."]},
            )
        self.write({"organization_id": org.id, "company_id": company.id})
        try:
            org._webhook_currency(data["currency"])
        except UserError as exc:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                "Request data validation failed",
                details={"billing_data.currency": [exc.args[0]]},
            ) from None
        return self._apply_once(org, data, raw)

    def _candidate_secrets(self, url_org):
        """{live secret: company} for this route."""
        Secret = self.env["fayvad.mail.webhook.secret"].sudo()
        domain = ["|", ("expires_at", "=", False), ("expires_at", ">", fields.Datetime.now())]
        if url_org:
            domain += [("organization_id", "=", url_org.id)]
        else:
            domain += [("organization_id", "=", False)]
        return {secret.secret: secret.company_id for secret in Secret.search(domain)}

    def _apply_once(self, org, data, raw):
        """Apply the event unless an identical one was applied already
        (the database's unique index decides, also under concurrency)."""
        if data["invoice_id"]:
            key = f"{org.id}:{data['event_type']}:{data['invoice_id']}"
        else:
            key = f"{org.company_id.id}:body:{hashlib.sha256(raw).hexdigest()}"
        self.flush_recordset()
        try:
            # a concurrent identical delivery makes this wait for its commit, then fail
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    SQL("UPDATE fayvad_mail_webhook_delivery SET dedup_key = %s WHERE id = %s", key, self.id),
                    log_exceptions=False,
                )
        except pg_errors.UniqueViolation:
            return self._answer_duplicate(key, data)
        self.invalidate_recordset(["dedup_key"])
        try:
            with self.env.cr.savepoint():
                org._apply_billing_webhook(data, self)
        except Exception as exc:
            _logger.exception("billing webhook %s could not be applied", self.reference)
            self.dedup_key = False
            raise ApiError(
                500, "WEBHOOK_PROCESSING_FAILED", f"The event could not be applied: {exc}"
            ) from None
        self.verdict = "processed"
        return 200, self._answer(data)

    def _answer(self, data, duplicate=False):
        return {
            "processed": True,
            "webhook_id": self.reference,
            "organization_id": data["organization_id"],
            "event_type": data["event_type"],
            "processed_at": (self.create_date or fields.Datetime.now()).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duplicate": duplicate,
        }

    def _answer_duplicate(self, key, data):
        # the first delivery may have been committed after this transaction
        # began: read it in a fresh one
        with self.env.registry.cursor() as cr:
            first = self.with_env(self.env(cr=cr)).search([("dedup_key", "=", key)], limit=1)
            reference, answer = first.reference, first._answer(data, duplicate=True)
        self.write({"verdict": "duplicate", "duplicate_of": reference})
        return 200, answer

    @api.model
    def _cron_prune(self):
        """Delete deliveries older than the company's retention (days)."""
        for company in self.env["res.company"].search([]):
            days = company.fayvad_webhook_retention_days
            if days <= 0:
                continue
            limit = fields.Datetime.subtract(fields.Datetime.now(), days=days)
            old = self.search([("company_id", "=", company.id), ("create_date", "<", limit)], limit=5000)
            old.unlink()
