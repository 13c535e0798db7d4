"""The DNS comparison of tools/dnscheck.py (no ORM, no network: a resolver
that answers from a table). Against the real DNS server: test_domain_verification.py."""

import dns.exception
import dns.name
import dns.resolver
import pytest

from odoo.addons.fayvad_mail.tools.dnscheck import (
    DnsSettingError,
    check_domain,
    lookup,
    parse_nameservers,
)


class TableResolver:
    """Answers (name, type) from ``table``: a list of values, or an exception to raise."""

    def __init__(self, table):
        self.table = table

    def resolve(self, name, rdtype, **kwargs):
        answer = self.table.get((name, rdtype), dns.resolver.NXDOMAIN())
        if isinstance(answer, Exception):
            raise answer
        return _Answer(rdtype, answer)


class _Answer:
    def __init__(self, rdtype, values):
        self.rrset = [_Record(rdtype, value) for value in values] or None


class _Record:
    def __init__(self, rdtype, value):
        if rdtype == "MX":
            self.preference, host = value
            self.exchange = dns.name.from_text(host)
        else:
            self.strings = [value.encode()[i : i + 255] for i in range(0, len(value.encode()), 255)]


KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkey"


def full_table(overrides=None):
    table = {
        ("ex.example", "TXT"): ["fayvad-verification=tok", "v=spf1 mx ~all"],
        ("ex.example", "MX"): [(10, "MAIL.host.example.")],
        ("modoboa._domainkey.ex.example", "TXT"): [f"v=DKIM1; k=rsa; p={KEY}"],
        ("_dmarc.ex.example", "TXT"): ["v=DMARC1; p=reject"],
    }
    table.update(overrides or {})
    return table


def check(table):
    return check_domain(TableResolver(table), "ex.example", "tok", {"mail.host.example"}, "modoboa", KEY)


def test_everything_published_as_asked():
    found = check(full_table())
    assert (found.owned, found.how, found.problems) == (True, "txt", ())
    assert {p: r.status for p, r in found.records.items()} == dict.fromkeys(
        ("verification", "mx", "spf", "dkim", "dmarc"), "published"
    )


def test_mx_alone_proves_ownership_only_when_every_host_is_ours():
    ours = check(full_table({("ex.example", "TXT"): []}))
    assert (ours.owned, ours.how, ours.records["verification"].status) == (True, "mx", "missing")
    mixed = check(
        full_table(
            {("ex.example", "TXT"): [], ("ex.example", "MX"): [(10, "mail.host.example."), (20, "x.y.")]}
        )
    )
    assert mixed.owned is False
    assert (mixed.records["mx"].status, mixed.records["mx"].found) == (
        "different",
        "10 mail.host.example, 20 x.y",
    )


def test_a_long_dkim_key_split_in_strings_is_read_whole():
    long_key = "A" * 400
    found = check_domain(
        TableResolver(full_table({("modoboa._domainkey.ex.example", "TXT"): [f"v=DKIM1; p={long_key}"]})),
        "ex.example",
        "tok",
        {"mail.host.example"},
        "modoboa",
        f"-----BEGIN PUBLIC KEY-----\n{long_key[:64]}\n{long_key[64:]}\n-----END PUBLIC KEY-----",
    )
    assert found.records["dkim"].status == "published"


@pytest.mark.parametrize(
    ("txt", "status"),
    [
        (["v=spf1 include:_spf.other.example ~all"], "different"),
        (["v=spf1 a:mail.host.example -all"], "published"),
        (["v=spf1 mx ~all", "v=spf1 a ~all"], "different"),  # two SPF records are an error
        ([], "missing"),
    ],
)
def test_spf(txt, status):
    assert check(full_table({("ex.example", "TXT"): txt})).records["spf"].status == status


@pytest.mark.parametrize(("policy", "status"), [("p=none", "different"), ("p=quarantine", "published")])
def test_dmarc_policy(policy, status):
    table = full_table({("_dmarc.ex.example", "TXT"): [f"v=DMARC1; {policy}"]})
    assert check(table).records["dmarc"].status == status


@pytest.mark.parametrize(
    "failure", [dns.exception.Timeout(), dns.resolver.NoNameservers(), dns.resolver.NoAnswer()]
)
def test_a_dns_that_fails_is_not_yet_never_verified(failure):
    table = full_table({("ex.example", "TXT"): failure, ("ex.example", "MX"): failure})
    found = check(table)
    assert found.owned is False
    assert found.records["verification"].status == "unknown"
    assert found.problems


def test_no_such_name_is_an_answer():
    assert lookup(TableResolver({}), "nothing.example", "TXT").answered


@pytest.mark.parametrize(
    ("setting", "servers"),
    [
        ("", []),
        ("127.0.0.1", [("127.0.0.1", 53)]),
        ("127.0.0.1:5353, [::1]:54 ::1", [("127.0.0.1", 5353), ("::1", 54), ("::1", 53)]),
    ],
)
def test_name_servers_setting(setting, servers):
    assert parse_nameservers(setting) == servers


@pytest.mark.parametrize("setting", ["dns.example", "127.0.0.1:0", "127.0.0.1:x", "[::1]:70000"])
def test_a_wrong_name_servers_setting_says_which(setting):
    with pytest.raises(DnsSettingError, match=r"port|IP address"):
        parse_nameservers(setting)
