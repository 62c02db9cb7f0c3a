"""Slack off the delivery path: Slack's 429s and outages never hold up an email, and nothing is lost.

The scheduler queues what reps are told (bot/slack/notices.py); the poster posts it
through the real SlackNotifier and its client, to the fake Slack. Time is the
injected clock: "hours" of outage pass in a loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bot.cli import main
from bot.clock import FixedClock
from bot.delivery.routes import Relay
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import SmtpTransport
from bot.services.notices import GIVE_UP_AFTER
from bot.settings import Settings
from bot.slack.notices import queued_slack
from bot.store.models import Notice, Send
from tests.support.due_emails import due_email
from tests.support.factories import REP_ID, make_rep
from tests.support.fake_slack import FakeSlack
from tests.support.sends import make_task
from tests.support.smtp_sink import SmtpSink

FEED = "C0FEED001"
NEVER = "0 0 1 1 *"  # no digest in these tests
OTHER_REP = "U0REP0002"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def settings(slack_settings: Settings) -> Settings:
    return slack_settings.model_copy(update={"feed_channel": FEED, "digest_cron": NEVER})


def scheduler(engine: Engine, clock: FixedClock, sink: SmtpSink, settings: Settings, notifier: object) -> Scheduler:
    return Scheduler(engine, clock, Relay(lambda: SmtpTransport(sink.url, timeout=5)), notifier, settings)


def dms(fake: FakeSlack, rep_id: str) -> list[str]:
    return [call["text"] for call in fake.calls_to("chat.postMessage") if call["channel"] == rep_id]


def feed_lines(fake: FakeSlack) -> list[str]:
    feed = [call["text"] for call in fake.calls_to("chat.postMessage") if call["channel"] == FEED]
    return [line for text in feed for line in text.split("\n")]


def stored(session: Session, sends: list[Send]) -> list[Send]:
    session.expire_all()
    fresh = [session.get(Send, send.id) for send in sends]
    session.commit()
    return fresh  # type: ignore[return-value]


def test_a_429_storm_during_a_batch_of_due_emails_does_not_hold_them_back(
    session: Session, engine: Engine, clock: FixedClock, fake_slack: FakeSlack, settings: Settings, sink: SmtpSink
) -> None:
    # Tasks due first: their messages used to go out between the batch's chunks of emails.
    tasks = [make_task(session, due_at=clock.now(), email=f"call{n}@buyer.example", status="planned") for n in range(3)]
    for n in range(30):  # two chunks
        due_email(session, clock.now(), f"person{n}@buyer.example")
    session.close()
    fake_slack.rate_limit("chat.postMessage", times=10_000, retry_after=30)
    notifier, poster = queued_slack(engine, settings, clock)

    result = scheduler(engine, clock, sink, settings, notifier).tick()

    assert (result.sent, result.tasks) == (30, 3)
    assert len(sink.messages) == 30
    # The pass never waited on Slack: it did not even call it.
    assert fake_slack.limited == [] and fake_slack.calls_to("chat.postMessage") == []

    assert poster.drain() == 0  # still refused: the poster stops at the first 429
    assert len(fake_slack.limited) == 1
    clock.advance(seconds=20)
    assert poster.drain() == 0 and len(fake_slack.limited) == 1  # Retry-After is respected

    fake_slack.rate_limit("chat.postMessage", times=0)  # the storm is over
    clock.advance(seconds=10)
    poster.drain()

    assert [text.startswith("Email task") for text in dms(fake_slack, REP_ID)] == [True] * 3
    assert all(task.slack_ts for task in stored(session, tasks))
    lines = feed_lines(fake_slack)
    assert sum(line.startswith("Task queued") for line in lines) == 3
    assert sum(line.startswith("Email sent") for line in lines) == 30  # none dropped by the storm
    assert len(fake_slack.calls_to("chat.postMessage")) == 3 + 3 + 1  # three tasks, their feed lines, one for the batch


def test_a_slack_outage_of_hours_loses_nothing_and_posts_nothing_twice(
    session: Session, engine: Engine, clock: FixedClock, fake_slack: FakeSlack, settings: Settings, sink: SmtpSink
) -> None:
    make_rep(session)
    make_rep(session, OTHER_REP, name="Sam Seller", email="sam@seller.example")
    tasks = {
        rep: [
            make_task(
                session,
                due_at=clock.now(),
                email=f"{rep}.{n}@buyer.example",
                rep_id=rep,
                status="planned",
                first_name=f"P{n}",
            )
            for n in range(3)
        ]
        for rep in (REP_ID, OTHER_REP)
    }
    for n in range(5):
        due_email(session, clock.now(), f"person{n}@buyer.example", first_name=f"Pat{n}")
    session.close()
    fake_slack.outage()
    notifier, poster = queued_slack(engine, settings, clock)
    loop = scheduler(engine, clock, sink, settings, notifier)

    loop.tick()
    poster.drain()
    assert len(sink.messages) == 5
    for _ in range(5 * 60):  # five hours down, a pass a minute
        clock.advance(minutes=1)
        loop.tick()  # also asks again, every 15 minutes, for the tasks Slack has not shown
        poster.drain()

    assert fake_slack.calls_to("chat.postMessage") == []
    assert len(fake_slack.refused) < 30  # growing delays (a try every pass would be 300)
    assert session.exec(select(func.count()).select_from(Notice)).one() == 6 + 1  # nothing queued twice
    session.commit()

    fake_slack.outage(False)
    clock.advance(hours=1)
    loop.tick()
    poster.drain()

    for rep, its_tasks in tasks.items():
        assert len(dms(fake_slack, rep)) == 3  # each task message once
        shown = stored(session, its_tasks)
        timestamps = [task.slack_ts for task in shown]
        assert all(timestamps) and timestamps == sorted(timestamps)  # in the order they became due
    lines = feed_lines(fake_slack)
    assert len(lines) == len(set(lines)) == 6 + 5
    assert session.exec(select(func.count()).select_from(Notice).where(col(Notice.done_at).is_(None))).one() == 0


def test_two_posters_post_each_notice_once_and_each_reps_in_order(
    session: Session, engine: Engine, clock: FixedClock, fake_slack: FakeSlack, settings: Settings
) -> None:
    reps = [REP_ID, OTHER_REP, "U0REP0003"]
    sends = {rep: make_task(session, due_at=clock.now(), email=f"{rep}@buyer.example", rep_id=rep) for rep in reps}
    notifier, first = queued_slack(engine, settings, clock)
    for n in range(15):
        for rep in reps:
            notifier.send_notice(sends[rep].id, f"note {n}")  # type: ignore[arg-type]
    _, second = queued_slack(engine, settings, clock)
    start = threading.Barrier(2)
    posted: list[int] = []

    def post(poster: object) -> None:
        start.wait()
        posted.append(poster.drain())  # type: ignore[attr-defined]

    threads = [threading.Thread(target=post, args=(poster,)) for poster in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sum(posted) == 45
    for rep in reps:
        assert [text.split(" (")[0] for text in dms(fake_slack, rep)] == [f"note {n}" for n in range(15)]


def test_a_notice_slack_refuses_for_what_it_is_is_given_up_after_a_few_tries_and_the_next_goes_on(
    session: Session, engine: Engine, clock: FixedClock, fake_slack: FakeSlack, settings: Settings
) -> None:
    send = make_task(session, due_at=clock.now())
    notifier, poster = queued_slack(engine, settings, clock)
    notifier.send_notice(send.id, "first")  # type: ignore[arg-type]
    notifier.send_notice(send.id, "second")  # type: ignore[arg-type]
    fake_slack.fail("chat.postMessage", "invalid_blocks", times=GIVE_UP_AFTER)

    for _ in range(GIVE_UP_AFTER):
        poster.drain()
        clock.advance(minutes=1)
    poster.drain()

    assert [text.split(" (")[0] for text in dms(fake_slack, REP_ID)] == ["first"] * GIVE_UP_AFTER + ["second"]
    first = session.exec(select(Notice).order_by(col(Notice.id))).first()
    assert first is not None and first.done_at is not None and first.last_error == "200 invalid_blocks"


def test_a_task_message_slack_refuses_is_tried_once_then_again_15_minutes_later(
    session: Session, engine: Engine, clock: FixedClock, fake_slack: FakeSlack, settings: Settings, sink: SmtpSink
) -> None:
    make_task(session, due_at=clock.now(), status="planned")
    session.close()
    fake_slack.fail("chat.postMessage", "invalid_blocks", times=1000)
    notifier, poster = queued_slack(engine, settings, clock)
    bot = scheduler(engine, clock, sink, settings, notifier)

    def tries_after(minutes: int) -> int:
        clock.advance(minutes=minutes)
        bot.tick()
        poster.drain()
        return len(dms(fake_slack, REP_ID))

    assert bot.tick().tasks == 1
    poster.drain()
    assert len(dms(fake_slack, REP_ID)) == 1
    assert [tries_after(1), tries_after(13), tries_after(2), tries_after(1)] == [1, 1, 2, 2], "once each time"


def test_bot_tick_posts_what_slack_refused_at_its_next_pass(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
    db_url: str,
    session: Session,
    clock: FixedClock,
    fake_slack: FakeSlack,
    sink: SmtpSink,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DATABASE_URL": db_url,
        "SMTP_URL": sink.url,
        "DIGEST_CRON": NEVER,
        "FEED_CHANNEL": FEED,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_API_URL": fake_slack.url,
    }.items():
        monkeypatch.setenv(name, value)
    task = make_task(session, due_at=clock.now(), status="planned")
    due_email(session, clock.now(), "pat@buyer.example")
    session.close()
    fake_slack.rate_limit("chat.postMessage", times=10_000, retry_after=0)

    assert main(["tick", "--now", "2026-12-02T09:00:00Z"]) == 0
    assert capsys.readouterr().out.strip() == "sent 1 email, queued 1 task, 0 failed"
    assert len(sink.messages) == 1 and fake_slack.calls_to("chat.postMessage") == []

    fake_slack.rate_limit("chat.postMessage", times=0)
    assert main(["tick", "--now", "2026-12-02T09:01:00Z"]) == 0

    assert [text.startswith("Email task") for text in dms(fake_slack, REP_ID)] == [True]
    assert sorted(feed_lines(fake_slack)) == [
        "Email sent: step 1 of “Q4 outreach” to Pat Buyer (Rita Rep)",
        "Task queued: step 1 of “Q4” for Ada Lovelace (Rita Rep)",
    ]
    assert stored(session, [task])[0].slack_ts
