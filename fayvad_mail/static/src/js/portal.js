import publicWidget from "@web/legacy/js/public/public_widget";

/** /my/mail: copy buttons (DNS records, a new password) and confirmation before a deletion. */
publicWidget.registry.FayvadMailPortal = publicWidget.Widget.extend({
    selector: ".o_fayvad_mail_portal, .o_fayvad_mail_password",
    events: {
        "click .o_fayvad_copy": "_onCopy",
        "submit form.o_fayvad_confirm": "_onConfirm",
    },

    async _onCopy(ev) {
        const button = ev.currentTarget;
        await navigator.clipboard.writeText(button.dataset.copy);
        button.textContent = "Copied";
    },

    _onConfirm(ev) {
        if (!window.confirm(ev.currentTarget.dataset.confirm)) {
            ev.preventDefault();
        }
    },
});
