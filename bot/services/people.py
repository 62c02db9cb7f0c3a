"""People as a rep types them: `ada@example.com` or `Ada Lovelace <ada@example.com>`.

Addresses are checked with email-validator (syntax only, never the network) and kept
in its normalized form, with the domain in its ASCII (IDNA) form: `ana@bücher.example`
is kept, and emailed, as `ana@xn--bcher-kva.example`, which every mail server takes. Slack's own markup for addresses
(`<mailto:ada@example.com|ada@example.com>`, `&lt;` for a typed `<`) is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from email.utils import unquote

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, EMAIL_MAX_LENGTH
from email_validator.syntax import split_email, validate_email_domain_name, validate_email_local_part


@dataclass(frozen=True, slots=True)
class PersonInput:
    """A person to add; `email` is a normalized address once it went through `check_people`."""

    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    title: str = ""
    timezone: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Invalid:
    """An entry that is not a usable address, and email-validator's reason why."""

    text: str
    reason: str


def parse_people(text: str) -> tuple[list[PersonInput], list[Invalid]]:
    """The people in `text`: entries separated by spaces, commas or new lines.

    Each entry is `email` or `Name <email>` (the name may be quoted, or "Last, First").
    An invalid entry never stops the valid ones.
    """
    return _checked(
        (PersonInput(address, *split_name(name)) if address else None, entry)
        for entry, name, address in _entries(_from_slack(text))
    )


def check_people(people: Iterable[PersonInput]) -> tuple[list[PersonInput], list[Invalid]]:
    """People with their address normalized, and those whose address is invalid.

    For people that come from elsewhere than a rep's text (a file, a form).
    """
    return _checked((person, person.email) for person in people)


def normalize_email(address: str) -> str:
    """email-validator's normalized form of one address; raises EmailNotValidError."""
    return AddressCheck()(address.strip())


def split_name(name: str) -> tuple[str, str]:
    """First and last name of a display name: "Ada Lovelace", "Lovelace, Ada", "Ada"."""
    name = " ".join(name.split())
    if "@" in name:  # mail programs often repeat the address as the name
        return "", ""
    if "," in name:
        last, _, first = name.partition(",")
        return first.strip(), last.strip()
    first, _, last = name.partition(" ")
    return first, last


class AddressCheck:
    """email-validator's check of an address, with each distinct domain checked once.

    Two thirds of email-validator's time goes to the part after the @-sign (IDNA), and
    a list of people shares few domains. Plain ASCII addresses take a short path made of
    email-validator's own steps (split, local part, domain, the 254-octet limit);
    anything unusual or wrong goes through `validate_email` itself, so the verdict and
    the reason are always exactly email-validator's.
    """

    def __init__(self) -> None:
        self.domains: dict[str, tuple[str, str] | None] = {}

    def __call__(self, address: str) -> str:
        # Mailboxes are case-insensitive in practice: a rep expects Ada@x.com and
        # ada@x.com to be one person, so the stored address is lower case.
        quick = self._quick(address)
        if quick is not None:
            return quick.lower()
        checked = validate_email(address, check_deliverability=False)
        return f"{checked.local_part}@{checked.ascii_domain}".lower()

    def _quick(self, address: str) -> str | None:
        try:
            display_name, _, local, quoted, domain = split_email(address)
        except EmailNotValidError:
            return None
        if display_name is not None or quoted or not local.isascii() or domain.startswith("["):
            return None
        try:
            validate_email_local_part(local)
        except EmailNotValidError:
            return None
        names = self._domain(domain)
        if names is None:
            return None
        if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
            local = local.lower()
        normalized = f"{local}@{names[1]}"
        longest = max(len(address.encode()), len(f"{local}@{names[0]}".encode()), len(normalized))
        return normalized if longest <= EMAIL_MAX_LENGTH else None

    def _domain(self, domain: str) -> tuple[str, str] | None:
        if domain not in self.domains:
            try:
                info = validate_email_domain_name(domain)
                self.domains[domain] = (info["domain"], info["ascii_domain"])
            except EmailNotValidError:
                self.domains[domain] = None
        return self.domains[domain]


# --- reading a rep's text ------------------------------------------------------

# Slack turns a typed address into `<mailto:a@b|a@b>` and escapes a typed <, > and &.
_SLACK_MAILTO = re.compile(r"<mailto:([^|>]*)(?:\|[^>]*)?>")
_SLACK_ESCAPES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))

# Tokens of a list of people (what an entry *is* is for email-validator to say).
_TOKENS = re.compile(
    r"""(?P<quoted>"(?:[^"\\]|\\.)*"?)"""
    r"|(?P<angle><[^<>]*>?)"
    r"|(?P<separator>[,;\n])"
    r"|(?P<word>[^\s,;<>\"]+)"
)


def _from_slack(text: str) -> str:
    text = _SLACK_MAILTO.sub(r"\1", text)
    for escaped, plain in _SLACK_ESCAPES:
        text = text.replace(escaped, plain)
    return text


def _entries(text: str) -> Iterable[tuple[str, str, str | None]]:
    """(entry text, display name, address or None) for each entry, in order.

    Words before `<address>` are its name; a word with an @-sign not followed by
    `<...>` is an address of its own; other words with no address are an entry
    that is not an address.
    """
    tokens = [(m.lastgroup, m.group()) for m in _TOKENS.finditer(text)]
    words: list[str] = []
    for index, (kind, token) in enumerate(tokens):
        if kind == "angle":
            name = " ".join(unquote(word) for word in words)
            entry = f"{' '.join(words)} {token}".strip()
            words = []
            yield entry, name, token.strip("<>").strip()
            continue
        following = tokens[index + 1][0] if index + 1 < len(tokens) else None
        if kind == "word" and "@" in token and following != "angle":
            if words:
                yield " ".join(words), "", None
                words = []
            yield token, "", token
        elif kind in ("word", "quoted"):
            words.append(token)
        elif words:  # a separator ends a name that found no address
            yield " ".join(words), "", None
            words = []
    if words:
        yield " ".join(words), "", None


def _checked(entries: Iterable[tuple[PersonInput | None, str]]) -> tuple[list[PersonInput], list[Invalid]]:
    """Each entry's person with a normalized address, or its text as Invalid and why."""
    check = AddressCheck()
    valid: list[PersonInput] = []
    invalid: list[Invalid] = []
    for person, text in entries:
        if person is None:
            invalid.append(Invalid(text, _reason(text)))
            continue
        try:
            address = check(person.email)
        except EmailNotValidError as error:
            invalid.append(Invalid(text, str(error)))
            continue
        valid.append(person if address == person.email else replace(person, email=address))
    return valid, invalid


def _reason(text: str) -> str:
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        return str(error)
    return "a name needs an address in angle brackets: Name <address>"
