"""The daily digest: which reps are due one, exactly once per rep per local day.

A rep's day is due when DIGEST_CRON has fired today (in the rep's own Slack time
zone) at or before now and no worker has claimed that day yet. A claim is a row in
the `digest` table keyed by (rep, local date): the primary key makes it exactly once
across workers, and on daylight-saving days when croniter fires 02:30 twice. The
digest is posted only when the rep has something to list (queued tasks, or emails
planned for today).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import exists, or_, update
from sqlmodel import Session, select

from bot.clock import UTC
from bot.services.agenda import day_bounds, planned_today
from bot.store import bulk
from bot.store.models import Campaign, Digest, Enrollment, Rep, Send, SendStatus

DIGEST = Digest.__table__  # type: ignore[attr-defined]
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class DueDigest:
    rep_id: str
    local_date: dt.date
    fired_at: dt.datetime  # the cron time it is for
    zone: ZoneInfo  # the rep's
    listable: bool = False  # the rep has something to list


def rep_zone(session: Session, rep: Rep) -> ZoneInfo:
    """The rep's Slack time zone; else that of a campaign they own or enrolled people in; else UTC."""
    names = [rep.timezone]
    if not rep.timezone:
        names.append(
            session.exec(
                select(Campaign.timezone)
                .where(
                    or_(
                        Campaign.owner_id == rep.slack_user_id,
                        Campaign.id.in_(select(Enrollment.campaign_id).where(Enrollment.rep_id == rep.slack_user_id)),  # type: ignore[union-attr]
                    )
                )
                .limit(1)
            ).first()
        )
    for name in names:
        try:
            if name:
                return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return UTC_ZONE


def fired_today(cron: str, now: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """The latest time `cron` fired at or before `now`, if that was today in `zone`."""
    now = now.astimezone(UTC)
    # croniter's get_prev is strictly before its start: start a second later so a
    # fire time equal to now counts. Arithmetic in UTC: local wall-clock arithmetic
    # would lose which of two 02:45s (autumn change) it is.
    start = (now.replace(microsecond=0) + dt.timedelta(seconds=1)).astimezone(zone)
    fire: dt.datetime = croniter(cron, start).get_prev(dt.datetime)
    if fire.astimezone(UTC) > now:
        fire = croniter(cron, fire).get_prev(dt.datetime)
    return fire if fire.astimezone(zone).date() == now.astimezone(zone).date() else None


def has_something_to_list(session: Session, rep_id: str, now: dt.datetime, zone: ZoneInfo) -> bool:
    """Queued tasks, or emails planned for the rep's local today (both found by ix_send_rep_status_due)."""
    start, end = day_bounds(now, zone)
    queued = exists().where(Send.rep_id == rep_id, Send.status == SendStatus.QUEUED)
    return bool(session.exec(select(or_(queued, exists().where(planned_today(rep_id, start, end))))).one())


def due_digests(session: Session, now: dt.datetime, cron: str) -> list[DueDigest]:
    """Reps whose digest time has come today and whose day nobody has claimed yet.

    The day is claimed even when there is nothing to list (and nothing is posted),
    so a task that turns up in the afternoon does not bring a digest of its own.
    """
    candidates: list[DueDigest] = []
    for rep in session.exec(select(Rep)):
        zone = rep_zone(session, rep)
        fire = fired_today(cron, now, zone)
        if fire is not None:
            candidates.append(DueDigest(rep.slack_user_id, fire.astimezone(zone).date(), fire, zone))
    if not candidates:
        return []
    claimed = set(
        session.exec(
            select(Digest.rep_id, Digest.local_date).where(
                Digest.rep_id.in_([due.rep_id for due in candidates]),  # type: ignore[attr-defined]
                Digest.local_date.in_({due.local_date for due in candidates}),  # type: ignore[attr-defined]
            )
        )
    )
    return [
        DueDigest(
            due.rep_id,
            due.local_date,
            due.fired_at,
            due.zone,
            has_something_to_list(session, due.rep_id, now, due.zone),
        )
        for due in candidates
        if (due.rep_id, due.local_date) not in claimed
    ]


def claim_digest(session: Session, rep_id: str, local_date: dt.date, now: dt.datetime) -> bool:
    """Take the rep's digest for `local_date`; False when another worker already has it."""
    values = {"rep_id": rep_id, "local_date": local_date, "created_at": now}
    return bulk.insert_unless_exists(session, DIGEST, values, key=["rep_id", "local_date"])


def record_posted(session: Session, rep_id: str, local_date: dt.date, now: dt.datetime) -> None:
    """Note when the digest was posted (a claim without it had nothing to list)."""
    session.execute(
        update(DIGEST).where(DIGEST.c.rep_id == rep_id, DIGEST.c.local_date == local_date).values(sent_at=now)
    )
