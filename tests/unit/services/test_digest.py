"""The daily digest: once per rep per local day, in the rep's zone, on DST days, with two workers."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.delivery.routes import Relay
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import OutboxTransport
from bot.services.digest import fired_today
from bot.settings import load_settings
from bot.store.models import Digest
from tests.support.due_emails import due_email
from tests.support.factories import make_rep
from tests.support.notifier import RecordingNotifier
from tests.support.sends import make_task

STOCKHOLM = ZoneInfo("Europe/Stockholm")
UTC = dt.UTC


def scheduler(
    engine: Engine, clock: FixedClock, notifier: RecordingNotifier, folder: Path, cron: str, worker: str = "w1"
) -> Scheduler:
    settings = load_settings(digest_cron=cron)
    return Scheduler(engine, clock, Relay(lambda: OutboxTransport(folder)), notifier, settings, worker_id=worker)


def posts_during(
    engine: Engine, clock: FixedClock, notifier: RecordingNotifier, folder: Path, cron: str, day: dt.date
) -> list[dt.datetime]:
    """Tick every 10 minutes through the local day in Stockholm; the instants a digest was posted."""
    start = dt.datetime.combine(day, dt.time(0), STOCKHOLM).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), STOCKHOLM).astimezone(UTC)
    worker = scheduler(engine, clock, notifier, folder, cron)
    posted = []
    clock.set(start)
    while clock.now() < end:
        if worker.tick().digests:
            posted.append(clock.now())
        clock.advance(minutes=10)
    return posted


@pytest.mark.parametrize(
    ("day", "cron", "expected"),
    [
        # Autumn: 02:30 happens twice (CEST, then CET); croniter fires at both.
        (dt.date(2026, 10, 25), "30 2 * * *", dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        (dt.date(2026, 10, 25), "0 8 * * *", dt.datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),
        # Spring: 02:30 does not exist; croniter fires at 03:00 CEST instead.
        (dt.date(2026, 3, 29), "30 2 * * *", dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        (dt.date(2026, 3, 29), "0 8 * * *", dt.datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),
    ],
    ids=["autumn-0230", "autumn-0800", "spring-0230", "spring-0800"],
)
def test_one_digest_per_rep_on_daylight_saving_days(
    engine: Engine, session: Session, clock: FixedClock, tmp_path: Path, day: dt.date, cron: str, expected: dt.datetime
):
    make_rep(session, timezone="Europe/Stockholm")
    make_task(session, due_at=dt.datetime.combine(day, dt.time(0), UTC) - dt.timedelta(days=1))
    notifier = RecordingNotifier()

    posted = posts_during(engine, clock, notifier, tmp_path, cron, day)

    assert posted == [expected]
    assert notifier.told("digest") == ["U0REP0001"]
    assert session.exec(select(Digest.rep_id, Digest.local_date)).all() == [("U0REP0001", day)]


def test_croniter_fires_twice_on_the_autumn_change_and_both_fall_on_the_same_local_day():
    first = fired_today("30 2 * * *", dt.datetime(2026, 10, 25, 0, 45, tzinfo=UTC), STOCKHOLM)
    second = fired_today("30 2 * * *", dt.datetime(2026, 10, 25, 1, 45, tzinfo=UTC), STOCKHOLM)

    assert first is not None and second is not None
    assert first.astimezone(UTC) != second.astimezone(UTC)
    assert first.date() == second.date() == dt.date(2026, 10, 25)


def test_two_workers_at_the_same_moment_post_one_digest(
    engine: Engine, session: Session, clock: FixedClock, tmp_path: Path
):
    make_rep(session)
    make_task(session, due_at=clock.now() - dt.timedelta(days=1))
    notifier = RecordingNotifier()
    workers = [scheduler(engine, clock, notifier, tmp_path, "0 8 * * 1-5", worker=f"w{n}") for n in range(2)]
    go = threading.Barrier(2)

    def tick(worker: Scheduler) -> None:
        go.wait()
        worker.tick()

    threads = [threading.Thread(target=tick, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clock.advance(hours=3)
    for worker in workers:
        worker.tick()

    assert notifier.told("digest") == ["U0REP0001"]


def test_no_digest_when_there_is_nothing_to_list_and_none_later_that_day(
    engine: Engine, session: Session, clock: FixedClock, tmp_path: Path
):
    make_rep(session)
    due_email(session, clock.now() + dt.timedelta(days=1), "tomorrow@buyer.example")  # not today
    notifier = RecordingNotifier()
    worker = scheduler(engine, clock, notifier, tmp_path, "0 8 * * 1-5")

    worker.tick()
    make_task(session, due_at=clock.now())  # a task turns up in the afternoon
    clock.advance(hours=5)
    worker.tick()
    quiet = list(notifier.told("digest"))
    clock.advance(days=1)
    worker.tick()

    assert quiet == []
    assert notifier.told("digest") == ["U0REP0001"], "the next morning lists it"
    assert [(d.local_date, d.sent_at is None) for d in session.exec(select(Digest).order_by(Digest.local_date))] == [
        (dt.date(2026, 12, 2), True),
        (dt.date(2026, 12, 3), False),
    ]


def test_emails_planned_for_today_are_something_to_list(
    engine: Engine, session: Session, clock: FixedClock, tmp_path: Path
):
    make_rep(session)
    due_email(session, clock.now() + dt.timedelta(hours=5), "today@buyer.example")
    notifier = RecordingNotifier()

    scheduler(engine, clock, notifier, tmp_path, "0 8 * * 1-5").tick()

    assert notifier.told("digest") == ["U0REP0001"]


def test_the_digest_comes_at_eight_in_the_reps_own_time_zone(
    engine: Engine, session: Session, clock: FixedClock, tmp_path: Path
):
    make_rep(session, timezone="America/New_York")
    make_task(session, due_at=clock.now() - dt.timedelta(days=1))
    notifier = RecordingNotifier()
    worker = scheduler(engine, clock, notifier, tmp_path, "0 8 * * 1-5")

    new_york = ZoneInfo("America/New_York")
    clock.set(dt.datetime(2026, 12, 2, 7, 59, tzinfo=new_york))  # 13:59 in Stockholm
    worker.tick()
    before = list(notifier.told("digest"))
    clock.set(dt.datetime(2026, 12, 2, 8, 0, tzinfo=new_york))
    worker.tick()

    assert (before, notifier.told("digest")) == ([], ["U0REP0001"])


def test_no_digest_at_the_weekend_with_the_default_schedule(
    engine: Engine, session: Session, clock: FixedClock, tmp_path: Path
):
    make_rep(session)
    make_task(session, due_at=clock.now() - dt.timedelta(days=1))
    notifier = RecordingNotifier()
    clock.set(dt.datetime(2026, 12, 5, 12, 0, tzinfo=STOCKHOLM))  # a Saturday

    scheduler(engine, clock, notifier, tmp_path, load_settings().digest_cron).tick()

    assert notifier.told("digest") == []


def test_a_digest_slack_shows_nothing_for_is_not_counted_as_posted(
    engine: Engine, session: Session, clock: FixedClock, tmp_path: Path
):
    make_rep(session)
    make_task(session, due_at=clock.now() - dt.timedelta(days=1))
    notifier = RecordingNotifier(digest_shows=False)

    result = scheduler(engine, clock, notifier, tmp_path, "0 8 * * 1-5").tick()

    claimed = session.exec(select(Digest)).one()  # the day is taken: no second try
    assert result.digests == 0 and claimed.sent_at is None
    assert notifier.told("digest") == ["U0REP0001"]


def test_a_rep_without_a_slack_time_zone_gets_the_digest_in_the_campaigns(
    engine: Engine, session: Session, clock: FixedClock, tmp_path: Path
):
    make_rep(session, timezone=None)
    make_task(session, due_at=clock.now() - dt.timedelta(days=1))  # a Europe/Stockholm campaign
    notifier = RecordingNotifier()
    worker = scheduler(engine, clock, notifier, tmp_path, "0 8 * * 1-5")

    clock.set(dt.datetime(2026, 12, 2, 7, 59, tzinfo=STOCKHOLM))  # 06:59 UTC
    worker.tick()
    before = list(notifier.told("digest"))
    clock.set(dt.datetime(2026, 12, 2, 8, 0, tzinfo=STOCKHOLM))
    worker.tick()

    assert (before, notifier.told("digest")) == ([], ["U0REP0001"])
