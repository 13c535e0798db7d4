"""Differences between what Odoo says a mail server holds and what it holds.

Pure Python: the caller describes Odoo's side as ``Expected*`` objects and
the server's side as the client's ``Remote*`` objects, and gets a list of
:class:`Difference`. Objects in transition (a job pending for them) are left
out of both sides by the caller, by name, through ``skip``.
"""

from dataclasses import dataclass, field

KINDS = [
    ("missing_domain", "Domain missing on the server"),
    ("extra_domain", "Domain only on the server"),
    ("missing_mailbox", "Mailbox missing on the server"),
    ("extra_mailbox", "Mailbox only on the server"),
    ("quota_mismatch", "Different quota"),
    ("state_mismatch", "Different state"),
    ("missing_alias", "Alias missing on the server"),
    ("extra_alias", "Alias only on the server"),
    ("alias_mismatch", "Different alias"),
    ("missing_domain_alias", "Domain alias missing on the server"),
    ("extra_domain_alias", "Domain alias only on the server"),
]


@dataclass
class ExpectedMailbox:
    email: str
    present: bool  # False: Odoo terminated it, it must be gone
    quota_mb: int = 0
    active: bool = True
    ref: object = None  # the caller's record, handed back in differences


@dataclass
class ExpectedAlias:
    address: str
    present: bool  # False: Odoo deleted it, it must be gone
    recipients: tuple = ()
    enabled: bool = True
    ref: object = None


@dataclass
class ExpectedDomainAlias:
    name: str
    present: bool
    enabled: bool = True
    ref: object = None


@dataclass
class ExpectedDomain:
    name: str
    present: bool  # False: Odoo terminated it, it must be gone
    quota_mb: int = 0
    default_mailbox_quota_mb: int = 0
    ref: object = None
    mailboxes: dict = field(default_factory=dict)  # email -> ExpectedMailbox
    aliases: dict = field(default_factory=dict)  # address -> ExpectedAlias
    domain_aliases: dict = field(default_factory=dict)  # name -> ExpectedDomainAlias


@dataclass
class Difference:
    kind: str
    name: str
    odoo_value: str
    server_value: str
    ref: object = None


def _quota(mb):
    return f"{mb} MB" if mb else "unlimited"


def _domain_quota(quota_mb, default_mb):
    return f"{_quota(quota_mb)}, {_quota(default_mb)} per mailbox"


def _active(flag):
    return "active" if flag else "disabled"


def compare(
    expected,
    remote_domains,
    remote_mailboxes,
    skip=(),
    all_domains=True,
    remote_aliases=None,
    remote_domain_aliases=None,
):
    """Differences between ``expected`` ({name: ExpectedDomain}) and the
    server's ``remote_domains`` ({name: RemoteDomain}), ``remote_mailboxes``
    ({domain name: {email: RemoteMailbox}}), ``remote_aliases`` ({domain
    name: {address: RemoteAlias}}) and ``remote_domain_aliases`` ({domain
    name: {name: RemoteDomainAlias}}), for the domains both sides have.
    ``skip``: names of domains, mailboxes and aliases to leave alone. With
    ``all_domains``, server domains Odoo does not know are reported too.
    Administrator logins of the server are not drift."""
    remote_aliases = remote_aliases or {}
    remote_domain_aliases = remote_domain_aliases or {}
    skip = set(skip)
    differences = []
    for name, want in sorted(expected.items()):
        if name in skip:
            continue
        have = remote_domains.get(name)
        if want.present and have is None:
            differences.append(Difference("missing_domain", name, "on the server", "missing", want.ref))
        elif not want.present and have is not None:
            differences.append(Difference("extra_domain", name, "terminated", "present", want.ref))
        elif want.present:
            differences += _compare_domain(want, have, remote_mailboxes.get(name, {}), skip)
            differences += _compare_aliases(want, remote_aliases.get(name, {}), skip)
            differences += _compare_domain_aliases(want, remote_domain_aliases.get(name, {}), skip)
    if all_domains:
        for name in sorted(set(remote_domains) - set(expected) - skip):
            differences.append(Difference("extra_domain", name, "unknown", "present"))
    return differences


def _compare_domain(want, have, mailboxes, skip):
    differences = []
    if (have.quota_mb, have.default_mailbox_quota_mb) != (want.quota_mb, want.default_mailbox_quota_mb):
        differences.append(
            Difference(
                "quota_mismatch",
                want.name,
                _domain_quota(want.quota_mb, want.default_mailbox_quota_mb),
                _domain_quota(have.quota_mb, have.default_mailbox_quota_mb),
                want.ref,
            )
        )
    if not have.enabled:
        differences.append(Difference("state_mismatch", want.name, "enabled", "disabled", want.ref))
    for email, box in sorted(want.mailboxes.items()):
        if email in skip:
            continue
        remote = mailboxes.get(email)
        if box.present and remote is None:
            differences.append(Difference("missing_mailbox", email, "on the server", "missing", box.ref))
        elif not box.present and remote is not None:
            differences.append(Difference("extra_mailbox", email, "terminated", "present", box.ref))
        elif box.present:
            if remote.quota_mb != box.quota_mb:
                differences.append(
                    Difference(
                        "quota_mismatch", email, _quota(box.quota_mb), _quota(remote.quota_mb), box.ref
                    )
                )
            if remote.active != box.active:
                differences.append(
                    Difference("state_mismatch", email, _active(box.active), _active(remote.active), box.ref)
                )
    for email in sorted(set(mailboxes) - set(want.mailboxes) - skip):
        if not mailboxes[email].is_domain_admin:
            differences.append(Difference("extra_mailbox", email, "unknown", "present"))
    return differences


def _recipients(recipients, enabled):
    return f"{', '.join(sorted(recipients))} ({'enabled' if enabled else 'disabled'})"


def _compare_aliases(want, aliases, skip):
    differences = []
    for address, alias in sorted(want.aliases.items()):
        if address in skip:
            continue
        remote = aliases.get(address)
        if alias.present and remote is None:
            differences.append(Difference("missing_alias", address, "on the server", "missing", alias.ref))
        elif not alias.present and remote is not None:
            differences.append(Difference("extra_alias", address, "deleted", "present", alias.ref))
        elif alias.present and (tuple(sorted(remote.recipients)), remote.enabled) != (
            tuple(sorted(alias.recipients)),
            alias.enabled,
        ):
            differences.append(
                Difference(
                    "alias_mismatch",
                    address,
                    _recipients(alias.recipients, alias.enabled),
                    _recipients(remote.recipients, remote.enabled),
                    alias.ref,
                )
            )
    for address in sorted(set(aliases) - set(want.aliases) - skip):
        differences.append(Difference("extra_alias", address, "unknown", "present"))
    return differences


def _compare_domain_aliases(want, domain_aliases, skip):
    differences = []
    for name, alias in sorted(want.domain_aliases.items()):
        if name in skip:
            continue
        remote = domain_aliases.get(name)
        if alias.present and remote is None:
            differences.append(
                Difference("missing_domain_alias", name, "on the server", "missing", alias.ref)
            )
        elif not alias.present and remote is not None:
            differences.append(Difference("extra_domain_alias", name, "deleted", "present", alias.ref))
        elif alias.present and remote.enabled != alias.enabled:
            differences.append(
                Difference("state_mismatch", name, _active(alias.enabled), _active(remote.enabled), alias.ref)
            )
    for name in sorted(set(domain_aliases) - set(want.domain_aliases) - skip):
        differences.append(Difference("extra_domain_alias", name, "unknown", "present"))
    return differences
