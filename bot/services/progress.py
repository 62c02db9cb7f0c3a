"""Progress of enrollments: planning each step's send from the rules.

Only the next step of an enrollment is ever planned; when a send is done (sent, or
skipped by the rep) `complete` records it and plans the step after it, or finishes
the enrollment.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.core import rules
from bot.store.models import Campaign, Enrollment, EnrollmentStatus, Send, SendStatus, Step


def steps_of(session: Session, campaign_id: int, version: int) -> list[Step]:
    """A campaign version's steps in order (memoized for the session's lifetime)."""
    memo: dict[tuple[int, int], list[Step]] = session.info.setdefault("steps", {})
    key = (campaign_id, version)
    if key not in memo:
        memo[key] = list(
            session.exec(
                select(Step).where(Step.campaign_id == campaign_id, Step.version == version).order_by(col(Step.position))
            )
        )
    return memo[key]


def rule_steps(steps: Sequence[Step]) -> list[rules.Step]:
    return [rules.Step(day=s.day, send=rules.SendOption(s.send), time=s.time) for s in steps]


def calendar_of(campaign: Campaign, zone: str) -> rules.Calendar:
    return rules.Calendar(zone=ZoneInfo(zone), skip_weekends=campaign.skip_weekends, task_time=campaign.task_time)


def new_send(enrollment: Enrollment, step: Step, due: dt.datetime, thread_of: Send | None = None) -> Send:
    """The planned send of `step` for an enrollment."""
    assert enrollment.id is not None and step.id is not None
    return Send(
        enrollment_id=enrollment.id,
        step_id=step.id,
        position=step.position,
        rep_id=enrollment.rep_id,
        kind=rules.Step(step.day, rules.SendOption(step.send)).kind,
        status=SendStatus.PLANNED,
        due_at=due,
        thread_of_id=thread_of.id if thread_of is not None and step.send == rules.SendOption.THREAD else None,
    )


def done_steps(session: Session, enrollment_id: int, *, excluding: int | None = None) -> tuple[rules.Done, ...]:
    """What an enrollment has done so far, in step order."""
    query = select(Send.position, Send.status, Send.sent_at, Send.done_at).where(
        Send.enrollment_id == enrollment_id, col(Send.status).in_([SendStatus.SENT, SendStatus.SKIPPED])
    )
    if excluding is not None:
        query = query.where(Send.id != excluding)
    return tuple(
        rules.Done(position, sent_at or done_at, status == SendStatus.SENT)
        for position, status, sent_at, done_at in session.exec(query.order_by(col(Send.position)))
    )


def complete(session: Session, send: Send, *, sent: bool, at: dt.datetime) -> Send | None:
    """Record a send as sent (or skipped) at `at` and plan the enrollment's next step.

    Returns the next planned send, or None when the enrollment is finished or no
    longer active. The caller commits.
    """
    send.status = SendStatus.SENT if sent else SendStatus.SKIPPED
    send.done_at = at
    if sent:
        send.sent_at = at
    send.lease_until = None
    send.updated_at = at
    session.add(send)

    enrollment = session.get(Enrollment, send.enrollment_id)
    assert enrollment is not None and enrollment.day_one is not None
    if enrollment.status != EnrollmentStatus.ACTIVE:
        return None
    campaign = session.get(Campaign, enrollment.campaign_id)
    assert campaign is not None
    steps = steps_of(session, campaign.id, enrollment.version)  # type: ignore[arg-type]
    ruled = rule_steps(steps)
    calendar = calendar_of(campaign, enrollment.zone)

    before = rules.Progress(enrollment.day_one, enrollment.shift_days, done_steps(session, enrollment.id, excluding=send.id))  # type: ignore[arg-type]
    progress = rules.record_done(ruled, calendar, before, rules.Done(send.position, at, sent))
    enrollment.shift_days = progress.shift_days
    session.add(enrollment)

    if send.position >= len(steps):
        enrollment.status = EnrollmentStatus.FINISHED
        enrollment.ended_at = at
        enrollment.end_reason = "all steps done"
        return None
    position = send.position + 1
    due = rules.next_due(ruled, calendar, position, progress, ready_at=at)
    enrollment.position = position
    following = new_send(enrollment, steps[position - 1], due, thread_of=send)
    session.add(following)
    return following
