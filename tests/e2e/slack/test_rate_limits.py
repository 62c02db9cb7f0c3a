"""Slack answers 429 to bursts of messages: posting slows down and retries, and nothing is dropped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.delivery.routes import Relay
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import OutboxTransport
from bot.slack.client import RATE_LIMIT_RETRIES
from bot.slack.context import Deps
from bot.slack.notifier import SlackNotifier
from bot.store.models import Send
from tests.support.factories import REP_ID, make_rep
from tests.support.fake_slack import FakeSlack
from tests.support.sends import make_task


def test_a_burst_of_due_tasks_reaches_the_rep_once_each_through_429s(
    session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack, deps: Deps, tmp_path: Path
) -> None:
    make_rep(session)
    for n in range(12):
        make_task(session, due_at=clock.now(), email=f"person{n}@example.com", status="planned")
    fake_slack.rate_limit("chat.postMessage", times=4, retry_after=0)

    result = Scheduler(deps.engine, clock, Relay(lambda: OutboxTransport(tmp_path)), notifier, deps.settings).tick()

    assert result.tasks == 12
    assert fake_slack.limited.count("chat.postMessage") == 4  # Slack did push back
    # (10:00 in the rep's zone on a weekday: the day's digest goes out in the same pass.)
    posted = [call for call in fake_slack.calls_to("chat.postMessage") if call["text"].startswith("Email task")]
    assert len(posted) == 12 and all(call["channel"] == REP_ID for call in posted)
    session.expire_all()
    sends = session.exec(select(Send)).all()
    assert {send.status for send in sends} == {"queued"}
    # Every task message is on record, so its buttons can update it in place later.
    assert len({(send.slack_channel, send.slack_ts) for send in sends}) == 12
    assert all(send.slack_ts for send in sends)


def test_a_task_slack_refused_past_every_retry_is_posted_again_later(
    session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack, deps: Deps, tmp_path: Path
) -> None:
    clock.set(dt.datetime(2026, 12, 2, 5, 0, tzinfo=dt.UTC))  # 06:00 for the rep: before the digest
    make_rep(session)
    make_task(session, due_at=clock.now(), status="planned")
    fake_slack.rate_limit(
        "chat.postMessage", times=RATE_LIMIT_RETRIES + 1, retry_after=0
    )  # the first post, and every retry
    scheduler = Scheduler(deps.engine, clock, Relay(lambda: OutboxTransport(tmp_path)), notifier, deps.settings)

    assert scheduler.tick().tasks == 1
    assert fake_slack.calls_to("chat.postMessage") == []  # Slack never took it

    clock.advance(minutes=5)
    scheduler.tick()
    assert fake_slack.calls_to("chat.postMessage") == []  # it may still be on its way: not twice

    clock.advance(minutes=11)
    scheduler.tick()
    scheduler.tick()
    posted = fake_slack.calls_to("chat.postMessage")
    assert len(posted) == 1 and posted[0]["text"].startswith("Email task")
    session.expire_all()
    assert session.exec(select(Send)).one().slack_ts


def test_a_task_slack_keeps_refusing_is_tried_after_15_minutes_1_hour_and_4_hours_then_left_to_the_lists(
    session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack, deps: Deps, tmp_path: Path
) -> None:
    clock.set(dt.datetime(2026, 12, 5, 5, 0, tzinfo=dt.UTC))  # a Saturday: no digest to post meanwhile
    make_rep(session)
    make_task(session, due_at=clock.now(), status="planned")
    fake_slack.fail("chat.postMessage", "internal_error", times=1000)
    scheduler = Scheduler(deps.engine, clock, OutboxTransport(tmp_path), notifier, deps.settings)

    def tries_after(minutes: int) -> int:
        clock.advance(minutes=minutes)
        scheduler.tick()
        return len(fake_slack.calls_to("chat.postMessage"))

    assert scheduler.tick().tasks == 1 and len(fake_slack.calls_to("chat.postMessage")) == 1
    assert [tries_after(14), tries_after(2), tries_after(1)] == [1, 2, 2]  # 15 minutes after the first
    assert [tries_after(58), tries_after(2)] == [2, 3]  # an hour after that
    assert [tries_after(230), tries_after(15)] == [3, 4]  # four hours after that
    assert [tries_after(60 * 24), tries_after(60 * 24 * 7)] == [4, 4]  # then no more
    session.expire_all()
    send = session.exec(select(Send)).one()
    assert (send.status, send.slack_ts, send.slack_reposts) == ("queued", None, 3)
    session.commit()  # the read ends (on SQLite an open one blocks the notifier)

    # Still in the lists: the Home tab shows it.
    notifier.publish_home(REP_ID)
    assert "1 task waiting for you" in str(fake_slack.home[REP_ID]["blocks"])
