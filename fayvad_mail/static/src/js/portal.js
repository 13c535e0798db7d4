import publicWidget from "@web/legacy/js/public/public_widget";

/**
 * /my/mail: copy buttons (DNS records, a new password), a confirmation before
 * what cannot be undone (a new password, a deactivation, a deletion), and the
 * first error of a refused change brought into view next to its form.
 */
publicWidget.registry.FayvadMailPortal = publicWidget.Widget.extend({
    selector: ".o_fayvad_mail_portal, .o_fayvad_mail_password",
    events: {
        "click .o_fayvad_copy": "_onCopy",
        "submit form.o_fayvad_confirm": "_onConfirm",
    },

    start() {
        const error = this.el.querySelector(
            ".o_fayvad_row_error, .o_fayvad_form_error, .is-invalid, .invalid-feedback"
        );
        if (error) {
            error.scrollIntoView({ block: "center" });
            const field = error.closest("form, .card, tr")?.querySelector("input:not([type=hidden])");
            field?.focus({ preventScroll: true });
        }
        return this._super(...arguments);
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
