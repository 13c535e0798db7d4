"""Normalisation and validation of domain names and mailbox local parts."""

import re
import unicodedata

import idna

# every pattern is matched whole (fullmatch): "$" would accept a trailing newline
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
MAX_DOMAIN_INPUT = 253  # longer input is refused before idna runs (its cost grows with the length)
# The domain administrator is a login without a mailbox, named
# <DOMAIN_ADMIN_LOCAL_PART>@<domain>; no customer mailbox may take that address.
DOMAIN_ADMIN_LOCAL_PART = "domainadmin"
RESERVED_LOCAL_PARTS = frozenset({DOMAIN_ADMIN_LOCAL_PART})


def control_character_problem(text):
    """Why ``text`` cannot be a name shown on one line (None when it can):
    CR, LF, TAB and every other control character, and the Unicode line and
    paragraph separators, would split or hide what a person reads."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return f"Must not contain control characters (found U+{ord(char):04X})."
    return None


class InvalidName(ValueError):
    """A domain name or local part that cannot be used; the message says why."""


def normalize_domain(value):
    """Return the canonical form of a domain name: lower case, no trailing
    dot, IDN labels in punycode. Raise InvalidName when it is not a
    registrable hostname (at least two labels, a real top-level domain)."""
    if not isinstance(value, str):
        raise InvalidName("must be a string")
    name = value.strip(" ").lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise InvalidName("must not be empty")
    if len(name) > MAX_DOMAIN_INPUT:
        raise InvalidName(f"is longer than {MAX_DOMAIN_INPUT} characters")
    if not name.isascii():
        if not name.isprintable():
            raise InvalidName("contains control or invisible characters")
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise InvalidName(f"is not a valid internationalised domain name ({exc})") from None
    if len(name) > 253:
        raise InvalidName("is longer than 253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise InvalidName("needs at least a name and a top-level domain (like example.com)")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise InvalidName(
                f"has an invalid label {label[:63]!r}: use letters, digits and inner hyphens, 1 to 63 characters"
            )
        if label.startswith("xn--"):
            _check_a_label(label)
    if not _TLD.fullmatch(labels[-1]):
        raise InvalidName(f"has an invalid top-level domain {labels[-1]!r}")
    return name


def _check_a_label(label):
    """A punycode label must decode to a valid internationalised label."""
    try:
        idna.decode(label)
    except (idna.IDNAError, UnicodeError):
        raise InvalidName(f"has an invalid internationalised label {label!r}") from None


def normalize_local_part(value):
    """Return a mailbox local part in lower case; raise InvalidName unless it
    is a dot-atom of at most 64 characters."""
    if not isinstance(value, str):
        raise InvalidName("must be a string")
    local = value.strip(" ").lower()
    if not local:
        raise InvalidName("must not be empty")
    if len(local) > 64:
        raise InvalidName("is longer than 64 characters")
    if not _DOT_ATOM.fullmatch(local):
        raise InvalidName(
            "is not a valid local part: letters, digits and !#$%&'*+/=?^_`{|}~- separated by single dots"
        )
    return local


def check_not_reserved(local):
    """Raise InvalidName when ``local`` (normalised) is reserved for the mail server's own logins."""
    if local in RESERVED_LOCAL_PARTS:
        raise InvalidName("is reserved for the domain's administrator login")
    return local


def normalize_email(value):
    """Return ``local@domain`` with both parts normalised (the domain in
    punycode); raise InvalidName when it is not such an address."""
    if not isinstance(value, str):
        raise InvalidName("must be a string")
    text = value.strip()
    local, _at, domain = text.rpartition("@")
    if not local or "@" in local or any(char.isspace() for char in text):
        raise InvalidName("is not an e-mail address like name@example.com")
    address = f"{normalize_local_part(local)}@{normalize_domain(domain)}"
    if len(address) > 254:
        raise InvalidName("is longer than 254 characters")
    return address
