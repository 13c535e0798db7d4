import hashlib
import ipaddress
import json
import logging
import re
import time
from decimal import Decimal

from psycopg2 import errors as pg_errors
from psycopg2.extensions import TransactionRollbackError

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools.api_errors import ApiError
from ..tools.signature import SignatureRefused, verify
from ..tools.validation import ValidationFailed, parse_json_object, validate_billing_webhook
from .fayvad_mail_cron_mixin import cron_error_message
from .fayvad_mail_webhook_identity import AlreadyClaimed

_logger = logging.getLogger(__name__)
VERDICT_OF_ERROR = {"INVALID_WEBHOOK_SIGNATURE": "invalid_signature", "WEBHOOK_PROCESSING_FAILED": "failed"}
HIDDEN_HEADERS = {"authorization", "cookie", "x-webhook-secret", "proxy-authorization"}
# a signature is a secret for logging purposes: kept as a fingerprint only
SIGNATURE_HEADERS = {"x-webhook-signature", "webhook-signature"}
TOKEN = re.compile(r"[0-9a-f]{32}")  # organizations' webhook URL tokens (secrets.token_hex(16))
# What an unauthenticated sender can make us store: per source address, route
# and verdict, one row an hour (its attempts counted), a capped body prefix.
REFUSED_BODY_PREFIX = 1024
REFUSED_HEADERS_MAX = 2048
REFUSED_VERDICTS = ("invalid_signature", "no_secret", "unknown_url")
REFERENCE_SEQUENCE = "fayvad_mail_webhook_delivery_reference_seq"
# what applying an event reads of its organization: fetched with the search
ORGANIZATION_FIELDS = [
    "name",
    "company_id",
    "partner_id",
    "plan_id",
    "state",
    "suspension_reason",
    "suspension_exempt",
    "sending_blocked",
    "subscription_id",
]

VERDICTS = [
    ("processed", "Processed"),
    ("duplicate", "Duplicate"),
    ("invalid_signature", "Invalid Signature"),
    ("no_secret", "No Secret Configured"),
    ("unknown_url", "Unknown URL"),
    ("invalid", "Invalid Payload"),
    ("failed", "Processing Failed"),
]


def stored_headers(headers):
    """The request headers as kept on the delivery: credentials dropped,
    signatures replaced by a fingerprint (enough to tell two apart)."""
    kept = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in HIDDEN_HEADERS:
            continue
        if lower in SIGNATURE_HEADERS:
            value = f"[redacted, fingerprint {hashlib.sha256(value.encode()).hexdigest()[:12]}]"
        kept[name] = value
    return kept


def source_of(remote_addr):
    """The sender a refused delivery is counted for: its IPv4 address, or
    the /64 network of its IPv6 address (one host holds a whole /64: counting
    each address would let it grow the log at will)."""
    try:
        address = ipaddress.ip_address((remote_addr or "").strip())
    except ValueError:
        return (remote_addr or "")[:64]
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def storable_text(raw):
    """A request body as text a database column takes (invalid UTF-8 and
    NUL characters replaced)."""
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


