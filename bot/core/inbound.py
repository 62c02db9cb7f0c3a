"""What came back: a parsed inbound email in, a verdict out (../shared/spec/mail.md, Listening).

Pure: no database, no clock (the message's own arrival time is given), no I/O. The
kinds are checked in the spec's order: bounce (permanent, then transient), auto-reply
(with an out-of-office return date), unsubscribe, reply. A mailing-list message is
not a reply. Whom the message belongs to is the service's question
(bot/services/replies.py); this module only reads the message.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import Header, decode_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr
from enum import StrEnum
from html.parser import HTMLParser
from typing import TypedDict
from zoneinfo import ZoneInfo

import dateparser
import flufl.bounce
from email_reply_parser import EmailReplyParser

from bot.core.rules import next_business_day, wall_time

MORNING = dt.time(9, 0)  # an out-of-office pause ends at this wall-clock time
RETURN_WITHIN = dt.timedelta(days=60)  # an out-of-office return date further away does not pause
EXCERPT_LINES = 6
EXCERPT_CHARS = 600


class InboundKind(StrEnum):
    BOUNCE = "bounce"  # permanent
    DELAYED = "delayed"  # a transient bounce: noted on the send, nothing else
    AUTO_REPLY = "auto_reply"
    UNSUBSCRIBE = "unsubscribe"
    REPLY = "reply"
    LIST = "list"  # a mailing-list message: not a reply
    OTHER = "other"  # read, but it belongs to no enrollment


class OnReply(StrEnum):
    """Whom a reply stops (the campaign key `on_reply`)."""

    STOP_PERSON = "stop_person"  # the enrollment of the person who replied
    STOP_COMPANY = "stop_company"  # every active enrollment of the rep with a person at the same company domain


@dataclass(frozen=True)
class Verdict:
    """What an inbound message is, and what it names."""

    kind: InboundKind
    message_id: str | None
    from_email: str
    to: tuple[str, ...]
    subject: str
    references: tuple[str, ...] = ()  # In-Reply-To, then References: Message-IDs it answers
    bounced_ids: tuple[str, ...] = ()  # a bounce: the Message-IDs of the emails that bounced
    bounced_to: tuple[str, ...] = ()  # a bounce: the addresses that bounced
    status: str | None = None  # a bounce: "5.1.1 <the server's words>"
    return_on: dt.date | None = None  # an out-of-office: the return date it names (within 60 days)
    excerpt: str = ""  # the first lines, without the quoted history
    list_message: bool = False
    extra: dict[str, str] = field(default_factory=dict)


class _Heads(TypedDict):
    """The fields of a Verdict every message has."""

    message_id: str | None
    from_email: str
    to: tuple[str, ...]
    subject: str
    references: tuple[str, ...]


class _Bounce(TypedDict):
    """The fields of a Verdict a bounce adds."""

    kind: InboundKind
    bounced_to: tuple[str, ...]
    bounced_ids: tuple[str, ...]
    status: str | None


def classify(message: Message, received: dt.datetime) -> Verdict:
    """The verdict on one inbound message that arrived at `received`."""
    base = _Heads(
        message_id=_message_id(message.get("Message-ID")),
        from_email=parseaddr(header(message, "From"))[1].lower(),
        to=tuple(address.lower() for _, address in getaddresses([header(message, "To")]) if address),
        subject=_one_line(header(message, "Subject")),
        references=_ids(message.get("In-Reply-To")) + _ids(message.get("References")),
    )
    bounce = _bounce(message)
    if bounce is not None:
        return Verdict(**base, **bounce)
    text = body_text(message)
    excerpt = reply_excerpt(text)
    if is_auto_reply(message):
        return Verdict(
            **base,
            kind=InboundKind.AUTO_REPLY,
            excerpt=excerpt,
            return_on=return_date(f"{base['subject']}\n{text}", received),
        )
    if message.get("List-Id") or str(message.get("Precedence", "")).strip().lower() == "list":
        return Verdict(**base, kind=InboundKind.LIST, excerpt=excerpt, list_message=True)
    if asks_to_stop(excerpt):
        return Verdict(**base, kind=InboundKind.UNSUBSCRIBE, excerpt=excerpt)
    return Verdict(**base, kind=InboundKind.REPLY, excerpt=excerpt)


# --- bounces -------------------------------------------------------------------------

STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# Who writes non-standard bounces: only these are given to flufl.bounce's heuristics,
# which would otherwise read a reply quoting "user unknown" as a bounce.
BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
BOUNCE_SUBJECTS = re.compile(
    r"undeliver|delivery status notification|delivery failure|failure notice|returned mail|mail delivery failed"
    r"|delivery has failed|could not be delivered|nicht zustellbar|non remis|no se puede entregar|kunde inte levereras"
    r"|onbestelbaar",
    re.IGNORECASE,
)


def _bounce(message: Message) -> _Bounce | None:
    """A bounce's kind, status and what it names; None when the message is not a bounce."""
    report_type = message.get_param("report-type", "")  # a tuple only for an RFC 2231 encoded value
    if (
        message.get_content_type() == "multipart/report"
        and isinstance(report_type, str)
        and report_type.lower() == "delivery-status"
    ):
        return _dsn(message)
    sender = parseaddr(str(message.get("From", "")))[1]
    if not (BOUNCE_SENDERS.match(sender) or BOUNCE_SUBJECTS.search(header(message, "Subject"))):
        return None
    temporary, permanent = flufl.bounce.all_failures(message)
    if not (temporary or permanent):
        return None
    text = body_text(message)
    found = STATUS.search(text)
    status = _status_line(text, found) if found else ("5.0.0" if permanent else "4.0.0")
    failed = permanent or temporary
    return _Bounce(
        kind=InboundKind.BOUNCE if permanent else InboundKind.DELAYED,
        bounced_to=tuple(sorted(address.decode(errors="replace").lower() for address in failed)),
        bounced_ids=_original_ids(message),
        status=status,
    )


