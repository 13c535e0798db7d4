"""The API document's sample requests (erp-integration-endpoints.md), as printed there:
the tests send them verbatim but for ids and domain names."""

SAMPLE_ORGANIZATION = {
    "organization_data": {
        "name": "Acme Corporation",
        "domain": "acme.com",
        "odoo_customer_id": 67890,
        "max_users": 100,
        "max_storage_gb": 100,
        "plan_id": 2,
        "contact_info": {
            "primary_email": "admin@acme.com",
            "phone": "+1234567890",
            "address": "123 Business St, City, State 12345",
        },
    }
}
SAMPLE_EMAIL_ACCOUNT = {
    "email_account_data": {
        "organization_id": 2,
        "address": "john.doe",
        "domain": 2,
        "quota": 1073741824,
        "user_info": {"first_name": "John", "last_name": "Doe", "password": "securepassword123"},
    }
}
SAMPLE_WEBHOOK = {
    "event_type": "payment_received",
    "organization_id": 2,
    "billing_data": {
        "amount": 99.99,
        "currency": "USD",
        "description": "Monthly subscription payment",
        "invoice_id": "INV-2025-001",
    },
    "timestamp": "2025-07-28T10:00:00Z",
}
