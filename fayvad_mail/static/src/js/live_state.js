/** @odoo-module **/

import { FormController } from "@web/views/form/form_controller";
import { patch } from "@web/core/utils/patch";
import { useService } from "@web/core/utils/hooks";
import { onWillUnmount } from "@odoo/owl";

const NOTIFICATION = "fayvad_mail/state_changed";

/**
 * An open form of a Mail Hosting record reloads when the job queue changes
 * its state (models/fayvad_mail_live_state.py pushes the change on the bus),
 * unless the user is editing it: no more "Provisioning" until a reload.
 */
patch(FormController.prototype, {
    setup() {
        super.setup(...arguments);
        if (!this.props.resModel?.startsWith("fayvad.mail.")) {
            return;
        }
        const busService = useService("bus_service");
        const onStateChanged = async ({ model, ids }) => {
            const root = this.model?.root;
            if (!root || model !== root.resModel || !ids.includes(root.resId)) {
                return; // another record, or a form still loading
            }
            if (!(await root.isDirty())) {
                await root.load();
            }
        };
        busService.subscribe(NOTIFICATION, onStateChanged);
        onWillUnmount(() => busService.unsubscribe(NOTIFICATION, onStateChanged));
    },
});