def _dsn(message: Message) -> _Bounce:
    """An RFC 3464 report: each recipient's Action and Status; failed or 5.x.x is permanent."""
    permanent, transient, statuses = [], [], []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for fields in part.get_payload() or []:
            if not isinstance(fields, Message) or not (
                fields.get("Final-Recipient") or fields.get("Original-Recipient")
            ):
                continue
            action = str(fields.get("Action", "")).strip().lower()
            status = str(fields.get("Status", "")).strip()
            recipient = str(fields.get("Final-Recipient") or fields.get("Original-Recipient"))
            address = recipient.split(";", 1)[-1].strip().strip("<>").lower()
            diagnostic = _one_line(str(fields.get("Diagnostic-Code", "")).split(";", 1)[-1])
            if action == "failed" or status.startswith("5"):
                permanent.append(address)
                statuses.append(f"{status or '5.0.0'} {diagnostic}".strip())
            elif action == "delayed" or status.startswith("4"):
                transient.append(address)
                statuses.append(f"{status or '4.0.0'} {diagnostic}".strip())
    return _Bounce(
        kind=InboundKind.BOUNCE if permanent else InboundKind.DELAYED,
        bounced_to=tuple(permanent or transient),
        bounced_ids=_original_ids(message),
        status=statuses[0] if statuses else None,
    )


def _original_ids(message: Message) -> tuple[str, ...]:
    """The Message-ID of the email that bounced: from the attached message or its headers."""
    ids: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            for inner in part.get_payload() or []:
                if isinstance(inner, Message) and (found := _message_id(inner.get("Message-ID"))):
                    ids.append(found)
        elif kind == "text/rfc822-headers":
            ids += [_message_id(m) or "" for m in re.findall(r"^Message-ID:\s*(\S+)", _text_of(part), re.I | re.M)]
    if not ids:  # some servers quote the original headers in the body
        ids = [
            _message_id(m) or "" for m in re.findall(r"^\s*Message-ID:\s*(<[^>\s]+>)", body_text(message), re.I | re.M)
        ]
    return tuple(dict.fromkeys(i for i in ids if i))


def _status_line(text: str, found: re.Match[str]) -> str:
    end = text.find("\n", found.end())
    line = _one_line(text[text.rfind("\n", 0, found.start()) + 1 : end if end >= 0 else len(text)])
    return f"{found.group(0)} {line}"[:300]


# --- auto-replies ----------------------------------------------------------------------

AUTO_SUBJECTS = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?reply|auto:|autosvar|automatisch(e)? antwort|réponse automatique"
    r"|respuesta automática|automatisch antwoord)|out of (the )?office|abwesenheitsnotiz|abwesend|frånvaro"
    r"|absence|fuera de la oficina|afwezig|niet aanwezig",
    re.IGNORECASE,
)


