"""The Salesforce sync queue: what each rep action records, and the queue's claims and retries."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.services import sync, tasks
from bot.store.models import SalesforceSync, Send, SyncEvent, SyncOutcome
from tests.support.factories import make_rep
from tests.support.sends import make_task


@pytest.fixture
def salesforce_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync, "_enabled", True)


@pytest.fixture
def task(session: Session, clock: FixedClock) -> Send:
    make_rep(session)
    return make_task(session, due_at=clock.now())


def events(session: Session) -> list[tuple[str, int]]:
    session.expire_all()
    return [
        (item.event.value, item.send_id) for item in session.exec(select(SalesforceSync).order_by(SalesforceSync.id))
    ]


def test_without_salesforce_nothing_is_recorded(session: Session, task: Send, clock: FixedClock) -> None:
    tasks.skip(session, task.id, task.rep_id, clock.now())
    sync.reply_received(session, task.id, "Re: hi", "Thanks!", clock.now())
    assert events(session) == []


def test_skip_records_task_skipped_once(session: Session, task: Send, clock: FixedClock, salesforce_on: None) -> None:
    tasks.skip(session, task.id, task.rep_id, clock.now())
    tasks.skip(session, task.id, task.rep_id, clock.now())  # a second click changes nothing
    assert events(session) == [("task_skipped", task.id)]


def test_a_task_completed_in_salesforce_is_skipped_without_telling_salesforce(
    session: Session, task: Send, clock: FixedClock, salesforce_on: None
) -> None:
    send = tasks.skip(session, task.id, task.rep_id, clock.now(), in_salesforce=True)
    assert send.status == "skipped"
    assert events(session) == []


def test_schedule_records_task_scheduled(session: Session, task: Send, clock: FixedClock, salesforce_on: None) -> None:
    at = clock.now() + dt.timedelta(days=1)
    tasks.schedule(session, task.id, task.rep_id, at, clock.now())
    tasks.schedule(session, task.id, task.rep_id, at, clock.now())  # the same request again
    assert events(session) == [("task_scheduled", task.id)]


def test_a_sent_task_updates_its_task_and_an_automatic_email_makes_one(
    session: Session, clock: FixedClock, salesforce_on: None
) -> None:
    make_rep(session)
    queued = make_task(session, due_at=clock.now())
    automatic = make_task(session, due_at=clock.now(), email="bob@example.com", status="sent")
    sync.record(session, SyncEvent.TASK_QUEUED, [queued.id], clock.now())
    sync.emails_sent(session, [queued.id, automatic.id], clock.now())
    assert events(session) == [("task_queued", queued.id), ("task_sent", queued.id), ("email_sent", automatic.id)]


def test_a_reply_is_recorded_with_its_subject_and_body(
    session: Session, task: Send, clock: FixedClock, salesforce_on: None
) -> None:
    sync.reply_received(session, task.id, "Re: Hello Ada", "Yes, let's talk.", clock.now())
    item = session.exec(select(SalesforceSync)).one()
    assert (item.event, item.send_id, item.subject, item.body) == (
        SyncEvent.REPLY,
        task.id,
        "Re: Hello Ada",
        "Yes, let's talk.",
    )


def test_only_the_oldest_waiting_item_of_a_send_is_due(
    session: Session, task: Send, clock: FixedClock, salesforce_on: None
) -> None:
    sync.record(session, SyncEvent.TASK_QUEUED, [task.id], clock.now())
    sync.record(session, SyncEvent.TASK_SKIPPED, [task.id], clock.now())
    first = sync.claim_due(session, clock.now(), "w1", limit=10)
    assert [item.event for item in first] == [SyncEvent.TASK_QUEUED]
    assert sync.claim_due(session, clock.now(), "w2", limit=10) == []  # leased, and the next waits for it
    sync.synced(session, first[0], clock.now(), who_id="003A", task_id="00TA")
    assert [item.event for item in sync.claim_due(session, clock.now(), "w2", limit=10)] == [SyncEvent.TASK_SKIPPED]


def test_salesforce_down_is_retried_with_growing_delays_and_never_given_up(
    session: Session, task: Send, clock: FixedClock, salesforce_on: None
) -> None:
    sync.record(session, SyncEvent.TASK_QUEUED, [task.id], clock.now())
    waits = []
    for _ in range(8):
        (item,) = sync.claim_due(session, clock.now(), "w1", limit=10)
        assert not sync.not_synced(session, item, clock.now(), "503 Service Unavailable", busy=True)
        waits.append(item.next_at - clock.now())
        clock.set(item.next_at)
    assert (
        waits
        == [dt.timedelta(seconds=30), dt.timedelta(minutes=2), dt.timedelta(minutes=5)] + [dt.timedelta(minutes=15)] * 5
    )
    assert item.done_at is None and item.last_error == "503 Service Unavailable"


def test_a_refused_item_is_given_up_after_five_tries(
    session: Session, task: Send, clock: FixedClock, salesforce_on: None
) -> None:
    sync.record(session, SyncEvent.TASK_QUEUED, [task.id], clock.now())
    for attempt in range(1, sync.GIVE_UP_AFTER + 1):
        (item,) = sync.claim_due(session, clock.now(), "w1", limit=10)
        given_up = sync.not_synced(session, item, clock.now(), "MALFORMED_ID", busy=False)
        assert given_up == (attempt == sync.GIVE_UP_AFTER)
        clock.set(item.next_at)
    assert item.outcome == SyncOutcome.FAILED and sync.status(session).failed[0].last_error == "MALFORMED_ID"


def test_released_items_are_due_again_at_once_without_using_a_try(
    session: Session, task: Send, clock: FixedClock, salesforce_on: None
) -> None:
    sync.record(session, SyncEvent.TASK_QUEUED, [task.id], clock.now())
    (item,) = sync.claim_due(session, clock.now(), "w1", limit=10)
    sync.release(session, [item])
    (again,) = sync.claim_due(session, clock.now(), "w2", limit=10)
    assert again.attempts == 1 and again.claimed_by == "w2"
