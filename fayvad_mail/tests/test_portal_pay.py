"""The customer pays a mail hosting invoice online, through Odoo's own
payment flow (``account_payment``), with a payment provider of Odoo's test
kit: the portal shows a *Pay* button that leads to Odoo's invoice page and
its *Pay Now*; the provider's confirmation posts the payment, reconciles
the invoice and lifts the non-payment suspension as a payment webhook does."""

import re

from freezegun import freeze_time

from odoo import Command
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.account_payment.tests.common import AccountPaymentCommon
from odoo.addons.fayvad_mail.tests.common import BillingCase


@tagged("post_install", "-at_install")
class TestPayOnline(AccountPaymentCommon, BillingCase, HttpCase):
    def test_the_customer_pays_online_and_the_suspension_lifts(self):
        self.company.fayvad_dunning_max_failures = 2
        org = self.make_org("2026-03-01")
        self.sync("2026-03-02")
        invoice = org.billing_event_ids.invoice_id
        invoice.invoice_date = "2026-03-02"
        invoice.action_post()
        with freeze_time("2026-03-10"):
            for stamp in ("2026-03-09T08:00:00Z", "2026-03-10T08:00:00Z"):
                self.webhook({"event_type": "payment_failed", "organization_id": org.id, "timestamp": stamp})
        self.assertEqual((org.state, org.suspension_reason), ("suspended", "non_payment"))

        # the customer's portal: a Pay button on the open invoice, leading to Odoo's Pay Now
        user = new_test_user(self.env, login="paying_customer", groups="base.group_portal")
        user.partner_id.parent_id = org.partner_id
        self.authenticate("paying_customer", "paying_customer")
        page = self.url_open(f"/my/mail/{org.id}").text
        button = re.search(r"<a[^>]*o_fayvad_pay[^>]*>", page)
        self.assertTrue(button, "a Pay button on the open invoice")
        href = re.search(r'href="([^"]+)"', button.group(0)).group(1).replace("&amp;", "&")
        self.assertIn(f"/my/invoices/{invoice.id}", href)
        invoice_page = self.url_open(href)
        self.assertEqual(invoice_page.status_code, 200)
        self.assertIn("Pay Now", invoice_page.text)

        # the provider confirms the payment: Odoo posts it and reconciles the invoice
        transaction = self._create_transaction(
            flow="redirect",
            reference=f"FAYVAD-{invoice.id}",
            amount=invoice.amount_residual,
            currency_id=invoice.currency_id.id,
            partner_id=invoice.partner_id.id,
            invoice_ids=[Command.set(invoice.ids)],
        )
        transaction._set_done()
        transaction._post_process()
        self.assertTrue(transaction.payment_id)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual((org.state, org.suspension_reason, org.sending_blocked), ("active", False, False))
        self.assertEqual(org.subscription_id.failed_payment_count, 0)
