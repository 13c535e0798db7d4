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
    enabled: bool = True  # False: it receives no mail yet (its ownership is not verified)
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


def _enabled(flag):
    return "enabled" if flag else "disabled"


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

    def domain(name, want, have):
        return (
            _compare_domain(want, have, remote_mailboxes.get(name, {}), skip)
            + _compare_aliases(want, remote_aliases.get(name, {}), skip)
            + _compare_domain_aliases(want, remote_domain_aliases.get(name, {}), skip)
        )

    return _compare_each(
        "domain", expected, remote_domains, skip, "terminated", domain, unknown=lambda have: all_domains
    )


def _compare_each(kind, wanted, remote, skip, gone, differ, unknown=lambda have: True):
    """What differs between ``wanted`` and ``remote`` ({key: object}):
    missing_<kind> and extra_<kind> (``gone`` in Odoo, or unknown to Odoo
    where ``unknown(have)``), and ``differ(key, want, have)`` of the rest."""
    differences = []
    for key, want in sorted(wanted.items()):
        if key in skip:
            continue
        have = remote.get(key)
        if want.present and have is None:
            differences.append(Difference(f"missing_{kind}", key, "on the server", "missing", want.ref))
        elif not want.present and have is not None:
            differences.append(Difference(f"extra_{kind}", key, gone, "present", want.ref))
        elif want.present:
            differences += differ(key, want, have)
    for key in sorted(set(remote) - set(wanted) - skip):
        if unknown(remote[key]):
            differences.append(Difference(f"extra_{kind}", key, "unknown", "present"))
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
    if have.enabled != want.enabled:
        differences.append(
            Difference("state_mismatch", want.name, _enabled(want.enabled), _enabled(have.enabled), want.ref)
        )

    def mailbox(email, box, remote):
        found = []
        if remote.quota_mb != box.quota_mb:
            found.append(
                Difference("quota_mismatch", email, _quota(box.quota_mb), _quota(remote.quota_mb), box.ref)
            )
        if remote.active != box.active:
            found.append(
                Difference("state_mismatch", email, _active(box.active), _active(remote.active), box.ref)
            )
        return found

    return differences + _compare_each(
        "mailbox",
        want.mailboxes,
        mailboxes,
        skip,
        "terminated",
        mailbox,
        unknown=lambda have: not have.is_domain_admin,
    )


def _recipients(recipients, enabled):
    return f"{', '.join(sorted(recipients))} ({'enabled' if enabled else 'disabled'})"


def _compare_aliases(want, aliases, skip):
    def alias(address, alias, remote):
        if (tuple(sorted(remote.recipients)), remote.enabled) == (
            tuple(sorted(alias.recipients)),
            alias.enabled,
        ):
            return []
        return [
            Difference(
                "alias_mismatch",
                address,
                _recipients(alias.recipients, alias.enabled),
                _recipients(remote.recipients, remote.enabled),
                alias.ref,
            )
        ]

    return _compare_each("alias", want.aliases, aliases, skip, "deleted", alias)


def _compare_domain_aliases(want, domain_aliases, skip):
    def domain_alias(name, alias, remote):
        if remote.enabled == alias.enabled:
            return []
        return [
            Difference("state_mismatch", name, _active(alias.enabled), _active(remote.enabled), alias.ref)
        ]

    return _compare_each("domain_alias", want.domain_aliases, domain_aliases, skip, "deleted", domain_alias)
