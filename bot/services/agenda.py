"""A rep's agenda: what waits for them (queued tasks), what goes out today, and their
active campaigns. App Home, `/tasks` and the daily digest all show it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from bot.core import rules
from bot.store.models import Campaign, Enrollment, EnrollmentStatus, Person, Send, SendStatus


@dataclass(frozen=True)
class Entry:
    """One send on an agenda, with the person and campaign it is for."""

    send: Send
    person: Person
    campaign: Campaign
    overdue: bool = False  # a task due before today began (in the rep's zone)


@dataclass(frozen=True)
class CampaignCount:
    campaign_id: int
    name: str
    active: int  # the rep's active enrollments
    queued: int  # the rep's queued tasks


@dataclass(frozen=True)
class Agenda:
    tasks: list[Entry] = field(default_factory=list)  # queued, oldest due first
    scheduled_today: list[Entry] = field(default_factory=list)  # planned emails due today, by due time
    campaigns: list[CampaignCount] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to do and nothing going out today (campaign counts alone are not news)."""
        return not self.tasks and not self.scheduled_today

    @property
    def overdue(self) -> int:
        return sum(1 for entry in self.tasks if entry.overdue)


def day_bounds(now: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (UTC) of the local day that contains `now` in `zone`; DST days are 23 or 25 hours."""
    today = rules.local_date(now, zone)
    midnight = dt.time(0, 0)
    return rules.wall_time(today, midnight, zone), rules.wall_time(today + dt.timedelta(days=1), midnight, zone)


def _with_person_and_campaign() -> Any:
    return (
        select(Send, Person, Campaign)
        .join(Enrollment, col(Enrollment.id) == Send.enrollment_id)
        .join(Person, col(Person.id) == Enrollment.person_id)
        .join(Campaign, col(Campaign.id) == Enrollment.campaign_id)
    )


def agenda_for(session: Session, rep_id: str, now: dt.datetime, zone: ZoneInfo | str) -> Agenda:
    """The rep's queued tasks, today's planned emails and active campaigns: two queries."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    start, end = day_bounds(now, zone)
    rows = session.exec(
        _with_person_and_campaign()
        .where(
            Send.rep_id == rep_id,
            or_(
                col(Send.status) == SendStatus.QUEUED,
                and_(
                    col(Send.status) == SendStatus.PLANNED,
                    col(Send.kind) == rules.StepKind.EMAIL,
                    col(Send.due_at) >= start,
                    col(Send.due_at) < end,
                ),
            ),
        )
        .order_by(col(Send.due_at), col(Send.id))
    ).all()
    tasks: list[Entry] = []
    scheduled: list[Entry] = []
    queued: dict[int, int] = {}
    for send, person, campaign in rows:
        if send.status == SendStatus.QUEUED:
            tasks.append(Entry(send, person, campaign, overdue=send.due_at < start))
            queued[campaign.id] = queued.get(campaign.id, 0) + 1  # type: ignore[index]
        else:
            scheduled.append(Entry(send, person, campaign))

    counts = session.exec(
        select(Campaign.id, Campaign.name, func.count(col(Enrollment.id)))
        .join(Enrollment, col(Enrollment.campaign_id) == Campaign.id)
        .where(Enrollment.rep_id == rep_id, col(Enrollment.status) == EnrollmentStatus.ACTIVE)
        .group_by(col(Campaign.id), col(Campaign.name))
        .order_by(col(Campaign.name))
    ).all()
    campaigns = [CampaignCount(cid, name, active, queued.get(cid, 0)) for cid, name, active in counts]  # type: ignore[arg-type]
    return Agenda(tasks=tasks, scheduled_today=scheduled, campaigns=campaigns)


def entries_for(session: Session, send_ids: Sequence[int], now: dt.datetime, zone: ZoneInfo | str) -> dict[int, Entry]:
    """Sends as agenda entries, by id, in one query (to redraw their messages)."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    start = day_bounds(now, zone)[0]
    rows = session.exec(
        _with_person_and_campaign()
        .where(col(Send.id).in_(list(send_ids)))
        .execution_options(populate_existing=True)
    ).all()
    return {
        send.id: Entry(send, person, campaign, overdue=send.status == SendStatus.QUEUED and send.due_at < start)  # type: ignore[misc]
        for send, person, campaign in rows
    }


def entry_for(session: Session, send_id: int, now: dt.datetime, zone: ZoneInfo | str) -> Entry | None:
    """One send as an agenda entry, or None when it is gone."""
    return entries_for(session, [send_id], now, zone).get(send_id)
