"""Mailbox password policies (pure Python, no ORM).

A mail server enforces its own rules on the passwords it is handed; each
mail-server record states them (a :class:`PasswordPolicy`) so that Odoo
refuses a password the server would refuse, before anything is created, and
generates passwords the server accepts. The character classes are counted
the way Modoboa's ``ComplexityValidator`` counts them."""

import secrets
import string
from dataclasses import dataclass

# The characters Modoboa's ComplexityValidator counts as special.
SPECIALS = "~!@#$%^&*()_+{}\":;,'[]"
# Generated passwords use a subset that needs no quoting anywhere.
GENERATED_SPECIALS = "!#%*_+"
GENERATED_LENGTH = 20
MIN_LENGTH = 8  # the API document's minimum: no policy goes below it
MAX_LENGTH = 128  # what the API accepts


def _count(password, rule):
    if rule == "upper":
        return sum(1 for char in password if char.isupper())
    if rule == "lower":
        return sum(1 for char in password if char.islower())
    if rule == "digits":
        return sum(1 for char in password if char.isdigit())
    return sum(1 for char in password if char in SPECIALS)


RULE_LABELS = {
    "upper": ("upper case letter", "upper case letters"),
    "lower": ("lower case letter", "lower case letters"),
    "digits": ("digit", "digits"),
    "specials": (f"special character ({SPECIALS})", f"special characters ({SPECIALS})"),
}


@dataclass(frozen=True)
class PasswordPolicy:
    """The rules of one mail server: a minimum length and a minimum count of
    each character class (0: not required)."""

    min_length: int = MIN_LENGTH
    upper: int = 0
    lower: int = 0
    digits: int = 0
    specials: int = 0

    def problems(self, password):
        """What ``password`` breaks, one sentence per rule (never the
        password itself); empty when it is acceptable."""
        found = []
        if len(password) < self.min_length:
            found.append(f"Must be at least {self.min_length} characters long.")
        for rule, (one, many) in RULE_LABELS.items():
            wanted = getattr(self, rule)
            if wanted and _count(password, rule) < wanted:
                found.append(f"Must contain at least {wanted} {one if wanted == 1 else many}.")
        return found

    def describe(self):
        """The policy in one line, for people configuring it."""
        parts = [f"at least {self.min_length} characters"]
        for rule, (one, many) in RULE_LABELS.items():
            wanted = getattr(self, rule)
            if wanted:
                parts.append(f"{wanted} {one if wanted == 1 else many}")
        return ", ".join(parts)

    def generate(self, length=GENERATED_LENGTH):
        """A random password that satisfies this policy (and Modoboa's
        stock rules too: it always holds each character class)."""
        classes = [
            (string.ascii_uppercase, max(self.upper, 1)),
            (string.ascii_lowercase, max(self.lower, 1)),
            (string.digits, max(self.digits, 1)),
            (GENERATED_SPECIALS, max(self.specials, 1)),
        ]
        length = max(length, self.min_length, sum(count for _chars, count in classes))
        chars = [secrets.choice(alphabet) for alphabet, count in classes for _ in range(count)]
        alphabet = "".join(alphabet for alphabet, _count in classes)
        chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
        secrets.SystemRandom().shuffle(chars)
        return "".join(chars)


DEFAULT_POLICY = PasswordPolicy()


def generate_password(length=GENERATED_LENGTH):
    """A random password that satisfies any policy of up to ``length``
    characters with one character of each class."""
    return DEFAULT_POLICY.generate(length)
