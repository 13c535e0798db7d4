/** @odoo-module **/

import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_service/tour_utils";

// An accountant's day: from the Mail Hosting app to an organization, its
// email accounts, its billing events, and the storage usage graph.
registry.category("web_tour.tours").add("fayvad_mail_accountant_tour", {
    url: "/odoo",
    steps: () => [
        stepUtils.showAppsMenuItem(),
        {
            content: "Open the Mail Hosting app",
            trigger: ".o_app[data-menu-xmlid='fayvad_mail.fayvad_mail_menu_root']",
            run: "click",
        },
        {
            content: "Organizations are shown by state; open Tour Org",
            trigger: ".o_kanban_record:contains('Tour Org')",
            run: "click",
        },
        {
            content: "The form counts its two email accounts",
            trigger: ".o_form_view button[name=action_view_accounts] .o_stat_value:contains('2')",
        },
        {
            content: "Open its email accounts",
            trigger: "button[name=action_view_accounts]",
            run: "click",
        },
        {
            content: "Its mailboxes are listed",
            trigger: ".o_list_view .o_data_row:contains('alice@tour.example')",
        },
        {
            content: "Back to the organization",
            trigger: ".o_breadcrumb .breadcrumb-item:contains('Tour Org') a, .o_breadcrumb a:contains('Tour Org')",
            run: "click",
        },
        {
            content: "Open its billing events",
            trigger: "button[name=action_view_billing_events]",
            run: "click",
        },
        {
            content: "The extra user is billed",
            trigger: ".o_list_view .o_data_row:contains('Additional user added')",
        },
        {
            content: "Open the Hosting menu",
            trigger: ".o_main_navbar button:contains('Hosting'), .o_menu_sections [data-menu-xmlid='fayvad_mail.fayvad_mail_hosting_menu']",
            run: "click",
        },
        {
            content: "Open Storage Usage",
            trigger: ".o-dropdown--menu a:contains('Storage Usage'), .dropdown-item:contains('Storage Usage')",
            run: "click",
        },
        {
            content: "Storage over time is drawn as a graph",
            trigger: ".o_graph_view .o_graph_renderer canvas",
        },
    ],
});
