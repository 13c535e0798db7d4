"""What a domain's DNS shows, compared with what fayvad_mail asks its
customer to publish (no ORM: the domain model calls it).

Ownership is proven by the TXT record ``fayvad-verification=<token>`` at the
domain, or by MX records that all point at the mail server's own host
names. Each record to publish is then *published*, *missing*, *different*,
or *unknown* when the DNS did not answer (a timeout, SERVFAIL): a DNS that
does not answer is "not yet", never "verified"."""

import dataclasses

import dns.exception
import dns.inet
import dns.nameserver
import dns.resolver

from .dns import VERIFICATION_PREFIX, clean_key

PUBLISHED, MISSING, DIFFERENT, UNKNOWN = "published", "missing", "different", "unknown"


class DnsSettingError(ValueError):
    """The name servers setting cannot be read."""


def parse_nameservers(setting):
    """[(host, port)] of a setting such as ``"127.0.0.1:5353 [::1]:53 10.0.0.1"``
    (spaces or commas between); [] for an empty setting (the system's)."""
    servers = []
    for item in (setting or "").replace(",", " ").split():
        host, port = item, 53
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            if rest:
                port = rest.removeprefix(":")
        elif item.count(":") == 1:  # IPv4:port (a bare IPv6 address has several)
            host, port = item.split(":")
        try:
            port = int(port)
            dns.inet.af_for_address(host)
        except ValueError:
            raise DnsSettingError(f"{item!r} is not an IP address with an optional :port") from None
        if not 0 < port < 65536:
            raise DnsSettingError(f"{item!r}: the port must be between 1 and 65535")
        servers.append((host, port))
    return servers


def make_resolver(nameservers=(), timeout=4.0):
    """A resolver asking ``nameservers`` ([(host, port)]), the system's when
    empty; each lookup gives up after ``timeout`` seconds."""
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    resolver.cache = None
    return resolver


@dataclasses.dataclass(frozen=True)
class Lookup:
    """An answer: ``values`` (strings) when ``answered``; else why not."""

    answered: bool
    values: tuple = ()
    problem: str = ""


def lookup(resolver, name, rdtype):
    """The ``rdtype`` records of ``name``: TXT as their joined strings, MX
    as ``(priority, host)`` with the host lower case and without its dot.
    No such name or no such record is an answer with no values."""
    try:
        answer = resolver.resolve(name, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        return Lookup(True)
    except dns.resolver.NoNameservers:
        return Lookup(False, problem=f"{name} {rdtype}: the name servers failed to answer (SERVFAIL)")
    except dns.exception.Timeout:
        return Lookup(False, problem=f"{name} {rdtype}: no answer in time")
    except dns.exception.DNSException as exc:
        return Lookup(False, problem=f"{name} {rdtype}: {exc.__class__.__name__}")
    if answer.rrset is None:
        return Lookup(True)
    if rdtype == "MX":
        values = tuple(
            sorted((r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in answer.rrset)
        )
    else:
        values = tuple(b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset)
    return Lookup(True, values)


@dataclasses.dataclass(frozen=True)
class RecordStatus:
    status: str  # published, missing, different, unknown
    found: str = ""  # what the DNS shows, when it differs


@dataclasses.dataclass(frozen=True)
class DomainCheck:
    """What a check found: ``owned`` (ownership proven), ``how`` (txt, mx),
    ``records`` ({purpose: RecordStatus}), ``problems`` (lookups that got
    no answer: the check is "not yet" for them)."""

    owned: bool
    how: str
    records: dict
    problems: tuple


def _tag(value, tag):
    for part in value.split(";"):
        key, _, val = part.strip().partition("=")
        if key.strip().lower() == tag:
            return "".join(val.split())
    return None


def _spf_status(txt, mail_hosts, domain):
    spf = [v for v in txt if v.lower().startswith("v=spf1")]
    if not spf:
        return RecordStatus(MISSING)
    terms = {t.lstrip("+").lower() for t in " ".join(spf).split()}
    allowed = {"mx", f"mx:{domain}"} | {f"a:{host}" for host in mail_hosts}
    if len(spf) == 1 and terms & allowed:
        return RecordStatus(PUBLISHED)
    return RecordStatus(DIFFERENT, " | ".join(spf))


def _mx_status(mx, mail_hosts):
    if not mx:
        return RecordStatus(MISSING)
    hosts = {host for _prio, host in mx}
    if hosts <= mail_hosts:
        return RecordStatus(PUBLISHED)
    return RecordStatus(DIFFERENT, ", ".join(f"{prio} {host}" for prio, host in mx))


def _dkim_status(txt, public_key):
    keys = [_tag(v, "p") for v in txt if _tag(v, "p") is not None]
    if not keys:
        return RecordStatus(MISSING)
    if public_key and clean_key(public_key) in keys:
        return RecordStatus(PUBLISHED)
    return RecordStatus(
        DIFFERENT, " | ".join(f"p={key[:24]}…" if len(key) > 24 else f"p={key}" for key in keys)
    )


def _dmarc_status(txt):
    dmarc = [v for v in txt if v.replace(" ", "").lower().startswith("v=dmarc1")]
    if not dmarc:
        return RecordStatus(MISSING)
    if len(dmarc) == 1 and (_tag(dmarc[0], "p") or "").lower() in ("quarantine", "reject"):
        return RecordStatus(PUBLISHED)
    return RecordStatus(DIFFERENT, " | ".join(dmarc))


def check_domain(resolver, domain, token, mail_hosts, dkim_selector, dkim_public_key):
    """Ask the DNS about ``domain``: its ownership (``token``, the mail
    server's ``mail_hosts``) and the state of each record to publish."""
    mail_hosts = {host.lower().rstrip(".") for host in mail_hosts if host}
    txt = lookup(resolver, domain, "TXT")
    mx = lookup(resolver, domain, "MX")
    dkim = lookup(resolver, f"{dkim_selector}._domainkey.{domain}", "TXT")
    dmarc = lookup(resolver, f"_dmarc.{domain}", "TXT")
    token_found = txt.answered and f"{VERIFICATION_PREFIX}{token}" in {v.strip() for v in txt.values}
    mx_ours = mx.answered and bool(mx.values) and {host for _p, host in mx.values} <= mail_hosts
    unknown = RecordStatus(UNKNOWN)
    records = {
        "verification": (RecordStatus(PUBLISHED if token_found else MISSING) if txt.answered else unknown),
        "mx": _mx_status(mx.values, mail_hosts) if mx.answered else unknown,
        "spf": _spf_status(txt.values, mail_hosts, domain) if txt.answered else unknown,
        "dkim": _dkim_status(dkim.values, dkim_public_key) if dkim.answered else unknown,
        "dmarc": _dmarc_status(dmarc.values) if dmarc.answered else unknown,
    }
    problems = tuple(r.problem for r in (txt, mx, dkim, dmarc) if not r.answered)
    how = "txt" if token_found else "mx" if mx_ours else ""
    return DomainCheck(bool(how), how, records, problems)
