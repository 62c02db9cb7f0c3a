"""Reps as their Slack profile describes them, cached in the rep table for a day."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from email_validator import EmailNotValidError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.services.people import normalize_email
from bot.store import bulk
from bot.store.models import Rep

logger = logging.getLogger(__name__)

FRESH_FOR = dt.timedelta(days=1)
REP = Rep.__table__  # type: ignore[attr-defined]


def ensure_rep(session: Session, client: WebClient, user_id: str, now: dt.datetime) -> Rep:
    """The rep's row, refreshed from users.info when missing or older than a day.

    Emails go out in the rep's name from the address on their Slack profile, so a
    rep's row follows their profile. When Slack cannot be asked, a stale row is
    better than none: it is kept and tried again next time.
    """
    rep = session.get(Rep, user_id)
    if rep is not None and rep.updated_at > now - FRESH_FOR:
        return rep
    try:
        user = client.users_info(user=user_id)["user"]
    except SlackApiError:
        if rep is None:
            raise
        logger.warning("users.info failed for %s; keeping the profile of %s", user_id, rep.updated_at, exc_info=True)
        return rep
    # Two first requests from one rep may race: insert-or-update, never a key error.
    bulk.upsert(session, REP, _profile(user_id, user, now), key=["slack_user_id"])
    session.flush()
    rep = session.get(Rep, user_id, populate_existing=True)
    assert rep is not None
    return rep


def _profile(user_id: str, user: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    profile = user.get("profile") or {}
    name = profile.get("real_name") or user.get("real_name") or profile.get("display_name") or user.get("name") or ""
    first, _, last = name.partition(" ")
    return {
        "slack_user_id": user_id,
        "name": name,
        "first_name": profile.get("first_name") or first,
        "last_name": profile.get("last_name") or last,
        "email": _address(profile.get("email")),
        "timezone": user.get("tz"),
        "updated_at": now,
    }


def _address(email: str | None) -> str | None:
    """The profile's address as people's are kept (the domain in ASCII), or as Slack has it."""
    try:
        return normalize_email(email) if email else email
    except EmailNotValidError:
        return email
