"""Unsubscribing: a person's signed token, the links every email carries, and acting on them.

The token names the person, not the enrollment: suppression is company-wide. It is
`<person id>.<signature>`, the signature an HMAC-SHA256 of the id keyed by
SECRET_KEY and cut to 128 bits, URL-safe base64: nobody can make one for another
person, or change the id in theirs, without the key. Without PUBLIC_URL or
SECRET_KEY, emails carry no List-Unsubscribe headers and `{{ unsubscribe_url }}`
is empty.

The mailto of List-Unsubscribe carries the token in its subject (`unsubscribe
<token>`), so a request names its person wherever it lands: in UNSUBSCRIBE_MAILTO's
mailbox when set, else in the rep's own inbox (their From address, which the bot
watches and which needs no plus-addressing the server may not have).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote

from pydantic import SecretStr
from sqlmodel import Session, col, select

from bot.services import enrollments, notices, suppression
from bot.settings import Settings
from bot.store import locks
from bot.store.models import ACTIVE_STATUSES, Enrollment, EnrollmentStatus, NoticeKind, Person, Send

SIGNATURE_BYTES = 16
TOKEN = re.compile(r"([1-9][0-9]{0,17})\.([A-Za-z0-9_-]{22})")
# A token in a subject, as `unsubscribe <token>` puts it (after any Re: or Fwd:).
_IN_SUBJECT = re.compile(r"(?<![\w-])([1-9][0-9]{0,17}\.[A-Za-z0-9_-]{22})(?![\w-])")
PATH = "/unsubscribe/"
TOLD = "Unsubscribed: they asked for no more emails. Their enrollment ended and the address is suppressed company-wide."


def _signature(person_id: int, key: SecretStr) -> str:
    # A purpose in the message: the same key signs nothing else that could pass for a token.
    digest = hmac.new(key.get_secret_value().encode(), f"unsubscribe:{person_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).decode().rstrip("=")


def token(person_id: int, key: SecretStr) -> str:
    """The person's unsubscribe token: their id and its signature, URL-safe."""
    return f"{person_id}.{_signature(person_id, key)}"


def person_of(value: str, key: SecretStr | None) -> int | None:
    """The person a token names; None for a token forged, altered or not a token at all."""
    match = TOKEN.fullmatch(value)
    if key is None or match is None:
        return None
    person_id = int(match.group(1))
    return person_id if hmac.compare_digest(match.group(2), _signature(person_id, key)) else None


def person_of_mailto(to_address: str, subject: str, key: SecretStr | None) -> int | None:
    """The person a mailto unsubscribe request names (its subject's token), else None.

    `to_address` is where it was sent (UNSUBSCRIBE_MAILTO or the rep's address); the
    signed token alone names the person, so any of those addresses will do.
    """
    if "unsubscribe" not in subject.lower():
        return None
    return next((p for m in _IN_SUBJECT.finditer(subject) if (p := person_of(m.group(1), key)) is not None), None)


@dataclass(frozen=True)
class Links:
    """What the unsubscribe links of emails are made from (bot/services/drafts.py puts them on drafts)."""

    public_url: str
    key: SecretStr
    mailto: str | None = None  # UNSUBSCRIBE_MAILTO; None: the rep's own address

    def url(self, person_id: int) -> str:
        """The one-click https link (RFC 8058) of the person."""
        return f"{self.public_url}{PATH}{token(person_id, self.key)}"

    def mailto_url(self, person_id: int, rep_address: str | None) -> str | None:
        """The mailto of List-Unsubscribe (RFC 2369, 6068); None when there is no address to send to."""
        address = self.mailto or rep_address
        if not address:
            return None
        return f"mailto:{quote(address, safe='@')}?subject=unsubscribe%20{token(person_id, self.key)}"


def links_for(settings: Settings) -> Links | None:
    """The links of PUBLIC_URL and SECRET_KEY; None when either is missing (no headers, no link)."""
    if not settings.public_url or settings.secret_key is None:
        return None
    return Links(settings.public_url, settings.secret_key, settings.unsubscribe_mailto)


def unsubscribe(session: Session, person_id: int, now: dt.datetime) -> Person | None:
    """Suppress the person's address and end their active or paused enrollments `unsubscribed`.

    Each rep whose enrollment ended is told (a notice queued in the same transaction).
    None when there is no such person. Doing it again changes nothing.
    """
    locks.lock(session, f"unsubscribe:{person_id}")  # two clicks at once end each enrollment once
    person = session.get(Person, person_id)
    if person is None:
        return None
    reason = f"unsubscribed at {now:%Y-%m-%d %H:%M} UTC"
    suppression.suppress(session, person.email, reason, now)
    active = session.exec(
        select(Enrollment).where(Enrollment.person_id == person_id, col(Enrollment.status).in_(ACTIVE_STATUSES))
    )
    for enrollment in list(active):
        enrollments.end_enrollment(session, enrollment, EnrollmentStatus.UNSUBSCRIBED, reason, now)
        latest = session.exec(
            select(Send.id)
            .where(Send.enrollment_id == enrollment.id)
            .order_by(col(Send.position).desc(), col(Send.id).desc())
        ).first()
        if latest is not None:
            notices.enqueue(session, NoticeKind.SEND_NOTICE, [latest], now, text=TOLD)
    return person
