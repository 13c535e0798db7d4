"""The customer pays a mail hosting invoice online, through Odoo's own
payment flow (``account_payment``): the portal shows a *Pay* button that
leads to Odoo's invoice page and its *Pay Now*; the provider's confirmation
posts the payment, reconciles the invoice and lifts the non-payment
suspension as a payment webhook does. Once with a provider of Odoo's test
kit (HTTP), once in a real browser with Odoo's demo provider
(``payment_demo``, which ``./dev`` installs next to the addon's demo data)."""

import re

from odoo import Command
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.account_payment.tests.common import AccountPaymentCommon
from odoo.addons.fayvad_mail.tests.common import BillingCase


class SuspendedForNonPayment:
    def suspended_org_and_its_customer(self, login):
        """An organization suspended after two failed payments of its first
        invoice, and a portal user of its customer."""
        self.company.fayvad_dunning_max_failures = 2
        org = self.make_org("2026-03-01")
        invoice = self.posted_first_invoice(org)
        self.payments_fail(org, "2026-03-09", "2026-03-10")
        self.assertEqual((org.state, org.suspension_reason), ("suspended", "non_payment"))
        user = new_test_user(self.env, login=login, groups="base.group_portal")
        user.partner_id.parent_id = org.partner_id
        return org, invoice


@tagged("post_install", "-at_install")
class TestPayOnline(SuspendedForNonPayment, AccountPaymentCommon, BillingCase, HttpCase):
    def test_the_customer_pays_online_and_the_suspension_lifts(self):
        org, invoice = self.suspended_org_and_its_customer("paying_customer")

        # the customer's portal: a Pay button on the open invoice, leading to Odoo's Pay Now
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


@tagged("post_install", "-at_install")
class TestPayWithTheDemoProvider(SuspendedForNonPayment, BillingCase, HttpCase):
    def test_the_customer_pays_in_the_browser(self):
        demo = self.env.ref("payment.payment_provider_demo").sudo()  # payment_demo: installed by ./dev
        demo.copy(
            {
                "company_id": self.company.id,
                "state": "test",
                "is_published": True,
                "payment_method_ids": [Command.set(demo.payment_method_ids.ids)],
            }
        )
        org, invoice = self.suspended_org_and_its_customer("demo_payer")

        self.start_tour(f"/my/mail/{org.id}", "fayvad_mail_customer_pays_tour", login="demo_payer")

        payment = invoice.transaction_ids.filtered(lambda tx: tx.state == "done").payment_id
        self.assertTrue(payment, "the demo provider's transaction is posted as a payment")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual((org.state, org.suspension_reason, org.sending_blocked), ("active", False, False))
        self.authenticate("demo_payer", "demo_payer")
        page = self.url_open(f"/my/mail/{org.id}").text
        self.assertNotIn("o_fayvad_pay", page, "nothing left to pay")
