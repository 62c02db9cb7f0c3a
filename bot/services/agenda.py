"""A rep's agenda: what waits for them (queued tasks), what goes out today, and their
active campaigns. App Home, `/tasks` and the daily digest all show it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func
from sqlmodel import Session, col, select

from bot.core import rules
from bot.core.inbound import InboundKind
from bot.services.drafts import Draft, draft_or_problem
from bot.store.models import Campaign, Enrollment, EnrollmentStatus, Inbound, Person, Rep, Send, SendStatus, Step


@dataclass(frozen=True)
class Entry:
    """One send on an agenda, with the person and campaign it is for, and its email."""

    send: Send
    person: Person
    campaign: Campaign
    overdue: bool = False  # a task due before today began (in the rep's zone)
    draft: Draft | None = None  # the email as it will go out; None when it cannot be built
    problem: str | None = None  # why it cannot be built: the item says so, the rest of a list shows


@dataclass(frozen=True)
class CampaignCount:
    campaign_id: int
    name: str
    active: int  # the rep's active enrollments
    queued: int  # the rep's queued tasks


@dataclass(frozen=True)
class Agenda:
    """What a list shows (the first tasks and emails), with the counts of all of them."""

    tasks: list[Entry] = field(default_factory=list)  # the first queued tasks, oldest due first
    scheduled_today: list[Entry] = field(default_factory=list)  # the first planned emails due today, by due time
    campaigns: list[CampaignCount] = field(default_factory=list)
    task_count: int = 0  # all queued tasks
    overdue: int = 0  # of them, due before today began
    email_count: int = 0  # all emails planned for today
    replies: list[tuple[Inbound, str]] = field(default_factory=list)  # the week's replies, newest first, with who

    @property
    def empty(self) -> bool:
        """Nothing to do and nothing going out today (campaign counts alone are not news)."""
        return not self.task_count and not self.email_count


def day_bounds(now: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (UTC) of the local day that contains `now` in `zone`; DST days are 23 or 25 hours."""
    today = rules.local_date(now, zone)
    midnight = dt.time(0, 0)
    return rules.wall_time(today, midnight, zone), rules.wall_time(today + dt.timedelta(days=1), midnight, zone)


def planned_today(rep_id: str, start: dt.datetime, end: dt.datetime) -> Any:
    """The condition for the rep's emails planned in [start, end) (ix_send_rep_status_due)."""
    return and_(
        col(Send.rep_id) == rep_id,
        col(Send.status) == SendStatus.PLANNED,
        col(Send.kind) == "email",
        col(Send.due_at) >= start,
        col(Send.due_at) < end,
    )


def agenda_for(
    session: Session, rep_id: str, now: dt.datetime, zone: ZoneInfo | str, *, tasks: int, emails: int, replies: int = 0
) -> Agenda:
    """The rep's first `tasks` queued tasks and first `emails` emails of today, with counts, and active campaigns;
    and the first `replies` replies of the last 7 days.

    Only what is shown is loaded: the same few queries for 10 queued tasks or 10,000.
    """
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    start, end = day_bounds(now, zone)
    queued = and_(col(Send.rep_id) == rep_id, col(Send.status) == SendStatus.QUEUED)
    first_tasks = _entries(session, _with_all_a_draft_reads().where(queued), start, limit=tasks)
    first_emails = _entries(
        session, _with_all_a_draft_reads().where(planned_today(rep_id, start, end)), start, limit=emails
    )

    email_count = session.exec(select(func.count()).select_from(Send).where(planned_today(rep_id, start, end))).one()
    # Per step first, from ix_send_rep_status_step alone (no join per queued task), then per campaign.
    by_step = (
        select(
            col(Send.step_id).label("step_id"),
            func.count().label("queued"),
            func.count(case((col(Send.due_at) < start, 1))).label("overdue"),
        )
        .where(queued)
        .group_by(col(Send.step_id))
        .subquery()
    )
    queued_rows = session.exec(
        select(Step.campaign_id, func.sum(by_step.c.queued), func.sum(by_step.c.overdue))
        .join(by_step, by_step.c.step_id == Step.id)
        .group_by(col(Step.campaign_id))
    ).all()
    queued_in = {cid: int(n) for cid, n, _ in queued_rows}
    overdue = sum(int(n) for _, _, n in queued_rows)
    # Per campaign from ix_enrollment_rep_status alone, then their names.
    active = (
        select(col(Enrollment.campaign_id).label("campaign_id"), func.count().label("active"))
        .where(Enrollment.rep_id == rep_id, col(Enrollment.status) == EnrollmentStatus.ACTIVE)
        .group_by(col(Enrollment.campaign_id))
        .subquery()
    )
    counts = session.exec(
        select(Campaign.id, Campaign.name, active.c.active)
        .join(active, active.c.campaign_id == Campaign.id)
        .order_by(col(Campaign.name), col(Campaign.id))
    ).all()
    campaigns = [CampaignCount(cid, name, active, queued_in.get(cid, 0)) for cid, name, active in counts]  # type: ignore[arg-type]  # a stored row's id: int | None on the model, never None here
    week = week_of_replies(session, rep_id, now, replies) if replies else []
    return Agenda(first_tasks, first_emails, campaigns, sum(queued_in.values()), overdue, email_count, week)


