/** @odoo-module **/

import { registry } from "@web/core/registry";

// A customer's day in the portal: a mailbox added (its password shown once,
// a reload shows it no more), a quota of 3 GB, an alias, the mail client
// settings, and a bigger plan with its charge shown before confirming.
registry.category("web_tour.tours").add("fayvad_mail_customer_day_tour", {
    url: "/my",
    steps: () => [
        {
            content: "The portal home counts the mailboxes",
            trigger: "a[href='/my/mail']:contains('Mail Hosting')",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "The organization's page lists its mailbox",
            trigger: ".o_fayvad_mailbox[data-mailbox^='alice@']",
        },
        {
            content: "The mail client settings are on the page",
            trigger: "#fayvad_mail_settings:contains('mail.day.example'):contains('993'):contains('587')",
        },
        {
            content: "Type the new address",
            trigger: "#fayvad_mail_add_mailbox input[name=local_part]",
            run: "edit tourbox",
        },
        {
            content: "Its first name",
            trigger: "#fayvad_mail_add_mailbox input[name=first_name]",
            run: "edit Tour",
        },
        {
            content: "Its quota, 50 MB",
            trigger: "#fayvad_mail_add_mailbox input[name=quota_mb]",
            run: "edit 50",
        },
        {
            content: "Add it",
            trigger: "#fayvad_mail_add_mailbox button[type=submit]",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "The mailbox is added and its password shown once, with the settings",
            trigger: ".o_fayvad_mail_password:contains('tourbox@'):contains('mail.day.example') #fayvad_mail_new_password",
        },
        {
            content: "The customer reloads the page",
            trigger: "#fayvad_mail_new_password",
            run() {
                window.location.reload();
            },
            expectUnloadPage: true,
        },
        {
            content: "Nothing is posted again: the password is gone, and it says so",
            trigger: ".o_fayvad_password_gone:contains('This password was shown already')",
        },
        {
            content: "Back to mail hosting",
            trigger: ".o_fayvad_password_gone a[href='/my/mail']",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Make the new mailbox's quota 3 GB",
            trigger: ".o_fayvad_mailbox[data-mailbox^='tourbox@'] input[name=quota_mb]",
            run: "edit 3072",
        },
        {
            content: "Set it",
            trigger: ".o_fayvad_mailbox[data-mailbox^='tourbox@'] form[action$='/quota'] button[type=submit]",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "The quota reads 3 GB",
            trigger: ".alert-success:contains('The quota is changed')",
        },
        {
            content: "... on the mailbox",
            trigger: ".o_fayvad_mailbox[data-mailbox^='tourbox@']:contains('3 GB')",
        },
        {
            content: "An alias: its address",
            trigger: "#fayvad_mail_add_alias input[name=local_part]",
            run: "edit sales",
        },
        {
            content: "... delivering to alice",
            trigger: "#fayvad_mail_add_alias textarea[name=recipients]",
            run() {
                const alice = document.querySelector(".o_fayvad_mailbox[data-mailbox^='alice@']");
                this.anchor.value = alice.dataset.mailbox;
            },
        },
        {
            content: "Add the alias",
            trigger: "#fayvad_mail_add_alias button[type=submit]",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "The alias is listed",
            trigger: ".o_fayvad_alias[data-alias^='sales@']",
        },
        {
            content: "A bigger plan",
            trigger: "#fayvad_mail_upgrade select[name=plan_id]",
            run: "selectByLabel Day Bigger Plan",
        },
        {
            content: "See what it costs",
            trigger: "#fayvad_mail_upgrade button[type=submit]",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "The charge is shown before confirming",
            trigger: "#fayvad_mail_plan_charge:contains('Charged now')",
        },
        {
            content: "Confirm",
            trigger: ".o_fayvad_mail_plan button[type=submit]",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "The plan is changed",
            trigger: "#fayvad_mail_plan:contains('Day Bigger Plan')",
        },
    ],
});