def is_auto_reply(message: Message) -> bool:
    """RFC 3834's Auto-Submitted, the X-Autoreply family, Precedence, or an auto-reply subject."""
    submitted = str(message.get("Auto-Submitted", "")).strip().lower()
    if submitted and submitted != "no":
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond") or message.get("X-Autoresponse"):
        return True
    if str(message.get("Precedence", "")).strip().lower() in ("auto_reply", "bulk", "junk"):
        return True
    return bool(AUTO_SUBJECTS.search(header(message, "Subject")))


# The words before a return date, in English, German, French, Spanish, Swedish and Dutch.
RETURN_WORDS = {
    "en": r"until|till|through|back on|back in the office on|return(?:ing)? on|returning|return|back",
    "de": r"bis (?:einschließlich|zum|am)?|zurück am|ab dem|ab|wieder da am|wieder im büro am|wieder erreichbar am",
    "fr": r"jusqu'au|jusqu’au|jusqu'à|de retour le|retour le|à partir du",
    "es": r"hasta el|hasta|regreso el|de vuelta el|volveré el|a partir del",
    "sv": r"till och med|t\.o\.m\.|tillbaka den|tillbaka|åter den|åter|från och med",
    "nl": r"tot en met|t/m|tot|terug op|vanaf|weer aanwezig op",
}
RETURN = {lang: re.compile(rf"(?:{words})\s+(.{{1,60}})", re.IGNORECASE) for lang, words in RETURN_WORDS.items()}


def return_date(text: str, received: dt.datetime) -> dt.date | None:
    """The return date an out-of-office names: the first after a return word, within 60 days of `received`."""
    first, last = received.date(), (received + RETURN_WITHIN).date()
    settings = {
        "RELATIVE_BASE": received.replace(tzinfo=None),
        "PREFER_DATES_FROM": "future",
        "REQUIRE_PARTS": ["day", "month"],
    }
    found: list[tuple[int, dt.date]] = []
    for lang, pattern in RETURN.items():
        for match in pattern.finditer(text):
            tokens = match.group(1).replace("\n", " ").split()
            date = _first_date(tokens, [lang], settings, first, last)
            if date is not None:
                found.append((match.start(), date))
                break
    return min(found)[1] if found else None


def _first_date(
    tokens: list[str], languages: list[str], settings: dict[str, object], first: dt.date, last: dt.date
) -> dt.date | None:
    # The date is a few words after the return word ("den 18 januari", "Monday, 18 January 2027."):
    # try where it may start and the longest reading first, keeping the first within range.
    for start in range(min(3, len(tokens))):
        for end in range(min(len(tokens), start + 5), start, -1):
            phrase = " ".join(tokens[start:end]).strip(".,;:()!")
            if not any(char.isdigit() for char in phrase):
                continue
            parsed = dateparser.parse(phrase, languages=languages, settings=settings)
            if parsed is not None and first <= parsed.date() <= last:
                return parsed.date()
    return None


def back_from_absence(return_on: dt.date, zone: ZoneInfo) -> dt.datetime:
    """When an out-of-office pause ends: the morning of the first working day after the return date."""
    return wall_time(next_business_day(return_on + dt.timedelta(days=1)), MORNING, zone)


# --- unsubscribe requests -------------------------------------------------------------

# A first line that is only one of these (any case, punctuation aside) asks to stop.
STOP_REQUESTS = frozenset(
    {
        # English
        "unsubscribe", "remove me", "please remove me", "remove", "stop", "opt out", "optout",
        "unsubscribe me", "please unsubscribe me", "take me off your list", "no thanks stop",
        # German
        "abmelden", "austragen", "bitte austragen", "bitte abmelden", "entfernen", "bitte entfernen",
        "abbestellen",
        # French
        "désabonner", "me désabonner", "désinscrire", "me désinscrire", "désabonnement", "arrêter", "arrêtez",
        # Spanish
        "baja", "darme de baja", "dar de baja", "cancelar suscripción", "eliminarme", "parar",
        # Swedish
        "avregistrera", "avregistrera mig", "avsluta", "sluta", "ta bort mig",
        # Dutch
        "afmelden", "uitschrijven", "verwijder mij", "verwijder me", "stoppen",
    }
)  # fmt: skip


def asks_to_stop(excerpt: str) -> bool:
    """The reply's first line is only a request to stop ("unsubscribe", "remove me", "stop" ...)."""
    first = next((line for line in excerpt.splitlines() if line.strip()), "")
    words = re.sub(r"[^\w\s'’-]", " ", first.lower())
    return " ".join(words.split()) in STOP_REQUESTS


# --- companies -----------------------------------------------------------------------

