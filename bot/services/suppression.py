"""Suppressed addresses: company-wide, no campaign emails them again until an admin lifts it.

An address is suppressed when its person unsubscribes or it bounces for good; admins
add and lift addresses with `bot suppress`. It is checked when people are added (the
answer names it) and again just before each email is handed over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from email_validator import EmailNotValidError
from sqlmodel import Session, col, select

from bot.services.errors import ServiceError
from bot.services.people import normalize_email
from bot.store import bulk
from bot.store.models import Suppressed

SUPPRESSED = Suppressed.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models at runtime; its type doesn't declare it


class SuppressionError(ServiceError):
    """An address that cannot be suppressed or lifted as asked."""


def suppress(session: Session, email: str, reason: str, now: dt.datetime) -> None:
    """Suppress `email` (kept as the first reason given when it already is)."""
    address = _address(email)
    row = {"email": address, "reason": reason, "created_at": now}
    bulk.insert_unless_exists(session, SUPPRESSED, row, key=["email"])


def lift(session: Session, email: str) -> None:
    """Let campaigns email `email` again."""
    suppressed = session.get(Suppressed, _address(email))
    if suppressed is None:
        raise SuppressionError(f"{email} is not suppressed")
    session.delete(suppressed)
    session.flush()


def suppressed_among(session: Session, emails: Iterable[str]) -> dict[str, str]:
    """Of these (normalized) addresses, those suppressed, with why."""
    wanted = sorted(set(emails))
    if not wanted:
        return {}
    rows = session.exec(select(Suppressed).where(col(Suppressed.email).in_(wanted)))
    return {row.email: row.reason for row in rows}


def all_suppressed(session: Session) -> list[Suppressed]:
    """Every suppressed address, in order."""
    return list(session.exec(select(Suppressed).order_by(col(Suppressed.email))))


def _address(email: str) -> str:
    try:
        return normalize_email(email)
    except EmailNotValidError as exc:
        raise SuppressionError(f"{email!r} is not an email address: {exc}") from None
