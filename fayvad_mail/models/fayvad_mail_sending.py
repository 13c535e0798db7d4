from odoo import api, fields, models


class FayvadMailOrganization(models.Model):
    """Daily sending limits: each mailbox may send the plan's number of
    messages a day (Modoboa's ``message_limit``, enforced by its policy
    daemon). A dunning stage before suspension blocks sending (limit 0)
    while logins and receiving go on; a payment restores the plan's limit."""

    _inherit = "fayvad.mail.organization"

    sending_blocked = fields.Boolean(
        string="Sending Blocked",
        readonly=True,
        copy=False,
        tracking=True,
        help="Set by dunning after a failed payment: the mailboxes may not send (they still log in and "
        "receive). A payment lifts it.",
    )

    def _message_limit(self):
        """The ``message_limit`` of each of its mailboxes on the mail server
        (None: no limit)."""
        self.ensure_one()
        if self.sending_blocked:
            return 0
        return self.plan_id.daily_message_limit or None

    def write(self, vals):
        limits = (
            {org: org._message_limit() for org in self} if {"plan_id", "sending_blocked"} & set(vals) else {}
        )
        res = super().write(vals)
        for org, limit in limits.items():
            if org._message_limit() != limit:
                org._push_sending_limits()
        return res

    def _push_sending_limits(self):
        Job = self.env["fayvad.mail.job"]
        for org in self.filtered(lambda o: o.state not in ("draft", "terminated")):
            Job._enqueue("update_sending_limits", organization=org)
        Job._trigger_runner()

    def _block_sending(self):
        """The dunning stage before suspension."""
        for org in self.filtered(lambda o: not o.sending_blocked and o.state == "active"):
            org.sending_blocked = True
            org.message_post(
                body=self.env._(
                    "Sending is blocked after a failed payment: the mailboxes still log in and receive mail. "
                    "A payment restores sending."
                )
            )

    def _unblock_sending(self):
        for org in self.filtered("sending_blocked"):
            org.sending_blocked = False
            org.message_post(body=self.env._("Payment received: sending is restored."))


class FayvadMailPlan(models.Model):
    _inherit = "fayvad.mail.plan"

    daily_message_limit = fields.Integer(
        string="Daily Sending Limit per Mailbox",
        default=0,
        tracking=True,
        help="Messages each mailbox may send per day, enforced by the mail server (0: no limit).",
    )

    _sql_constraints = [
        (
            "daily_message_limit_positive",
            "CHECK(daily_message_limit >= 0)",
            "A sending limit cannot be negative.",
        )
    ]

    def write(self, vals):
        res = super().write(vals)
        if "daily_message_limit" in vals:
            orgs = self.env["fayvad.mail.organization"].search([("plan_id", "in", self.ids)])
            orgs._push_sending_limits()
        return res


class ResCompany(models.Model):
    _inherit = "res.company"

    fayvad_block_sending_after_failures = fields.Integer(
        string="Block Sending After Failed Payments",
        default=1,
        help="Failed payments in a row after which an organization's mailboxes may not send, before any "
        "suspension (0: never). Logins and receiving go on; a payment restores sending.",
    )


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    fayvad_block_sending_after_failures = fields.Integer(
        related="company_id.fayvad_block_sending_after_failures", readonly=False
    )


class FayvadMailDunning(models.AbstractModel):
    _inherit = "fayvad.mail.dunning"

    @api.model
    def _after_failed_payment(self, orgs):
        for org in orgs.filtered(lambda o: o.state == "active" and not o.suspension_exempt):
            threshold = org.company_id.fayvad_block_sending_after_failures
            failures = org.subscription_id.failed_payment_count
            if threshold and failures >= threshold:
                org._block_sending()
        return super()._after_failed_payment(orgs)

    @api.model
    def _paid_since(self, org):
        res = super()._paid_since(org)
        if not org.subscription_id.failed_payment_count:
            org._unblock_sending()
        return res
