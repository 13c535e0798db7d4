# Odoo's test runner (odoo-bin --test-enable, OCA CI, runboat) collects the test cases of the
# modules imported here; test_validation.py and test_dnscheck.py hold plain pytest functions only, which
# pytest runs (./dev test) and Odoo would not.
# isort: skip_file
from . import test_aliases
from . import test_aliases_e2e
from . import test_api_alias
from . import test_api_auth
from . import test_api_document_samples
from . import test_api_hostile
from . import test_api_openapi
from . import test_api_provisioning
from . import test_api_usage
from . import test_api_webhook
from . import test_billing
from . import test_billing_aliases
from . import test_billing_concurrency
from . import test_billing_lifecycle
from . import test_crons
from . import test_domain_verification
from . import test_import
from . import test_install
from . import test_job_concurrency
from . import test_jobs
from . import test_mail_delivery
from . import test_mailserver_client
from . import test_models
from . import test_monitoring
from . import test_password_policy
from . import test_performance
from . import test_portal
from . import test_portal_day
from . import test_portal_pay
from . import test_provisioning_e2e
from . import test_provisioning_faults
from . import test_provisioning_transactions
from . import test_quota_alerts
from . import test_security
from . import test_sending_limits
from . import test_tally
from . import test_tours
from . import test_ui
from . import test_webhook_concurrency
