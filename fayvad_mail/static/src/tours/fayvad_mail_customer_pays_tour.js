/** @odoo-module **/

import { registry } from "@web/core/registry";

// The customer of an organization suspended for non-payment pays its invoice
// online from the mail hosting page, with Odoo's demo payment provider
// (tests/test_portal_pay.py checks the invoice and the suspension afterwards).
registry.category("web_tour.tours").add("fayvad_mail_customer_pays_tour", {
    steps: () => [
        {
            content: "The organization is suspended",
            trigger: ".o_fayvad_mail_portal:contains('Suspended')",
        },
        {
            content: "Pay the open invoice",
            trigger: "a.o_fayvad_pay",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Odoo's payment form opens on the invoice: the demo provider",
            trigger: "#pay_with input[name='o_payment_radio'][data-payment-method-code='demo']",
            run: "click",
        },
        {
            content: "Card details (test data)",
            trigger: "#pay_with input[name='customer_input']",
            run: "edit 4242424242424242",
        },
        {
            content: "Pay",
            trigger: "#pay_with button[name='o_payment_submit_button']:enabled",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Back on the invoice (after the payment status page): paid",
            trigger: ".badge:contains('Paid')",
            timeout: 30000,
        },
    ],
});