class FayvadMailWebhookDelivery(models.Model):
    """Every billing webhook delivery as received: in full once its signature
    is valid; refused ones (bad signature, no secret, unknown URL) counted
    per source and hour with a capped prefix of their body, so that
    unauthenticated senders cannot grow the database."""

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
    headers = fields.Text(
        readonly=True, help="Request headers; credentials removed, signatures as a fingerprint."
    )
    body = fields.Text(readonly=True, help="The body (for refused deliveries: its first 1 KiB).")
    signature_valid = fields.Boolean(readonly=True)
    verdict = fields.Selection(VERDICTS, readonly=True, index=True)
    http_status = fields.Integer(readonly=True)
    response = fields.Text(readonly=True)
    error = fields.Text(readonly=True)
    refusal_ids = fields.One2many("fayvad.mail.webhook.refusal", "delivery_id", readonly=True)
    attempt_count = fields.Integer(
        string="Attempts",
        compute="_compute_attempts",
        help="Refused deliveries from one source, route and verdict within the hour are counted on one line.",
    )
    last_attempt_at = fields.Datetime(string="Last Attempt", compute="_compute_attempts")
    aggregate_key = fields.Char(readonly=True, copy=False)
    dedup_key = fields.Char(
        readonly=True, copy=False, help="Identity of the event for exactly-once processing."
    )
    # a reference, not a Many2one: the first delivery may be committed after
    # this transaction's snapshot, where a foreign key could not see it
    duplicate_of = fields.Char(readonly=True, help="The delivery that applied this event.")
    duration_ms = fields.Integer(
        string="Duration (ms)",
        readonly=True,
        help="From receipt to this record; a processed delivery is recorded just before its event is applied.",
    )
    billing_event_ids = fields.One2many("fayvad.mail.billing.event", "webhook_delivery_id", readonly=True)

    @api.depends("refusal_ids.attempts", "refusal_ids.last_attempt_at")
    def _compute_attempts(self):
        for delivery in self:
            counter = delivery.refusal_ids[:1]
            delivery.attempt_count = counter.attempts or 1
            delivery.last_attempt_at = counter.last_attempt_at or delivery.create_date

    def init(self):
        # references (webhook_000123) count on from those an ir.sequence gave before
        self.env.cr.execute(
            SQL(
                """
                DO $$ BEGIN
                    CREATE SEQUENCE %(seq)s;
                    PERFORM setval('%(seq)s', GREATEST(1, (
                        SELECT max(substring(reference FROM '^webhook_([0-9]{1,18})$')::bigint)
                          FROM fayvad_mail_webhook_delivery)), true);
                EXCEPTION WHEN duplicate_table THEN NULL;
                END $$
                """,
                seq=SQL(REFERENCE_SEQUENCE),
            )
        )
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS fayvad_mail_webhook_delivery_aggregate_uniq "
            "ON fayvad_mail_webhook_delivery (aggregate_key) WHERE aggregate_key IS NOT NULL"
        )

    # -- receiving -----------------------------------------------------------------------
    @api.model
    def _new_reference(self):
        """The next delivery's webhook_id (one query, no lock)."""
        self.env.cr.execute(SQL("SELECT nextval(%s)", REFERENCE_SEQUENCE))
        return f"webhook_{self.env.cr.fetchone()[0]:06d}"

    @api.model
    def _receive(self, raw, headers, remote_addr, token=None):
        """Verify, store and apply one billing webhook delivery (on the
        caller's connection; the caller commits whatever the verdict).
        Returns (HTTP status, JSON body)."""
        started = time.monotonic()
        route = "organization" if token is not None else "company"
        url_org = self.env["fayvad.mail.organization"]
        try:
            url_org = self._url_organization(token)
            candidates = self._candidate_secrets(url_org)
            if not candidates:
                raise ApiError(
                    400,
                    "INVALID_WEBHOOK_SIGNATURE",
                    "No webhook secret is configured: deliveries are refused",
                    verdict="no_secret",
                )
            try:
                secret = verify(headers, raw, list(candidates))
            except SignatureRefused as exc:
                raise ApiError(400, "INVALID_WEBHOOK_SIGNATURE", str(exc)) from None
            if secret is None:
                raise ApiError(400, "INVALID_WEBHOOK_SIGNATURE", "Invalid webhook signature")
        except ApiError as exc:
            verdict = exc.extra.pop("verdict", None) or VERDICT_OF_ERROR.get(exc.code, "invalid")
            status, body = exc.status, {**exc.body(), "processed": False}
            self._count_refused(verdict, route, url_org, raw, headers, remote_addr, status, body)
            return status, body
        # the rest happens in the company whose secret signed the delivery
        company = candidates[secret]
        return self.with_company(company)._receive_signed(raw, headers, remote_addr, route, url_org, started)

    @api.model
    def _receive_signed(self, raw, headers, remote_addr, route, url_org, started):
        """Store and apply a delivery whose signature is valid (in its
        company): (HTTP status, JSON body)."""
        company = self.env.company
        vals = {
            "reference": self._new_reference(),
            "company_id": company.id,
            "organization_id": url_org.id,
            "route": route,
            "remote_addr": remote_addr,
            "headers": json.dumps(stored_headers(headers), indent=1),
            "body": storable_text(raw),
            "signature_valid": True,
        }
        try:
            org, data, currency = self._validated(raw, headers, url_org, company, vals)
        except ApiError as exc:
            status, body = exc.status, {**exc.body(), "processed": False}
            verdict = VERDICT_OF_ERROR.get(exc.code, "invalid")
            self.create(
                vals | {"verdict": verdict, "error": exc.message, **self._outcome(status, body, started)}
            )
            return status, body
        return self._apply_once(vals, org, data, currency, started)

    @staticmethod
    def _outcome(status, body, started):
        return {
            "http_status": status,
            "response": json.dumps(body, indent=1),
            "duration_ms": int((time.monotonic() - started) * 1000),
        }

    @api.model
    def _url_organization(self, token):
        """The organization of a per-organization URL (none for the company URL)."""
        Org = self.env["fayvad.mail.organization"]
        if token is None:
            return Org
        org = Org.search([("webhook_token", "=", token)], limit=1) if TOKEN.fullmatch(token) else Org
        if not org:
            raise ApiError(404, "NOT_FOUND", "No such webhook URL", verdict="unknown_url")
        return org

    @api.model
    def _count_refused(self, verdict, route, org, raw, headers, remote_addr, status, body):
        """Log a refused delivery: per source address, route, organization
        and verdict one line an hour, whose attempts are counted; only the
        first 1 KiB of the first body is kept. Safe with concurrent
        refusals (a line another worker just committed is counted on, on
        this same connection, after ending this transaction)."""
        now = fields.Datetime.now()
        key = f"{verdict}:{route}:{org.id or 0}:{source_of(remote_addr)}:{now:%Y%m%d%H}"
        error = body.get("error", "")
        for _attempt in range(5):
            try:
                with self.env.cr.savepoint(flush=False):
                    self.env.cr.execute(
                        SQL(
                            """
                            UPDATE fayvad_mail_webhook_refusal counter
                               SET attempts = counter.attempts + 1, last_attempt_at = %s
                              FROM fayvad_mail_webhook_delivery delivery
                             WHERE delivery.aggregate_key = %s AND counter.delivery_id = delivery.id
                         RETURNING counter.attempts
                            """,
                            now,
                            key,
                        ),
                        log_exceptions=False,
                    )
                    row = self.env.cr.fetchone()
                    if row is None:
                        self._insert_refused(
                            key, verdict, route, org, raw, headers, remote_addr, status, body
                        )
                count = row[0] if row else 1
                if count in (1, 10, 100, 1000) or count % 10000 == 0:  # the server log is not flooded either
                    _logger.warning(
                        "billing webhook refused from %s (%s, attempt %s this hour): %s",
                        remote_addr,
                        verdict,
                        count,
                        error,
                    )
                return
            except (pg_errors.UniqueViolation, TransactionRollbackError):
                # another worker logged the same line since this transaction began:
                # end it (nothing of value is in it yet) and count on that line
                self.env.cr.commit()  # pylint: disable=invalid-commit
        _logger.warning("billing webhook refused from %s (%s), not counted: %s", remote_addr, verdict, error)

    @api.model
    def _insert_refused(self, key, verdict, route, org, raw, headers, remote_addr, status, body):
        reference = self._new_reference()
        now = fields.Datetime.now()
        self.env.cr.execute(
            SQL(
                """
                WITH line AS (
                    INSERT INTO fayvad_mail_webhook_delivery
                           (reference, company_id, organization_id, route, remote_addr, headers, body,
                            signature_valid, verdict, http_status, response, error, aggregate_key,
                            duration_ms, create_uid, write_uid, create_date, write_date)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, false, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s)
                 RETURNING id, create_date
                )
                INSERT INTO fayvad_mail_webhook_refusal (delivery_id, attempts, last_attempt_at)
                SELECT id, 1, create_date FROM line
                """,
                reference,
                (org.company_id or self.env.company).id,
                org.id or None,
                route,
                (remote_addr or "")[:64],
                json.dumps(stored_headers(headers), indent=1)[:REFUSED_HEADERS_MAX],
                storable_text(raw[:REFUSED_BODY_PREFIX]),
                verdict,
                status,
                json.dumps(body, indent=1),
                body.get("error"),
                key,
                self.env.uid,
                self.env.uid,
                now,
                now,
            ),
            log_exceptions=False,
        )

    @api.model
    def _validated(self, raw, headers, url_org, company, vals):
        """The payload of a delivery whose signature is valid: (organization,
        data, currency), or ApiError. What it learns goes into the
        delivery's ``vals`` (event type, organization, identity)."""
        Org = self.env["fayvad.mail.organization"]
        try:
            data = validate_billing_webhook(parse_json_object(raw))
        except ValidationFailed as exc:
            raise ApiError(
                400, "VALIDATION_ERROR", "Request data validation failed", details=exc.details
            ) from None
        vals["event_type"] = data["event_type"]
        org = Org.search_fetch(
            [("id", "=", data["organization_id"]), ("company_id", "=", company.id)], ORGANIZATION_FIELDS
        )
        if not org:
            raise ApiError(404, "ORGANIZATION_NOT_FOUND", f"Organization {data['organization_id']} not found")
        if url_org and org != url_org:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                "Request data validation failed",
                details={"organization_id": ["Does not match the organization of this webhook URL."]},
            )
        vals["organization_id"] = org.id
        try:
            currency = self.env["fayvad.mail.billing.webhook"]._currency(org, data["currency"])
        except UserError as exc:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                "Request data validation failed",
                details={"billing_data.currency": [exc.args[0]]},
            ) from None
        if data["amount"] is not None and data["amount"] != data["amount"].quantize(
            Decimal(1).scaleb(-currency.decimal_places)
        ):
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                "Request data validation failed",
                details={
                    "billing_data.amount": [
                        f"At most {currency.decimal_places} decimal places in {currency.name}."
                    ]
                },
            )
        problem = self.env["fayvad.mail.webhook.identity"]._timestamp_problem(data["timestamp"])
        if problem:
            raise ApiError(
                400, "VALIDATION_ERROR", "Request data validation failed", details={"timestamp": [problem]}
            )
        keys = self._identity(org, data, raw, headers)
        vals["dedup_key"] = "\n".join(keys)
        return org, data, currency

    def _candidate_secrets(self, url_org):
        """{live secret: company} for this route."""
        Secret = self.env["fayvad.mail.webhook.secret"].sudo()
        domain = ["|", ("expires_at", "=", False), ("expires_at", ">", fields.Datetime.now())]
        if url_org:
            domain += [("organization_id", "=", url_org.id)]
        else:
            domain += [("organization_id", "=", False)]
        return {
            secret.secret: secret.company_id
            for secret in Secret.search_fetch(domain, ["secret_encrypted", "company_id"])
        }

    def _identity(self, org, data, raw, headers):
        """The event's identity keys (CONTRACT.md, second amendments), all
        scoped to its organization: the hash of the raw body, always; the
        sender's ``Webhook-Id`` (or ``X-Webhook-Id``, or Standard Webhooks'
        signed ``webhook-id``) header when present; type, invoice and
        timestamp when an invoice is named. A delivery is a duplicate when
        any of its keys was applied before: an unsigned header may merge
        deliveries, never split them."""
        keys = [f"{org.id}:body:{hashlib.sha256(raw).hexdigest()}"]
        header_id = next(
            (v for k, v in headers.items() if k.lower() in ("webhook-id", "x-webhook-id") and v.strip()), None
        )
        if header_id is not None:
            header_id = header_id.strip()
            if len(header_id) > 255 or not header_id.isascii() or not header_id.isprintable():
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    "Request data validation failed",
                    details={"Webhook-Id": ["At most 255 printable ASCII characters."]},
                )
            keys.append(f"{org.id}:id:{header_id}")
        if data["invoice_id"]:
            stamp = data["timestamp"].strftime("%Y-%m-%dT%H:%M:%S.%fZ") if data["timestamp"] else ""
            keys.append(f"{org.id}:{data['event_type']}:{data['invoice_id']}:{stamp}")
        return keys

    @api.model
    def _apply_once(self, vals, org, data, currency, started):
        """Record the delivery and apply its event unless it was applied
        already: the identity ledger's unique key decides, also under
        concurrency. A delivery that applies its event is written once,
        with its answer, just before the event (which points to it); its
        duration is then the time to verify and record it. (HTTP status,
        JSON body)."""
        Identity = self.env["fayvad.mail.webhook.identity"]
        keys, stamp = vals["dedup_key"].split("\n"), data["timestamp"]
        body = self._answer(data, reference=vals["reference"], processed_at=self.env.cr.now())
        try:
            # one savepoint for the claim, the delivery and the event: all stay or none
            with self.env.cr.savepoint():
                # a concurrent identical delivery makes this wait for its commit, then fail
                Identity._claim(keys, vals, stamp and stamp.replace(tzinfo=None))
                delivery = self.create(vals | {"verdict": "processed", **self._outcome(200, body, started)})
                self.env["fayvad.mail.billing.webhook"]._apply(org, data, delivery, currency)
            return 200, body
        except AlreadyClaimed:
            return self.create(vals)._answer_duplicate(keys, data, started)
        except TransactionRollbackError:
            # a concurrent delivery changed the same records: Odoo serves the
            # whole request again (nothing of this attempt stays, its claim included)
            raise
        except Exception as exc:
            _logger.exception("billing webhook %s could not be applied", vals["reference"])
            error = ApiError(
                500,
                "WEBHOOK_PROCESSING_FAILED",
                "The event could not be applied; it was not recorded and can be sent again",
            )
            status, body = error.status, {**error.body(), "processed": False}
            # the accountants see why, never the caller
            self.create(
                vals
                | {"verdict": VERDICT_OF_ERROR[error.code], "error": cron_error_message(exc)}
                | self._outcome(status, body, started)
            )
            return status, body

    def _answer(self, data, duplicate=False, reference=None, processed_at=None):
        return {
            "processed": True,
            "webhook_id": reference or self.reference,
            "organization_id": data["organization_id"],
            "event_type": data["event_type"],
            "processed_at": (processed_at or self.create_date or fields.Datetime.now()).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "duplicate": duplicate,
        }

    def _answer_duplicate(self, keys, data, started):
        Identity = self.env["fayvad.mail.webhook.identity"]
        first = Identity._first(keys)
        if first is None:
            # applied by a delivery committed after this transaction began: end
            # this transaction (the log of this delivery so far) and look
            # again in a new one, on the same connection
            self.env.cr.commit()  # pylint: disable=invalid-commit
            first = Identity._first(keys)
        reference, applied_at = first or (None, None)
        body = self._answer(data, duplicate=True, reference=reference, processed_at=applied_at)
        self.write({"verdict": "duplicate", "duplicate_of": reference, **self._outcome(200, body, started)})
        return 200, body

    @api.model
    def unlink(self):
        # the metrics' counter of deliveries never goes down: what is deleted is counted apart
        counts = {}
        for delivery in self:
            key = (delivery.company_id.id, delivery.verdict or "received")
            counts[key] = counts.get(key, 0) + 1
        self.env["fayvad.mail.metric.counter"]._add("webhook_deliveries", counts)
        return super().unlink()

    def _cron_prune(self):
        """Delete deliveries older than the company's retention (days), and
        the ledger's identities of events older than its window (the ledger
        outlives the log: a pruned delivery is still never applied twice)."""
        for company in self.env["res.company"].search([("fayvad_webhook_retention_days", ">", 0)]):
            limit = fields.Datetime.subtract(
                fields.Datetime.now(), days=company.fayvad_webhook_retention_days
            )
            old = self.search([("company_id", "=", company.id), ("create_date", "<", limit)], limit=5000)
            try:
                with self.env.cr.savepoint():
                    old.unlink()
            except Exception:  # one delivery that cannot go: delete the others one by one
                for delivery in old:
                    try:
                        with self.env.cr.savepoint():
                            delivery.unlink()
                    except Exception as exc:
                        _logger.warning(
                            "webhook delivery %s could not be pruned", delivery.reference, exc_info=True
                        )
                        delivery.error = f"Could not be pruned: {cron_error_message(exc)}"
        self.env["fayvad.mail.webhook.identity"]._prune()
