"""A rep's actions on a send: each checked, each idempotent, none half-applied."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.services import tasks
from bot.services.drafts import draft_for
from bot.services.errors import NotYourSend
from bot.store.db import session_scope
from bot.store.models import Enrollment, Send
from tests.support.factories import make_campaign, make_rep
from tests.support.sends import TASK_STEPS, enroll, make_person, make_send, make_task

OTHER_REP = "U0OTHER01"


@pytest.fixture
def task(session: Session, clock: FixedClock) -> Send:
    make_rep(session)
    return make_task(session, due_at=clock.now())


def sends_of(session: Session, enrollment_id: int) -> list[Send]:
    session.expire_all()
    return list(session.exec(select(Send).where(Send.enrollment_id == enrollment_id).order_by(Send.position)))


def test_send_now_makes_the_task_an_email_due_now(session: Session, task: Send, clock: FixedClock) -> None:
    later = clock.advance(minutes=5)
    send = tasks.send_now(session, task.id, task.rep_id, later)
    assert (send.kind, send.status, send.due_at) == ("email", "planned", later)


def test_a_second_send_now_changes_nothing(session: Session, task: Send, clock: FixedClock) -> None:
    first = tasks.send_now(session, task.id, task.rep_id, clock.now())
    again = tasks.send_now(session, task.id, task.rep_id, clock.advance(minutes=1))
    assert again.due_at == first.due_at == clock.now() - dt.timedelta(minutes=1)


def test_someone_else_cannot_act_on_the_task(session: Session, task: Send, clock: FixedClock) -> None:
    for action in (tasks.send_now, tasks.skip, tasks.send_again, tasks.mark_sent):
        with pytest.raises(NotYourSend, match="This is not your task"):
            action(session, task.id, OTHER_REP, clock.now())
    assert sends_of(session, task.enrollment_id)[0].status == "queued"


def test_an_unknown_task_is_refused_clearly(session: Session, clock: FixedClock) -> None:
    with pytest.raises(tasks.TaskError, match="no longer exists"):
        tasks.skip(session, 999, "U0REP0001", clock.now())


def test_edit_keeps_the_reps_version_for_sending(session: Session, task: Send, clock: FixedClock) -> None:
    tasks.save_edit(session, task.id, task.rep_id, "  A better\nsubject ", "My own words", clock.now())
    draft = draft_for(session, session.get(Send, task.id))
    assert (draft.subject, draft.body) == ("A better subject", "My own words")


def test_edit_refuses_an_empty_subject_and_keeps_the_draft(session: Session, task: Send, clock: FixedClock) -> None:
    with pytest.raises(tasks.TaskError, match="subject cannot be empty"):
        tasks.save_edit(session, task.id, task.rep_id, "  ", "Body", clock.now())
    assert draft_for(session, sends_of(session, task.enrollment_id)[0]).subject == "Hello Ada"


def test_edit_refuses_a_subject_over_the_limit(session: Session, task: Send, clock: FixedClock) -> None:
    with pytest.raises(tasks.TaskError, match="The subject is 251 characters; it can have at most 250."):
        tasks.save_edit(session, task.id, task.rep_id, "x" * 251, "Body", clock.now())
    assert tasks.save_edit(session, task.id, task.rep_id, "x" * 250, "Body", clock.now()).subject == "x" * 250


def test_edit_after_the_task_was_sent_is_refused(session: Session, task: Send, clock: FixedClock) -> None:
    tasks.skip(session, task.id, task.rep_id, clock.now())
    with pytest.raises(tasks.TaskError, match="no longer waiting for you: it is skipped"):
        tasks.save_edit(session, task.id, task.rep_id, "Subject", "Body", clock.now())


def test_schedule_plans_the_email_at_the_chosen_time(session: Session, task: Send, clock: FixedClock) -> None:
    at = clock.now() + dt.timedelta(days=1)
    send = tasks.schedule(session, task.id, task.rep_id, at, clock.now())
    assert (send.kind, send.status, send.due_at) == ("email", "planned", at)
    assert tasks.schedule(session, task.id, task.rep_id, at, clock.now()).due_at == at  # a retried submission


def test_schedule_refuses_a_time_in_the_past(session: Session, task: Send, clock: FixedClock) -> None:
    with pytest.raises(tasks.TaskError, match="Pick a time in the future"):
        tasks.schedule(session, task.id, task.rep_id, clock.now() - dt.timedelta(minutes=1), clock.now())
    assert sends_of(session, task.enrollment_id)[0].status == "queued"


def test_skip_goes_on_with_the_campaign(session: Session, task: Send, clock: FixedClock) -> None:
    send = tasks.skip(session, task.id, task.rep_id, clock.now())
    assert (send.status, send.done_at) == ("skipped", clock.now())
    skipped, following = sends_of(session, task.enrollment_id)
    assert (following.position, following.status, following.kind) == (2, "planned", "email")
    # Day 3 at 09:00 Stockholm: the skip happened on day 1, so nothing moves.
    assert following.due_at == dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC)


def test_a_second_skip_plans_nothing_twice(session: Session, task: Send, clock: FixedClock) -> None:
    tasks.skip(session, task.id, task.rep_id, clock.now())
    tasks.skip(session, task.id, task.rep_id, clock.advance(minutes=1))
    assert [s.position for s in sends_of(session, task.enrollment_id)] == [1, 2]


@pytest.mark.parametrize("action", [tasks.send_now, tasks.skip])
def test_an_action_is_kept_only_when_its_caller_commits(
    session: Session, task: Send, clock: FixedClock, action: Any
) -> None:
    """The listener commits; one that fails after the service leaves the task as it was."""
    enrollment_id = task.enrollment_id
    action(session, task.id, task.rep_id, clock.now())
    session.rollback()

    assert [s.status for s in sends_of(session, enrollment_id)] == ["queued"]


def test_racing_clicks_only_one_wins(engine: Engine, session: Session, task: Send, clock: FixedClock) -> None:
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def click() -> None:
        try:
            with session_scope(engine) as own:  # as the listener does
                barrier.wait()
                tasks.skip(own, task.id, task.rep_id, clock.now())  # type: ignore[arg-type]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=click) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [s.position for s in sends_of(session, task.enrollment_id)] == [1, 2]


def test_a_task_with_fields_missing_needs_an_edit_before_it_goes(session: Session, clock: FixedClock) -> None:
    make_rep(session)
    campaign = make_campaign(
        session, [{"day": 1, "send": "task", "subject": "For {{ company }}", "body": "Hi"}], name="Needs company"
    )
    send = make_task(session, due_at=clock.now(), campaign=campaign, company="")
    with pytest.raises(tasks.TaskError, match="no value for company: edit it first"):
        tasks.send_now(session, send.id, send.rep_id, clock.now())
    tasks.save_edit(session, send.id, send.rep_id, "For you", "Hi", clock.now())
    assert tasks.send_now(session, send.id, send.rep_id, clock.now()).status == "planned"


@pytest.mark.parametrize("status", ["paused", "removed"])
def test_a_paused_or_ended_enrollment_refuses_clearly(
    session: Session, task: Send, clock: FixedClock, status: str
) -> None:
    enrollment = session.get(Enrollment, task.enrollment_id)
    enrollment.status = status
    task.status = "paused" if status == "paused" else "cancelled"
    session.add_all([enrollment, task])
    session.commit()
    expected = "paused in “Q4”: resume them" if status == "paused" else "no longer in “Q4” \\(removed\\)"
    for action in (tasks.send_now, tasks.skip):
        with pytest.raises(tasks.TaskError, match=expected):
            action(session, task.id, task.rep_id, clock.now())


@pytest.fixture
def failed(session: Session, clock: FixedClock) -> Send:
    make_rep(session)
    campaign = make_campaign(session, TASK_STEPS, name="Q4")
    enrollment = enroll(session, campaign, make_person(session), launched_at=clock.now())
    return make_send(
        session,
        enrollment,
        1,
        due_at=clock.now(),
        status="uncertain",
        kind="email",
        message_id="<m1@seller.example>",
        last_error="connection lost after DATA",
        attempts=1,
    )


def test_send_again_plans_the_email_now(session: Session, failed: Send, clock: FixedClock) -> None:
    later = clock.advance(hours=1)
    send = tasks.send_again(session, failed.id, failed.rep_id, later)
    assert (send.status, send.due_at, send.attempts) == ("planned", later, 0)
    assert tasks.send_again(session, failed.id, failed.rep_id, clock.advance(hours=1)).due_at == later


def test_mark_sent_records_it_and_goes_on(session: Session, failed: Send, clock: FixedClock) -> None:
    send = tasks.mark_sent(session, failed.id, failed.rep_id, clock.now())
    assert (send.status, send.sent_at, send.message_id) == ("sent", clock.now(), "<m1@seller.example>")
    assert (send.subject, send.body) == ("Hello Ada", "Hi Ada,\nshall we talk?")
    assert [s.status for s in sends_of(session, failed.enrollment_id)] == ["sent", "planned"]
    tasks.mark_sent(session, failed.id, failed.rep_id, clock.now())
    assert len(sends_of(session, failed.enrollment_id)) == 2
