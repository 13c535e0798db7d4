/** @odoo-module **/

import { registry } from "@web/core/registry";

// The back office's day, in three parts (tests/test_tours.py runs the mail
// server's jobs and the billing sync between them).

const save = {
    content: "Save",
    trigger: ".o_form_button_save:enabled",
    run: "click",
};
const saved = {
    content: "Saved",
    trigger: ".o_form_view .o_form_saved",
};

function many2one(field, text) {
    return [
        {
            content: `Type ${text} in ${field}`,
            trigger: `.o_field_widget[name=${field}] input`,
            run: `edit ${text}`,
        },
        {
            content: `Pick ${text}`,
            trigger: `.o_field_widget[name=${field}] .o-autocomplete--dropdown-item:contains('${text}')`,
            run: "click",
        },
    ];
}

// 1. An organization with a plan and a domain, created and provisioned from its form.
registry.category("web_tour.tours").add("fayvad_mail_office_create_organization", {
    url: "/odoo/action-fayvad_mail.fayvad_mail_organization_action",
    steps: () => [
        {
            content: "New organization",
            trigger: ".o_control_panel_main_buttons .o-kanban-button-new, .o_control_panel_main_buttons .o_list_button_add",
            run: "click",
        },
        {
            content: "Its name",
            trigger: ".o_field_widget[name=name] input",
            run: "edit Office Day Org",
        },
        ...many2one("partner_id", "Office Day Customer"),
        ...many2one("plan_id", "Office Day Plan"),
        {
            content: "The plan's limits are filled in",
            trigger: ".o_field_widget[name=max_users] input:value(7)",
        },
        {
            content: "Its domains",
            trigger: ".o_notebook .nav-link:contains('Domains')",
            run: "click",
        },
        {
            content: "Add a domain",
            trigger: ".o_field_widget[name=domain_ids] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            content: "The domain's name",
            trigger: ".o_field_widget[name=domain_ids] .o_data_row .o_field_widget[name=name] input",
            run: "edit office-day.example",
        },
        save,
        saved,
        {
            content: "Subscribed to its plan at once",
            trigger: ".o_field_widget[name=subscription_id]:contains('Office Day Plan')",
        },
        {
            content: "Provision it",
            trigger: ".o_form_view button[name=action_provision]",
            run: "click",
        },
        {
            content: "It is being provisioned",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Provisioning')",
        },
    ],
});

// 2. Its first invoice line; a mailbox and an alias added in the back office; a quota of 3 GB;
// billing analysis.
registry.category("web_tour.tours").add("fayvad_mail_office_mailboxes_and_billing", {
    steps: () => [
        {
            content: "The organization is active, in service since today",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Active')",
        },
        {
            content: "Open its invoices",
            trigger: "button[name=action_view_invoices]",
            run: "click",
        },
        {
            content: "The invoice shows its total and amount due",
            trigger: ".o_list_view th:contains('Amount Due')",
        },
        {
            content: "Open the invoice",
            trigger: ".o_list_view .o_data_row:first .o_data_cell",
            run: "click",
        },
        {
            content: "Its first line is the plan's fee",
            trigger: ".o_field_widget[name=invoice_line_ids] .o_data_row:contains('Mail Hosting'):contains('40.00')",
        },
        {
            content: "Back to the organization",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains('Office Day Org')",
            run: "click",
        },
        {
            content: "Open its email accounts",
            trigger: "button[name=action_view_accounts]",
            run: "click",
        },
        {
            content: "New mailbox",
            trigger: ".o_list_button_add",
            run: "click",
        },
        {
            content: "Its address",
            trigger: ".o_field_widget[name=local_part] input",
            run: "edit anna",
        },
        ...many2one("domain_id", "office-day.example"),
        {
            content: "It starts with the organization's default quota",
            trigger: ".o_field_widget[name=quota_mb] input:value(024)",
        },
        save,
        saved,
        {
            content: "Make its quota 3 GB",
            trigger: ".o_field_widget[name=quota_mb] input",
            run: "edit 3072",
        },
        save,
        saved,
        {
            content: "The chatter says so, in GB",
            trigger: ".o-mail-Chatter .o-mail-Message:contains('3 GB')",
        },
        {
            content: "Provision it",
            trigger: ".o_form_view button[name=action_provision]",
            run: "click",
        },
        {
            content: "It is being provisioned",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Provisioning')",
        },
        {
            content: "Aliases and forwards",
            trigger: ".o_menu_sections [data-menu-xmlid='fayvad_mail.fayvad_mail_hosting_menu'], .o_main_navbar button:contains('Hosting')",
            run: "click",
        },
        {
            content: "Open Aliases and Forwards",
            trigger: ".o-dropdown--menu a:contains('Aliases and Forwards'), .dropdown-item:contains('Aliases and Forwards')",
            run: "click",
        },
        {
            content: "New alias",
            trigger: ".o_list_button_add",
            run: "click",
        },
        {
            content: "Its address",
            trigger: ".o_field_widget[name=local_part] input",
            run: "edit sales",
        },
        ...many2one("domain_id", "office-day.example"),
        {
            content: "Where it delivers",
            trigger: ".o_field_widget[name=recipients] textarea",
            run: "edit anna@office-day.example",
        },
        save,
        saved,
        {
            content: "Provision it",
            trigger: ".o_form_view button[name=action_provision]",
            run: "click",
        },
        {
            content: "It is being provisioned",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Provisioning')",
        },
        {
            content: "Billing",
            trigger: ".o_menu_sections [data-menu-xmlid='fayvad_mail.fayvad_mail_billing_menu'], .o_main_navbar button:contains('Billing')",
            run: "click",
        },
        {
            content: "Open Billing Analysis",
            trigger: ".o-dropdown--menu a:contains('Billing Analysis'), .dropdown-item:contains('Billing Analysis')",
            run: "click",
        },
        {
            content: "Billing is drawn, charges apart from payments",
            trigger: ".o_graph_view .o_graph_renderer canvas",
        },
    ],
});

// 3. An overdue invoice paid in Odoo lifts the suspension for non-payment.
registry.category("web_tour.tours").add("fayvad_mail_office_payment_lifts_suspension", {
    steps: () => [
        {
            content: "The organization is suspended for non-payment",
            trigger: ".o_form_view .ribbon:contains('Suspended'), .o_form_view .o_widget_web_ribbon:contains('Suspended')",
        },
        {
            content: "It says what lifts it",
            trigger: ".o_form_view div:contains('Lifts by itself when the overdue invoices are paid')",
        },
        {
            content: "Open its invoices",
            trigger: "button[name=action_view_invoices]",
            run: "click",
        },
        {
            content: "Open the overdue invoice",
            trigger: ".o_list_view .o_data_row:contains('Not Paid') .o_data_cell",
            run: "click",
        },
        {
            content: "Register its payment",
            trigger: ".o_form_view button[name=action_register_payment]",
            run: "click",
        },
        {
            content: "Create the payment",
            trigger: ".modal button[name=action_create_payments]",
            run: "click",
        },
        {
            content: "It is paid",
            trigger: ".o_form_view .ribbon:contains('Paid'), .o_form_view .ribbon:contains('In Payment')",
        },
        {
            content: "Back to the organization",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains('Office Day Org')",
            run: "click",
        },
        {
            content: "Its suspension for non-payment is lifted",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Active')",
        },
    ],
});