def week_of_replies(session: Session, rep_id: str, now: dt.datetime, limit: int) -> list[tuple[Inbound, str]]:
    """The rep's replies of the last 7 days, newest first, each with the name (or address) of who replied."""
    rows = session.exec(
        select(Inbound, Person)
        .join(Enrollment, col(Enrollment.id) == Inbound.enrollment_id)
        .join(Person, col(Person.id) == Enrollment.person_id)
        .where(
            Inbound.rep_id == rep_id,
            Inbound.kind == InboundKind.REPLY,
            col(Inbound.received_at) >= now - dt.timedelta(days=7),
        )
        .order_by(col(Inbound.received_at).desc())
        .limit(limit)
    ).all()
    return [
        (inbound, " ".join(filter(None, (person.first_name, person.last_name))) or person.email)
        for inbound, person in rows
    ]


def entries_for(session: Session, send_ids: Sequence[int], now: dt.datetime, zone: ZoneInfo | str) -> dict[int, Entry]:
    """Sends as agenda entries, by id (to redraw their messages)."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    start = day_bounds(now, zone)[0]
    statement = (
        _with_all_a_draft_reads().where(col(Send.id).in_(list(send_ids))).execution_options(populate_existing=True)
    )
    return {entry.send.id: entry for entry in _entries(session, statement, start)}  # type: ignore[misc]  # a stored row's id: int | None on the model, never None here


def entry_for(session: Session, send_id: int, now: dt.datetime, zone: ZoneInfo | str) -> Entry | None:
    """One send as an agenda entry, or None when it is gone."""
    return entries_for(session, [send_id], now, zone).get(send_id)


def _with_all_a_draft_reads() -> Any:
    return (
        select(Send, Enrollment, Person, Campaign, Step)  # type: ignore[call-overload]  # sqlmodel types up to 4 entities
        .join(Enrollment, col(Enrollment.id) == Send.enrollment_id)
        .join(Person, col(Person.id) == Enrollment.person_id)
        .join(Campaign, col(Campaign.id) == Enrollment.campaign_id)
        .join(Step, col(Step.id) == Send.step_id)
        .order_by(col(Send.due_at), col(Send.id))
    )


def _entries(session: Session, statement: Any, start: dt.datetime, limit: int | None = None) -> list[Entry]:
    """The sends `statement` selects as entries, each drafted on its own (one that fails says why)."""
    if limit is not None:
        if limit <= 0:
            return []
        statement = statement.limit(limit)
    rows = session.exec(statement).all()
    # Held while drafting: the session keeps objects only weakly, and draft_for's
    # session.get() then finds them without a query.
    _held = [
        *rows,
        *session.exec(select(Rep).where(col(Rep.slack_user_id).in_({row[0].rep_id for row in rows}))),
        *session.exec(
            select(Send).where(col(Send.id).in_({row[0].thread_of_id for row in rows if row[0].thread_of_id}))
        ),
    ]
    entries = []
    for send, _, person, campaign, _ in rows:
        draft, problem = draft_or_problem(session, send)
        overdue = send.status == SendStatus.QUEUED and send.due_at < start
        entries.append(Entry(send, person, campaign, overdue, draft, problem))
    return entries
