/** @odoo-module **/

import { registry } from "@web/core/registry";

// A customer adds a mailbox from the portal: /my, the Mail Hosting card,
// the form, the password shown once, the mailbox listed.
registry.category("web_tour.tours").add("fayvad_mail_portal_tour", {
    url: "/my",
    steps: () => [
        {
            content: "The portal home counts the mailboxes",
            trigger: "a[href='/my/mail']:contains('Mail Hosting')",
            run: "click",
        },
        {
            content: "The organization's page lists its mailbox",
            trigger: ".o_fayvad_mailbox[data-mailbox^='alice@']",
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
            content: "The mailbox is added and its password is shown once",
            trigger: ".o_fayvad_mail_password h4:contains('Mailbox tourbox@'):contains('added')",
        },
        {
            content: "A password is there to copy",
            trigger: "#fayvad_mail_new_password",
        },
        {
            content: "Back to the list",
            trigger: "a:contains('Back to mail hosting')",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "The new mailbox is listed, active, with its quota",
            trigger: ".o_fayvad_mailbox[data-mailbox^='tourbox@']:contains('Active') input[name=quota_mb]:value(50)",
        },
    ],
});
