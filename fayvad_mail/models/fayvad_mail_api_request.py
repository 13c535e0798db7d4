import hashlib
import json

import psycopg2

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools.api_errors import ApiError


class FayvadMailApiRequest(models.Model):
    """A POST made with an ``Idempotency-Key``: the same key with the same
    body replays the first answer; with another body it is a conflict."""

    _name = "fayvad.mail.api.request"
    _description = "API Idempotency Record"
    _order = "id desc"

    user_id = fields.Many2one("res.users", required=True, index=True, ondelete="cascade")
    key = fields.Char(required=True)
    route = fields.Char(required=True)
    body_hash = fields.Char(required=True)
    status_code = fields.Integer()
    response = fields.Text()

    _sql_constraints = [
        ("user_key_unique", "UNIQUE(user_id, key)", "An idempotency key is used once per user.")
    ]

    @api.model
    def _lock_id(self, key):
        """The advisory lock that a request holds on its connection while it
        works under ``key``: it ends with the request, or with the request's
        connection when its worker is killed."""
        digest = hashlib.sha256(f"fayvad_mail.idempotency:{self.env.uid}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    @api.model
    def _hold(self, key):
        """Take the key's lock for this request (False: another live request has it)."""
        self.env.cr.execute(SQL("SELECT pg_try_advisory_lock(%s)", self._lock_id(key)))
        return self.env.cr.fetchone()[0]

    @api.model
    def _let_go(self, key):
        unlock = SQL("SELECT pg_advisory_unlock(%s)", self._lock_id(key))
        try:
            self.env.cr.execute(unlock)
        except psycopg2.Error:  # the transaction failed: end it, the lock must not outlive the request
            self.env.cr.rollback()
            self.env.cr.execute(unlock)

    @api.model
    def _claim(self, key, route, raw):
        """Claim ``key`` for this request (committed, on the request's own
        connection) and hold its lock (``_let_go`` releases it). Returns
        ``None`` when claimed (go on), else ``(status, body)`` to answer
        instead: the stored answer of the first request. Raises a 409
        ApiError for another body, or while the first request is at work. A
        claim whose request is gone (its worker was killed: its lock went
        with its connection) is taken over."""
        if not key or len(key) > 255 or not key.isascii() or not key.isprintable():
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                "Request data validation failed",
                details={"Idempotency-Key": ["Must be 1 to 255 printable ASCII characters."]},
            )
        digest = hashlib.sha256(raw).hexdigest()
        held = self._hold(key)
        # a snapshot taken after the lock
        self.env.cr.commit()  # pylint: disable=invalid-commit
        if not held:  # the first request is still at work (or just storing its answer)
            answer = self._replay(key, route, digest)
            if answer:
                return answer
            raise ApiError(409, "CONFLICT", "A request with this Idempotency-Key is still being processed")
        try:
            answer = self._replay(key, route, digest, orphan_ok=True)
            if answer:
                self._let_go(key)
                return answer
            Requests = self.sudo()
            if not Requests.search([("user_id", "=", self.env.uid), ("key", "=", key)], limit=1):
                # (else it was left by a request that died: ours now)
                Requests.create({"user_id": self.env.uid, "key": key, "route": route, "body_hash": digest})
            self.env.cr.commit()  # pylint: disable=invalid-commit
            return None
        except BaseException:
            self._let_go(key)
            raise

    @api.model
    def _replay(self, key, route, digest, orphan_ok=False):
        first = self.sudo().search([("user_id", "=", self.env.uid), ("key", "=", key)], limit=1)
        if not first:
            return None
        if first.route != route or first.body_hash != digest:
            raise ApiError(409, "CONFLICT", "This Idempotency-Key was used with a different request")
        if not first.status_code:
            if orphan_ok:  # its request is gone (the caller holds the key's lock)
                return None
            raise ApiError(409, "CONFLICT", "A request with this Idempotency-Key is still being processed")
        return first.status_code, json.loads(first.response)

    @api.model
    def _store(self, key, status, body):
        record = self.sudo().search([("user_id", "=", self.env.uid), ("key", "=", key)], limit=1)
        record.write({"status_code": status, "response": json.dumps(body)})
        self.env.cr.commit()  # pylint: disable=invalid-commit

    @api.model
    def _release(self, key):
        """Forget a claim whose request crashed, so it can be retried."""
        self.env.cr.rollback()
        self.sudo().search(
            [("user_id", "=", self.env.uid), ("key", "=", key), ("status_code", "=", 0)]
        ).unlink()
        self.env.cr.commit()  # pylint: disable=invalid-commit

    @api.autovacuum
    def _gc_old_requests(self):
        """Idempotency keys are remembered for 7 days."""
        self.sudo().search(
            [("create_date", "<", fields.Datetime.subtract(fields.Datetime.now(), days=7))]
        ).unlink()
