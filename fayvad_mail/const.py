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

# -- states --------------------------------------------------------------------------------------
PROVISIONING_STATES = [
    ("draft", "Draft"),
    ("provisioning", "Provisioning"),
    ("active", "Active"),
    ("suspended", "Suspended"),
    ("failed", "Failed"),
    ("terminated", "Terminated"),
]
# domain verification (models/fayvad_mail_domain_verification.py, README "Domain verification")
VERIFICATION_STATES = [
    ("pending", "Awaiting Verification"),
    ("verified", "Verified"),
    ("expired", "Not Verified in Time"),
]
VERIFICATION_DAYS = 30  # checks of a new domain go on this long, then an activity tells the accountants
DNS_CHECK_FIRST_MINUTES = 5  # a new domain is checked this often at first, then less and less often
DNS_CHECK_MAX_HOURS = 12  # ... but at least this often while it is not verified
DNS_HEALTH_CHECK_HOURS = 24  # a verified domain's records are checked again daily
DNS_RECORD_STATES = [
    ("waiting", "Waiting for the mail server"),
    ("to_publish", "Not checked yet"),
    ("published", "Published"),
    ("missing", "Missing"),
    ("different", "Different"),
    ("unknown", "No answer"),
]
IN_SERVICE_STATES = ("active", "suspended")  # on the mail server: what is billed, counted, read
LIVE_ACCOUNT_STATES = IN_SERVICE_STATES

# -- provisioning jobs ---------------------------------------------------------------------------
JOB_TYPES = [
    ("create_domain", "Create domain (DKIM on)"),
    ("create_domain_admin", "Create domain administrator"),
    ("create_mailbox", "Create mailbox"),
    ("set_quota", "Change mailbox quota"),
    ("set_password", "Hand over mailbox password"),
    ("suspend_account", "Suspend mailbox"),
    ("unsuspend_account", "Unsuspend mailbox"),
    ("delete_mailbox", "Delete mailbox"),
    ("suspend_organization", "Suspend organization"),
    ("unsuspend_organization", "Unsuspend organization"),
    ("terminate_organization", "Terminate organization"),
    ("update_domain_quota", "Update domain (quotas, enabled)"),
    ("create_alias", "Create alias"),
    ("update_alias", "Update alias"),
    ("delete_alias", "Delete alias"),
    ("create_domain_alias", "Create domain alias"),
    ("update_domain_alias", "Update domain alias"),
    ("delete_domain_alias", "Delete domain alias"),
    ("update_sending_limits", "Update daily sending limits"),
]

# -- monitoring (models/fayvad_mail_monitoring.py) -------------------------------------------------
SUCCESS_RATE_THRESHOLD_DEFAULT = 90  # % of the last hour's jobs done, below which the administrators are told
SUCCESS_RATE_MIN_JOBS = 5  # ... when at least this many jobs finished in that hour

# -- billing events: the ledger's types, and the webhook's (its document's) ------------------------
EVENT_TYPES = [
    ("user_added", "User Added"),
    ("user_removed", "User Removed"),
    ("storage_changed", "Storage Changed"),
    ("subscription_created", "Subscription Created"),
    ("subscription_updated", "Subscription Updated"),
    ("subscription_cancelled", "Subscription Cancelled"),
    ("payment_received", "Payment Received"),
    ("payment_failed", "Payment Failed"),
    ("refund", "Refund"),
    ("alias_added", "Alias Added"),
    ("alias_removed", "Alias Removed"),
    ("domain_alias_added", "Domain Alias Added"),
    ("domain_alias_removed", "Domain Alias Removed"),
]
# Events that become invoice lines; payments and refunds go to account.payment / credit notes.
CHARGEABLE_TYPES = (
    "user_added",
    "user_removed",
    "storage_changed",
    "subscription_created",
    "subscription_updated",
    "alias_added",
    "alias_removed",
    "domain_alias_added",
    "domain_alias_removed",
)
WEBHOOK_EVENT_TYPES = (
    "subscription_created",
    "subscription_updated",
    "subscription_cancelled",
    "payment_received",
    "payment_failed",
)

# -- the HTTP API ----------------------------------------------------------------------------------
API_KEY_SCOPE = "fayvad_mail.erp_api"  # its API keys grant no XML-RPC/JSON-RPC access, and vice versa
LEDGER_DAYS = 400  # applied webhook identities are kept this long; older events are refused
FUTURE_HOURS = 24  # an event stamped further ahead is refused (a sender's clock is never that wrong)

# the error codes of the API's answers (its OpenAPI document lists them)
ERROR_CODES = [
    "AUTHENTICATION_FAILED",
    "PERMISSION_DENIED",
    "ORGANIZATION_NOT_FOUND",
    "DOMAIN_NOT_FOUND",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "VALIDATION_ERROR",
    "ORGANIZATION_ALREADY_EXISTS",
    "ODOO_CUSTOMER_ID_EXISTS",
    "EMAIL_ACCOUNT_ALREADY_EXISTS",
    "ALIAS_ALREADY_EXISTS",
    "CONFLICT",
    "PROVISIONING_FAILED",
    "INVALID_WEBHOOK_SIGNATURE",
    "WEBHOOK_PROCESSING_FAILED",
    "PAYLOAD_TOO_LARGE",
    "INTERNAL_ERROR",
    "SERVICE_UNAVAILABLE",
]
