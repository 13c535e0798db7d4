/** @odoo-module **/

import { registry } from "@web/core/registry";
import { rpc } from "@web/core/network/rpc";

// An accountant looks at an organization being provisioned; the job queue
// finishes it in the background (tests/test_tours.py, once this tour says it
// is watching): the open form turns Active by itself, without a reload.
const LIVE_STATE_READY = "fayvad live-state tour: watching";

registry.category("web_tour.tours").add("fayvad_mail_live_state_tour", {
    steps: () => [
        {
            content: "The organization is being provisioned",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Provisioning')",
        },
        {
            content: "Say that the form is watched (the test's job queue waits for it)",
            trigger: ".o_form_view .o_form_sheet",
            run: async () => {
                window.fayvadSamePage = true; // gone if anything reloads the page
                await rpc("/web/dataset/call_kw/res.partner/create", {
                    model: "res.partner",
                    method: "create",
                    args: [{ name: LIVE_STATE_READY }],
                    kwargs: {},
                });
            },
        },
        {
            content: "The job queue's change reaches the open form",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Active')",
            timeout: 60000,
        },
        {
            content: "... without a reload",
            trigger: ".o_form_view .o_form_sheet",
            run: () => {
                if (!window.fayvadSamePage) {
                    throw new Error("the page was reloaded: the form did not update by itself");
                }
            },
        },
    ],
});
