"""Which date a day falls on (spec: "Which date a day falls on")."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.core.rules import Progress, add_days, day_date, days_between, first_due

from .support import at, calendar, run, steps, wall, walls

DAILY = steps(
    "1 at_time 09:00", "2 at_time 09:00", "3 at_time 09:00", "4 at_time 09:00", "6 at_time 09:00", "7 at_time 09:00"
)


def test_day_1_is_the_local_date_of_the_first_steps_due_time() -> None:
    # 23:30 UTC on Wednesday is already Thursday in Stockholm.
    campaign = steps("1 choose", "2 at_time 09:00")
    dues = run(campaign, calendar(), at("2026-12-02 10:00"), dt.datetime(2026, 12, 2, 23, 30, tzinfo=dt.UTC))
    assert walls(dues) == ["Thu 2026-12-03 00:30", "Fri 2026-12-04 09:00"]


def test_a_day_is_a_position_not_a_gap() -> None:
    dues = run(
        steps("1 at_time 09:00", "3 at_time 09:00", "3 at_time 10:00", "4 at_time 09:00"),
        calendar(),
        at("2026-12-02 08:00"),
    )
    assert walls(dues) == [
        "Wed 2026-12-02 09:00",
        "Fri 2026-12-04 09:00",
        "Fri 2026-12-04 10:00",
        "Sat 2026-12-05 09:00",
    ]


def test_without_skip_weekends_every_calendar_day_counts() -> None:
    dues = run(DAILY, calendar(), at("2026-12-04 08:00"))  # a Friday
    assert walls(dues) == [
        "Fri 2026-12-04 09:00",
        "Sat 2026-12-05 09:00",
        "Sun 2026-12-06 09:00",
        "Mon 2026-12-07 09:00",
        "Wed 2026-12-09 09:00",
        "Thu 2026-12-10 09:00",
    ]


def test_with_skip_weekends_saturdays_and_sundays_are_not_days() -> None:
    dues = run(DAILY, calendar(skip_weekends=True), at("2026-12-04 08:00"))  # a Friday
    assert walls(dues) == [
        "Fri 2026-12-04 09:00",
        "Mon 2026-12-07 09:00",
        "Tue 2026-12-08 09:00",
        "Wed 2026-12-09 09:00",
        "Fri 2026-12-11 09:00",
        "Mon 2026-12-14 09:00",
    ]


@pytest.mark.parametrize("launch", ["2026-12-05 08:00", "2026-12-06 20:00"], ids=["saturday", "sunday"])
def test_with_skip_weekends_a_weekend_launch_moves_day_1_to_monday(launch: str) -> None:
    dues = run(steps("1 at_time 09:00", "2 at_time 09:00"), calendar(skip_weekends=True), at(launch))
    assert walls(dues) == ["Mon 2026-12-07 09:00", "Tue 2026-12-08 09:00"]


def test_without_skip_weekends_a_weekend_launch_starts_that_day() -> None:
    dues = run(steps("1 at_time 09:00", "2 at_time 09:00"), calendar(), at("2026-12-05 08:00"))
    assert walls(dues) == ["Sat 2026-12-05 09:00", "Sun 2026-12-06 09:00"]


def test_with_skip_weekends_a_choose_time_on_a_weekend_is_honoured_as_picked() -> None:
    campaign = steps("1 choose", "1 task", "2 at_time 09:00", "3 at_time 09:00")
    dues = run(campaign, calendar(skip_weekends=True), at("2026-12-02 10:00"), at("2026-12-05 11:00"))
    assert walls(dues) == [
        "Sat 2026-12-05 11:00",  # as picked
        "Sat 2026-12-05 11:00",  # a day-1 step goes right after it
        "Mon 2026-12-07 09:00",  # day 2 is the next business day
        "Tue 2026-12-08 09:00",
    ]


def test_with_skip_weekends_an_at_time_override_on_a_weekend_is_honoured_as_picked() -> None:
    due, day_one = first_due(
        steps("1 at_time 09:00"), calendar(skip_weekends=True), at("2026-12-02 10:00"), at("2026-12-06 18:00")
    )
    assert wall(due) == "Sun 2026-12-06 18:00"
    assert day_one == dt.date(2026, 12, 6)


def test_with_skip_weekends_a_day_1_task_on_a_saturday_launch_is_queued_monday_at_its_time() -> None:
    due, _ = first_due(steps("1 task 11:00"), calendar(skip_weekends=True), at("2026-12-05 10:00"))
    assert wall(due) == "Mon 2026-12-07 11:00"
    due, _ = first_due(steps("1 task"), calendar(skip_weekends=True, task_time="08:15"), at("2026-12-05 10:00"))
    assert wall(due) == "Mon 2026-12-07 08:15"


def test_with_skip_weekends_a_day_1_task_on_a_weekday_launch_is_queued_at_launch() -> None:
    due, _ = first_due(steps("1 task 11:00"), calendar(skip_weekends=True), at("2026-12-04 16:20"))
    assert wall(due) == "Fri 2026-12-04 16:20"


def test_an_at_time_already_past_on_a_friday_evening_still_counts_friday_as_day_1() -> None:
    dues = run(steps("1 at_time 09:00", "2 at_time 09:00"), calendar(skip_weekends=True), at("2026-12-04 22:00"))
    assert walls(dues) == ["Fri 2026-12-04 22:00", "Mon 2026-12-07 09:00"]


@pytest.mark.parametrize(
    ("start", "count", "skip", "expected"),
    [
        ("2026-12-02", 3, False, "2026-12-05"),
        ("2026-12-02", 3, True, "2026-12-07"),  # Wed + 3 business days = Mon
        ("2026-12-04", 1, True, "2026-12-07"),  # Fri + 1 = Mon
        ("2026-12-04", 5, True, "2026-12-11"),  # a week of business days
        ("2026-12-05", 0, True, "2026-12-05"),  # a honoured Saturday stays day 1
        ("2026-12-05", 1, True, "2026-12-07"),  # and its day 2 is Monday
        ("2026-12-31", 1, True, "2027-01-01"),
    ],
)
def test_add_days_counts_business_days_with_skip_weekends(start: str, count: int, skip: bool, expected: str) -> None:
    assert add_days(dt.date.fromisoformat(start), count, skip) == dt.date.fromisoformat(expected)


@pytest.mark.parametrize(
    ("start", "end", "skip", "expected"),
    [
        ("2026-12-02", "2026-12-02", False, 0),
        ("2026-12-02", "2026-12-01", False, 0),  # early is not negative
        ("2026-12-04", "2026-12-07", False, 3),
        ("2026-12-04", "2026-12-07", True, 1),  # Fri -> Mon is one business day
        ("2026-12-04", "2026-12-06", True, 0),  # Fri -> Sun: no business day in between
        ("2026-12-05", "2026-12-07", True, 1),  # honoured Sat -> Mon
        ("2026-12-02", "2026-12-16", True, 10),
    ],
)
def test_days_between_counts_the_days_after_start_up_to_end(start: str, end: str, skip: bool, expected: int) -> None:
    assert days_between(dt.date.fromisoformat(start), dt.date.fromisoformat(end), skip) == expected


def test_day_date_adds_the_days_the_enrollment_moved() -> None:
    progress = Progress(dt.date(2026, 12, 2), shift_days=2)
    assert day_date(progress, 1, calendar()) == dt.date(2026, 12, 4)
    assert day_date(progress, 3, calendar()) == dt.date(2026, 12, 6)
    assert day_date(progress, 3, calendar(skip_weekends=True)) == dt.date(2026, 12, 8)
