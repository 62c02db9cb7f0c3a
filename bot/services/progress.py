"""Progress of enrollments: planning each step's send from the rules.

Only the next step of an enrollment is ever planned; when a send is done (sent, or
skipped by the rep) `complete` records it and plans the step after it, or finishes
the enrollment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert
from sqlmodel import Session, col, select

from bot.core import rules
from bot.store.models import Campaign, Enrollment, EnrollmentStatus, Send, SendStatus, Step

_SEND = Send.__table__  # type: ignore[attr-defined]


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


def _rule_steps_of(session: Session, campaign_id: int, version: int) -> list[rules.Step]:
    memo: dict[tuple[int, int], list[rules.Step]] = session.info.setdefault("rule_steps", {})
    key = (campaign_id, version)
    if key not in memo:
        memo[key] = rule_steps(steps_of(session, campaign_id, version))
    return memo[key]


def calendar_of(campaign: Campaign, zone: str) -> rules.Calendar:
    return rules.Calendar(zone=ZoneInfo(zone), skip_weekends=campaign.skip_weekends, task_time=campaign.task_time)


def new_send(enrollment: Enrollment, step: Step, due: dt.datetime, thread_of: Send | None = None) -> Send:
    """The planned send of `step` for an enrollment."""
    return Send(**send_row(enrollment, step, due, thread_of))


def send_row(enrollment: Enrollment, step: Step, due: dt.datetime, thread_of: Send | None = None) -> dict[str, object]:
    """The column values of a planned send (for bulk inserts, where building models costs too much)."""
    assert enrollment.id is not None and step.id is not None
    stamp = dt.datetime.now(dt.timezone.utc)  # as the models' own default: when the row was written
    return {
        "enrollment_id": enrollment.id,
        "step_id": step.id,
        "position": step.position,
        "rep_id": enrollment.rep_id,
        "kind": rules.StepKind.TASK if step.send == rules.SendOption.TASK else rules.StepKind.EMAIL,
        "status": SendStatus.PLANNED,
        "due_at": due,
        "attempts": 0,
        "thread_of_id": thread_of.id if thread_of is not None and step.send == rules.SendOption.THREAD else None,
        "created_at": stamp,
        "updated_at": stamp,
    }


@dataclass(frozen=True)
class Completion:
    """A send that is done: sent (or skipped by the rep) at `at`."""

    send: Send
    at: dt.datetime
    sent: bool = True


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
    for enrollment, step, due, previous in _plan_next(session, [Completion(send, at, sent)]):
        following = new_send(enrollment, step, due, thread_of=previous)
        session.add(following)
        return following
    return None


def complete_many(session: Session, completions: Sequence[Completion]) -> int:
    """Plan the next step after each of these sends, already stored as done.

    The scheduler records a batch of sent emails with one UPDATE; this plans what
    follows them with one query and one bulk insert. Returns how many were planned.
    """
    rows = [send_row(enrollment, step, due, thread_of=previous) for enrollment, step, due, previous in _plan_next(session, completions)]
    if rows:
        session.connection().execute(insert(_SEND), rows)
    return len(rows)


def _plan_next(session: Session, completions: Sequence[Completion]) -> list[tuple[Enrollment, Step, dt.datetime, Send]]:
    """What follows each completed send: (enrollment, next step, due, the send before it).

    Records the progress on each enrollment (shift, position) and finishes those
    whose last step is done.
    """
    done = _done_by_enrollment(session, completions)
    plans = []
    for completion in completions:
        send, at = completion.send, completion.at
        enrollment = session.get(Enrollment, send.enrollment_id)
        assert enrollment is not None and enrollment.day_one is not None
        if enrollment.status != EnrollmentStatus.ACTIVE:
            continue
        campaign = session.get(Campaign, enrollment.campaign_id)
        assert campaign is not None and campaign.id is not None
        steps = steps_of(session, campaign.id, enrollment.version)
        ruled = _rule_steps_of(session, campaign.id, enrollment.version)
        calendar = calendar_of(campaign, enrollment.zone)

        before = rules.Progress(enrollment.day_one, enrollment.shift_days, done.get(enrollment.id, ()))  # type: ignore[arg-type]
        progress = rules.record_done(ruled, calendar, before, rules.Done(send.position, at, completion.sent))
        enrollment.shift_days = progress.shift_days
        session.add(enrollment)

        if send.position >= len(steps):
            enrollment.status = EnrollmentStatus.FINISHED
            enrollment.ended_at = at
            enrollment.end_reason = "all steps done"
            continue
        position = send.position + 1
        enrollment.position = position
        due = rules.next_due(ruled, calendar, position, progress, ready_at=at)
        plans.append((enrollment, steps[position - 1], due, send))
    return plans


# Built once: the scheduler asks this for every chunk of emails it records.
_DONE_BEFORE = (
    select(_SEND.c.enrollment_id, _SEND.c.position, _SEND.c.status, _SEND.c.sent_at, _SEND.c.done_at)
    .where(
        _SEND.c.enrollment_id.in_(bindparam("enrollment_ids", expanding=True)),
        _SEND.c.status.in_([SendStatus.SENT.value, SendStatus.SKIPPED.value]),
        _SEND.c.id.not_in(bindparam("send_ids", expanding=True)),
    )
    .order_by(_SEND.c.enrollment_id, _SEND.c.position)
)


def _done_by_enrollment(session: Session, completions: Sequence[Completion]) -> dict[int, tuple[rules.Done, ...]]:
    """The steps each enrollment had done before these completions, in step order (one query)."""
    rows = session.connection().execute(
        _DONE_BEFORE,
        {
            "enrollment_ids": list({c.send.enrollment_id for c in completions}),
            "send_ids": [c.send.id for c in completions],
        },
    )
    done: dict[int, list[rules.Done]] = {}
    for enrollment_id, position, status, sent_at, done_at in rows:
        done.setdefault(enrollment_id, []).append(rules.Done(position, sent_at or done_at, status == SendStatus.SENT))
    return {key: tuple(value) for key, value in done.items()}
