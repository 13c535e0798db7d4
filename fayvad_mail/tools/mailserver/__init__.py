"""The one client fayvad_mail uses to drive mail servers.

``make_client(server_type, url, token, timeout, deadline=None, storage=None)`` returns
a backend that implements :class:`MailServerClient`; Modoboa is the first one. Another
server type registers its own class with ``@register("<type>")``. ``storage``, a
:class:`DovecotStorage`, tells the bytes each mailbox holds when the backend cannot."""

from .base import (
    BudgetSpent,
    MailServerClient,
    MailServerError,
    NotFound,
    Refused,
    RemoteAlias,
    RemoteDomain,
    RemoteMailbox,
    Unavailable,
)

BACKENDS = {}


def register(server_type):
    def decorator(cls):
        BACKENDS[server_type] = cls
        return cls

    return decorator


def make_client(server_type, url, token, timeout, deadline=None, storage=None):
    if server_type not in BACKENDS:
        raise Refused(f"no client for mail servers of type {server_type!r}")
    return BACKENDS[server_type](url, token, timeout, deadline=deadline, storage=storage)


from . import modoboa  # noqa: E402  (registers the backend)
from .dovecot import DovecotStorage  # noqa: E402
