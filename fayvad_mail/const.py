"""Constants several parts of fayvad_mail share (like payment_stripe/const.py)."""

# -- who may do what (README, "Roles") ----------------------------------------------------------
# Mail Hosting / User reads; Accountant: billing, suspension and its lifting, termination, the
# drift check and its repair; Administrator: mail servers, secrets, API keys, provisioning
# actions, and everything an accountant does. Each action checks its role in its method.
GROUP_USER = "fayvad_mail.fayvad_mail_group_user"
GROUP_ACCOUNTANT = "fayvad_mail.fayvad_mail_group_accountant"
GROUP_ADMIN = "fayvad_mail.fayvad_mail_group_admin"
GROUP_API = "fayvad_mail.fayvad_mail_group_api"
ROLES = {"user": GROUP_USER, "accountant": GROUP_ACCOUNTANT, "admin": GROUP_ADMIN}
ROLE_LABELS = {
    "user": "Mail Hosting / User",
    "accountant": "Mail Hosting / Accountant",
    "admin": "Mail Hosting / Administrator",
}

# -- accounting ---------------------------------------------------------------------------------
OPEN_PAYMENT_STATES = ("not_paid", "partial")  # an invoice still to be paid

# -- dates ----------------------------------------------------------------------------------------
# what a billing date may be, at every entry point (API, back office, imports): Odoo's reports
# group by month and cannot show a date near year 9999
BILLING_DATE_MIN_YEAR = 2000
BILLING_DATE_FUTURE_DAYS = 366
