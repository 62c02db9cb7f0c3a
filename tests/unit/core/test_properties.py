"""Property tests over random valid campaigns, launch times, zones and lateness.

Every step falls on its own day (or later, only because the step before it was
late), never before the step before it, in order; with skip_weekends only a picked
time puts mail on a weekend; every due time is aware UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.rules import (
    UTC,
    Calendar,
    Done,
    Progress,
    SendOption,
    Step,
    day_date,
    first_due,
    local_date,
    next_due,
    preview,
    record_done,
    step_problems,
)

# Zones with DST on both hemispheres, a 30-minute DST (Lord Howe), a midnight
# change (Santiago) and none at all.
ZONES = ["UTC", "Europe/Stockholm", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"]
# Days close to DST changes, so they come up often.
DST_DAYS = [
    dt.date(2026, 3, 29),
    dt.date(2026, 10, 25),
    dt.date(2026, 3, 8),
    dt.date(2026, 11, 1),
    dt.date(2026, 4, 5),
    dt.date(2026, 9, 6),
]

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

times = st.builds(dt.time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))


@dataclass(frozen=True)
class Launch:
    steps: tuple[Step, ...]
    calendar: Calendar
    launched_at: dt.datetime
    send_at: dt.datetime | None


@st.composite
def campaigns(draw: st.DrawFn) -> tuple[Step, ...]:
    first = draw(st.sampled_from([SendOption.CHOOSE, SendOption.AT_TIME, SendOption.TASK]))
    steps = [
        Step(
            1,
            first,
            draw(times)
            if first is SendOption.AT_TIME
            else draw(st.none() | times)
            if first is SendOption.TASK
            else None,
        )
    ]
    day = 1
    for _ in range(draw(st.integers(0, 7))):
        day += draw(st.sampled_from([0, 0, 1, 1, 2, 3, 7]))
        send = draw(
            st.sampled_from([SendOption.AT_TIME, SendOption.TASK, SendOption.SAME_AS_PREVIOUS, SendOption.THREAD])
        )
        time = (
            draw(times) if send is SendOption.AT_TIME else draw(st.none() | times) if send is SendOption.TASK else None
        )
        steps.append(Step(day, send, time))
    assert step_problems(steps) == []
    return tuple(steps)


@st.composite
def launches(draw: st.DrawFn) -> Launch:
    steps = draw(campaigns())
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    calendar = Calendar(zone, draw(st.booleans()), draw(times))
    near_dst = st.sampled_from(DST_DAYS).flatmap(
        lambda day: st.integers(-6, 1).map(lambda n: day + dt.timedelta(days=n))
    )
    day = draw(near_dst | st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31)))
    launched_at = dt.datetime.combine(day, draw(times), tzinfo=UTC) + dt.timedelta(seconds=draw(st.integers(0, 59)))
    later = st.integers(0, 20 * 24 * 60).map(lambda minutes: launched_at + dt.timedelta(minutes=minutes))
    if steps[0].send is SendOption.CHOOSE:
        send_at = draw(later)
    elif steps[0].send is SendOption.AT_TIME:
        send_at = draw(st.none() | later)
    else:
        send_at = None
    return Launch(steps, calendar, launched_at, send_at)


def picked(launch: Launch) -> bool:
    return launch.send_at is not None


@PROPERTY_SETTINGS
@given(launches())
def test_in_a_preview_every_step_falls_on_its_own_day_in_order_never_before_the_step_before(launch: Launch) -> None:
    planned = preview(launch.steps, launch.calendar, launch.launched_at, launch.send_at)
    zone = launch.calendar.zone
    day_one = local_date(planned[0].due, zone)
    progress = Progress(day_one)

    assert [p.position for p in planned] == list(range(1, len(launch.steps) + 1))
    assert all(p.due.tzinfo is UTC for p in planned)
    assert planned[0].due >= launch.launched_at
    if launch.send_at is not None:
        assert planned[0].due == launch.send_at
    for before, p in zip(planned, planned[1:]):
        assert p.due >= before.due, "never before the step before it"
        on_own_day = local_date(p.due, zone) == day_date(progress, p.step.day, launch.calendar)
        assert on_own_day or p.due == before.due, "on its own day, or right after a late step before it"
        assert p.thread_of == (p.position - 1 if p.step.send is SendOption.THREAD else None)


@PROPERTY_SETTINGS
@given(launches())
def test_with_skip_weekends_only_a_picked_day_1_is_on_a_weekend(launch: Launch) -> None:
    calendar = Calendar(launch.calendar.zone, True, launch.calendar.task_time)
    for p in preview(launch.steps, calendar, launch.launched_at, launch.send_at):
        if local_date(p.due, calendar.zone).weekday() >= 5:
            assert picked(launch) and p.step.day == 1, f"step {p.position} on a weekend"


lateness = st.one_of(
    st.just(dt.timedelta(0)),
    st.integers(1, 180).map(lambda minutes: dt.timedelta(minutes=minutes)),
    st.integers(1, 10 * 24 * 60).map(lambda minutes: dt.timedelta(minutes=minutes)),
)


@PROPERTY_SETTINGS
@given(launches(), st.data())
def test_when_steps_are_done_late_nothing_catches_up(launch: Launch, data: st.DataObject) -> None:
    steps, calendar, zone = launch.steps, launch.calendar, launch.calendar.zone
    due, day_one = first_due(steps, calendar, launch.launched_at, launch.send_at)
    progress = Progress(day_one)
    for position in range(2, len(steps) + 1):
        done = Done(position - 1, due + data.draw(lateness), sent=data.draw(st.booleans()))
        progress = record_done(steps, calendar, progress, done)
        due = next_due(steps, calendar, position, progress, ready_at=done.at)
        step, before = steps[position - 1], steps[position - 2]

        assert due.tzinfo is UTC
        assert due >= done.at, "never before the step before it was done"
        on_own_day = local_date(due, zone) == day_date(progress, step.day, calendar)
        assert on_own_day or due == done.at, "on its own (moved) day, or right after a late step before it"
        if step.day > before.day:
            # No catch-up: a later day never lands on the date the step before was done.
            assert local_date(due, zone) > local_date(done.at, zone)
