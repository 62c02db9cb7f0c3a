"""Progress of enrollments: planning each step's send from the rules.

Only the next step of an enrollment is ever planned; when a send is done (sent, or
skipped by the rep) `complete` records it and plans the step after it, or finishes
the enrollment.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from bot.core import rules
from bot.store.models import Campaign, Enrollment, EnrollmentStatus, Send, SendStatus, Step

_SEND = Send.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models but does not declare it
_ENROLLMENT = Enrollment.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models but does not declare it


def steps_of(session: Session, campaign_id: int, version: int) -> list[Step]:
    """A campaign version's steps in order (memoized for the session's lifetime)."""
    memo: dict[tuple[int, int], list[Step]] = session.info.setdefault("steps", {})
    key = (campaign_id, version)
    if key not in memo:
        memo[key] = list(
            session.exec(
                select(Step)
                .where(Step.campaign_id == campaign_id, Step.version == version)
                .order_by(col(Step.position))
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


def send_row(enrollment: Enrollment, step: Step, due: dt.datetime, thread_of: Send | None = None) -> dict[str, Any]:
    """The column values of a planned send (for bulk inserts, where building models costs too much)."""
    assert enrollment.id is not None and step.id is not None
    stamp = dt.datetime.now(dt.UTC)  # as the models' own default: when the row was written
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
    plans, changes = _plan_next(session, [Completion(send, at, sent)])
    for enrollment, values in changes:
        for name, value in values.items():
            setattr(enrollment, name, value)
        session.add(enrollment)
    if not plans:
        return None
    enrollment, step, due, previous = plans[0]  # one completion: at most one plan
    following = new_send(enrollment, step, due, thread_of=previous)
    session.add(following)
    return following


def complete_many(session: Session, completions: Sequence[Completion]) -> int:
    """Plan the next step after each of these sends, already stored as done.

    The scheduler records a batch of sent emails with one UPDATE; this plans what
    follows them with one query, one bulk insert and one UPDATE per set of values
    given to enrollments (usually one). Returns how many were planned.
    """
    plans, changes = _plan_next(session, completions)
    connection = session.connection()
    # Enrollments given the same values (usually just position 2) are moved by one statement.
    alike: dict[tuple[tuple[str, Any], ...], list[int]] = {}
    for enrollment, values in changes:
        alike.setdefault(tuple(values.items()), []).append(enrollment.id)  # type: ignore[arg-type]  # a stored row's id: int | None on the model, never None here
        # The row is written below, not by the session: keep the session's copy up to date.
        for name, value in values.items():
            set_committed_value(enrollment, name, value)
    for items, enrollment_ids in alike.items():
        values = dict(items)
        connection.execute(_enrollment_update(tuple(values)), {"enrollment_ids": enrollment_ids, **values})
    if plans:
        connection.execute(
            insert(_SEND),
            [send_row(enrollment, step, due, thread_of=previous) for enrollment, step, due, previous in plans],
        )
    return len(plans)


@functools.cache
def _enrollment_update(names: tuple[str, ...]) -> Any:
    # Built once per set of columns: the scheduler records every chunk of emails with it.
    return (
        update(_ENROLLMENT)
        .where(_ENROLLMENT.c.id.in_(bindparam("enrollment_ids", expanding=True)))
        .values({name: bindparam(name) for name in names})
    )


_Plan = tuple[Enrollment, Step, dt.datetime, Send]
_Change = tuple[Enrollment, dict[str, Any]]


def _plan_next(session: Session, completions: Sequence[Completion]) -> tuple[list[_Plan], list[_Change]]:
    """What follows each completed send, and what changes on each enrollment.

    Plans are (enrollment, next step, due, the send before it); changes are the
    enrollment's progress (shift, position), or its end when its last step is done,
    holding only the columns whose values change (as the session would write them).
    The caller applies the changes.
    """
    done = _done_by_enrollment(session, completions)
    current = _current_enrollments(session, completions)
    plans: list[_Plan] = []
    changes: list[_Change] = []
    calendars: dict[tuple[int, int, str], tuple[list[Step], list[rules.Step], rules.Calendar]] = {}
    for completion in completions:
        send, at = completion.send, completion.at
        enrollment = current[send.enrollment_id]
        assert enrollment.day_one is not None
        if enrollment.status != EnrollmentStatus.ACTIVE:
            continue
        key = (enrollment.campaign_id, enrollment.version, enrollment.zone)
        if (known := calendars.get(key)) is None:
            campaign = session.get(Campaign, enrollment.campaign_id)
            assert campaign is not None and campaign.id is not None
            known = calendars[key] = (
                steps_of(session, campaign.id, enrollment.version),
                _rule_steps_of(session, campaign.id, enrollment.version),
                calendar_of(campaign, enrollment.zone),
            )
        steps, ruled, calendar = known

        before = rules.Progress(enrollment.day_one, enrollment.shift_days, done.get(enrollment.id, ()))  # type: ignore[arg-type]  # a stored row's id: int | None on the model, never None here
        progress = rules.record_done(ruled, calendar, before, rules.Done(send.position, at, completion.sent))
        values: dict[str, Any] = {}
        if progress.shift_days != enrollment.shift_days:
            values["shift_days"] = progress.shift_days
        if send.position >= len(steps):
            values.update(status=EnrollmentStatus.FINISHED, ended_at=at, end_reason="all steps done")
            changes.append((enrollment, values))
            continue
        position = send.position + 1
        if position != enrollment.position:
            values["position"] = position
        if values:
            changes.append((enrollment, values))
        due = rules.next_due(ruled, calendar, position, progress, ready_at=at)
        plans.append((enrollment, steps[position - 1], due, send))
    return plans, changes


def _current_enrollments(session: Session, completions: Sequence[Completion]) -> dict[int, Enrollment]:
    """The completions' enrollments as stored now, their rows held until commit.

    A reply may have ended one since the session read it (enrollments.lock takes the
    same rows first): an ended enrollment plans nothing more.
    """
    ids = sorted({completion.send.enrollment_id for completion in completions})
    query = (
        select(Enrollment)
        .where(col(Enrollment.id).in_(ids))
        .order_by(col(Enrollment.id))
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return {enrollment.id: enrollment for enrollment in session.exec(query)}  # type: ignore[misc]  # stored rows: their ids are set


# Built once: the scheduler asks this for every chunk of emails it records.
_DONE_BEFORE = (
    select(_SEND.c.enrollment_id, _SEND.c.position, _SEND.c.status, _SEND.c.sent_at, _SEND.c.done_at)  # type: ignore[call-overload]  # sqlmodel types up to 4 entities
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
