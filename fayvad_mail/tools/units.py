"""Units of storage and quota arithmetic, one home for them (pure Python).

Mailbox quotas are counted in binary MB (1 MB = 1,048,576 bytes), as Modoboa counts
them; storage sizes and limits in decimal GB (10**9 bytes), as the API reports them."""

import math

MB = 1024 * 1024  # a mailbox quota's MB, as Modoboa counts them
GB = 10**9  # storage sizes in GB are decimal, as the API reports them
QUOTA_GB = 1024 * MB  # a quota of 1,024 MB reads "1 GB"


def format_quota(size_bytes):
    """A mailbox quota as people read it: "5 GB", "1.5 GB", "500 MB"."""
    if size_bytes >= QUOTA_GB:
        value = size_bytes / QUOTA_GB
        return f"{value:,.0f} GB" if value == int(value) else f"{value:,.2f}".rstrip("0").rstrip(".") + " GB"
    return f"{size_bytes / MB:,.0f} MB"


def format_free_space(size_bytes):
    """Free room as people read it: GB (decimal, as the plan's storage) from 1 GB on."""
    if size_bytes >= GB:
        return f"{size_bytes / GB:,.1f} GB"
    return f"{size_bytes // MB:,} MB"


def mb_ceil(size_bytes):
    """Bytes as whole MB for the mail server, rounded up (never below 1)."""
    return max(1, math.ceil(size_bytes / MB))


def domain_quota_mb(max_storage_gb, max_users):
    """The domain quota on the mail server for an organization: its storage
    limit in whole MB plus 1 MB per allowed user. Odoo enforces the limit on
    the sum of the quotas in bytes; each mailbox quota is rounded up to whole
    MB on the server, which adds less than 1 MB per mailbox, so the server
    never refuses a mailbox Odoo accepted. The domain administrator has no
    mailbox and takes nothing of it."""
    return math.ceil(max_storage_gb * GB / MB) + max_users


def default_mailbox_quota_mb(default_quota_mb, max_storage_gb, max_users):
    """The server refuses a default mailbox quota above the domain quota."""
    return min(default_quota_mb, domain_quota_mb(max_storage_gb, max_users))