# Free-mail domains: two people there are not colleagues (on_reply: stop_company). The one list.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "hotmail.de", "hotmail.fr",
        "live.com", "msn.com", "yahoo.com", "yahoo.co.uk", "yahoo.de", "yahoo.fr", "yahoo.es", "ymail.com",
        "icloud.com", "me.com", "mac.com", "aol.com", "gmx.de", "gmx.net", "gmx.com", "web.de", "t-online.de",
        "mail.com", "protonmail.com", "proton.me", "pm.me", "zoho.com", "yandex.com", "yandex.ru", "mail.ru",
        "orange.fr", "free.fr", "laposte.net", "wanadoo.fr", "libero.it", "telia.com", "hotmail.se", "live.se",
        "ziggo.nl", "kpnmail.nl", "hetnet.nl", "qq.com", "163.com", "fastmail.com", "hey.com", "tutanota.com",
    }
)  # fmt: skip


def company_domain(email: str) -> str | None:
    """The company an address belongs to, by its domain; None for a free-mail address."""
    domain = email.rpartition("@")[2].lower()
    return None if not domain or domain in FREE_MAIL_DOMAINS else domain


# --- text ------------------------------------------------------------------------------

# Where a quoted history starts that email_reply_parser does not know (Outlook, Apple Mail in other languages).
QUOTE_STARTS = re.compile(
    r"^(-{3,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|ursprungligt meddelande"
    r"|oorspronkelijk bericht)\s*-{3,}|_{10,}|(from|von|de|från|van):\s.+|.{0,200}\b(wrote|schrieb|a écrit|escribió|skrev"
    r"|schreef)\s*:)\s*$",
    re.IGNORECASE,
)


def reply_excerpt(text: str) -> str:
    """The first lines of what the person wrote, without the quoted history."""
    fresh = EmailReplyParser.parse_reply(text.replace("\r\n", "\n"))
    lines: list[str] = []
    for line in fresh.splitlines():
        if line.startswith(">") or QUOTE_STARTS.match(line.strip()):
            break
        if line.strip() or (lines and lines[-1]):
            lines.append(line.rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines[:EXCERPT_LINES])[:EXCERPT_CHARS]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("style", "script", "head"):
            self.skip += 1
        if tag in ("br", "p", "div", "tr", "li", "blockquote"):
            self.parts.append("\n")
        if tag == "blockquote":
            self.parts.append("> ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head"):
            self.skip = max(0, self.skip - 1)

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def body_text(message: Message) -> str:
    """The message's text: its first text/plain part, else its HTML as text (attachments skipped)."""
    html = None
    for part in message.walk():
        if part.get_content_maintype() == "multipart":
            continue
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers", "message/delivery-status"):
            break  # what a bounce attaches is not what it says
        if part.get_filename():
            continue
        if part.get_content_type() == "text/plain":
            return _text_of(part)
        if part.get_content_type() == "text/html" and html is None:
            html = _text_of(part)
    if html is None:
        return ""
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\n\s*\n\s*\n+", "\n\n", "".join(parser.parts)).strip()


def _text_of(part: Message) -> str:
    if isinstance(part, EmailMessage):
        try:
            return str(part.get_content())
        except (LookupError, KeyError, ValueError):
            pass
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return str(part.get_payload())


def header(message: Message, name: str) -> str:
    """A header as people read it (RFC 2047 words decoded), whichever policy parsed the message.

    The watcher parses with the fast compat32 policy, which leaves headers encoded
    (and raw 8-bit ones as "unknown-8bit"; read as UTF-8, as senders mean them).
    """
    decoded = []
    for value in message.get_all(name) or []:
        try:
            parts = decode_header(value if isinstance(value, Header) else str(value))
        except HeaderParseError:
            decoded.append(str(value))
            continue
        text = ""
        for part, charset in parts:
            if isinstance(part, bytes):
                try:
                    part = part.decode(charset if charset and charset != "unknown-8bit" else "utf-8", "replace")
                except LookupError:
                    part = part.decode("utf-8", "replace")
            text += part
        decoded.append(text)
    return ", ".join(decoded)


def _message_id(value: object) -> str | None:
    ids = _ids(value)
    return ids[0] if ids else None


def _ids(value: object) -> tuple[str, ...]:
    """The Message-IDs in a header (angle brackets kept, as Send.message_id stores them)."""
    return tuple(re.findall(r"<[^<>\s]+>", str(value))) if value else ()


def _one_line(text: str) -> str:
    return " ".join(text.split())
