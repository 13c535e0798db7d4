from odoo import fields, models


class FayvadMailSendingLimits(models.AbstractModel):
    """Daily sending limits: each mailbox may send the plan's number of
    messages a day (Modoboa's ``message_limit``, enforced by its policy
    daemon). A dunning stage before suspension blocks sending (limit 0)
    while logins and receiving go on; a payment restores the plan's limit."""

    _name = "fayvad.mail.sending.limits"
    _description = "Daily Sending Limits"

    sending_blocked = fields.Boolean(
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


class FayvadMailOrganization(models.Model):
    _name = "fayvad.mail.organization"
    _inherit = ["fayvad.mail.organization", "fayvad.mail.sending.limits"]
