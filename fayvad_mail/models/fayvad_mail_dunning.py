from odoo import api, fields, models

from ..const import OPEN_PAYMENT_STATES


class FayvadMailDunning(models.AbstractModel):
    """Dunning: a failed payment first blocks sending (after the company's
    number of failures, one by default); failed payments and overdue
    invoices then soft-suspend an organization after the company's grace
    (logins blocked, mail still received); a payment lifts both, never a
    manual suspension. Customers marked exempt are never blocked nor
    suspended automatically."""

    _name = "fayvad.mail.dunning"
    _description = "Mail Hosting Dunning"

    @api.model
    def _after_failed_payment(self, orgs):
        """Soft-suspend for non-payment after the company's grace: a number
        of failed payments in a row, or days since the first failure."""
        today = fields.Date.context_today(self)
        for org in orgs.filtered(lambda o: o.state == "active" and not o.suspension_exempt):
            subscription = org.subscription_id
            if not subscription or subscription.state != "past_due":
                continue
            block_after = org.company_id.fayvad_block_sending_after_failures
            if block_after and subscription.failed_payment_count >= block_after:
                org._block_sending()  # the stage before suspension: no sending, logins and mail go on
            company = org.company_id
            too_many = company.fayvad_dunning_max_failures and (
                subscription.failed_payment_count >= company.fayvad_dunning_max_failures
            )
            too_late = (
                company.fayvad_dunning_grace_days
                and subscription.first_failure_date
                and ((today - subscription.first_failure_date).days >= company.fayvad_dunning_grace_days)
            )
            if too_many or too_late:
                org._suspend("non_payment")

    @api.model
    def _overdue_invoice(self, invoice, today):
        org = invoice.fayvad_organization_id
        sub = org.subscription_id
        if sub and sub.state == "active":
            sub.state = "past_due"
        grace = invoice.company_id.fayvad_dunning_grace_days
        late = grace and (today - invoice.invoice_date_due).days >= grace
        if late and org.state == "active" and not org.suspension_exempt:
            org._suspend("non_payment")

    @api.model
    def _payment_received(self, orgs):
        """A payment (a payment_received webhook, or an invoice paid in
        Odoo): the failures are cleared, sending is unblocked and a
        suspension for non-payment is lifted (never a manual one)."""
        for org in orgs:
            if org.subscription_id:
                org.subscription_id._on_payment_received()
            if org.state == "suspended" and org.suspension_reason == "non_payment":
                org._unsuspend()
            if org.sending_blocked:
                org._unblock_sending()

    @api.model
    def _paid_since(self, org):
        """Paid in Odoo since (e.g. registered by an accountant): lift the suspension."""
        if not org.subscription_id.failed_payment_count:
            org.subscription_id.filtered(lambda s: s.state == "past_due").state = "active"
            org._unsuspend()
            org._unblock_sending()

    @api.model
    def _cron_overdue(self):
        """Overdue invoices make subscriptions past due and, after the
        company's grace, suspend their organization; organizations
        suspended for non-payment that have nothing overdue any more are
        lifted. One savepoint per invoice and per organization: one that
        fails keeps the error on its organization, the others go on."""
        today = fields.Date.context_today(self)
        Org = self.env["fayvad.mail.organization"]
        overdue = self.env["account.move"].search(
            [
                ("fayvad_organization_id", "!=", False),
                ("fayvad_organization_id.state", "!=", "terminated"),
                ("move_type", "=", "out_invoice"),
                ("state", "=", "posted"),
                ("payment_state", "in", OPEN_PAYMENT_STATES),
                ("invoice_date_due", "<", today),
            ]
        )
        Org._cron_each(
            overdue,
            lambda invoice: self._overdue_invoice(invoice, today),
            "Dunning",
            owner=lambda invoice: invoice.fayvad_organization_id,
        )
        suspended = Org.search([("state", "=", "suspended"), ("suspension_reason", "=", "non_payment")])
        Org._cron_each(suspended - overdue.fayvad_organization_id, self._paid_since, "Dunning")
