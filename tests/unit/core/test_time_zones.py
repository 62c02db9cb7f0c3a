"""Time zones and clocks: recipient zones and daylight saving (spec: "Time zones and
clocks"). Europe/Stockholm springs forward on 2026-03-29 (02:00 -> 03:00) and falls
back on 2026-10-25 (03:00 -> 02:00); America/New_York on 2026-03-08 and 2026-11-01."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.core.rules import UTC, SendIn, first_due, resume, wall_time, zone_for

from .support import NEW_YORK, STOCKHOLM, at, calendar, run, steps, wall, walls


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- daylight saving ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "time", "expected"),
    [
        (STOCKHOLM, "2026-03-29", "02:30", "2026-03-29 01:30"),  # does not exist: 03:30 CEST
        (STOCKHOLM, "2026-10-25", "02:30", "2026-10-25 00:30"),  # twice: the first, CEST
        (NEW_YORK, "2026-03-08", "02:30", "2026-03-08 07:30"),  # does not exist: 03:30 EDT
        (NEW_YORK, "2026-11-01", "01:30", "2026-11-01 05:30"),  # twice: the first, EDT
        (STOCKHOLM, "2026-03-29", "09:00", "2026-03-29 07:00"),  # an ordinary time that day
        (STOCKHOLM, "2026-10-25", "09:00", "2026-10-25 08:00"),
    ],
)
def test_a_missing_wall_time_moves_forward_by_the_gap_and_an_ambiguous_one_takes_the_first(
    zone: ZoneInfo, day: str, time: str, expected: str
) -> None:
    instant = wall_time(dt.date.fromisoformat(day), dt.time.fromisoformat(time), zone)
    assert instant == utc(expected)
    assert instant.tzinfo is UTC


def test_a_step_at_a_time_that_does_not_exist_goes_out_after_the_gap() -> None:
    dues = run(steps("1 at_time 09:00", "3 at_time 02:30"), calendar(), at("2026-03-27 08:00"))
    assert walls(dues) == ["Fri 2026-03-27 09:00", "Sun 2026-03-29 03:30"]


def test_a_step_at_an_ambiguous_time_goes_out_once_at_the_first_occurrence() -> None:
    dues = run(steps("1 at_time 09:00", "3 at_time 02:30"), calendar(), at("2026-10-23 08:00"))
    assert dues[1] == utc("2026-10-25 00:30")
    assert wall(dues[1]) == "Sun 2026-10-25 02:30"


@pytest.mark.parametrize(
    ("zone", "launch", "expected_utc"),
    [
        (STOCKHOLM, "2026-03-27 08:00", ["08:00", "08:00", "07:00", "07:00"]),
        (STOCKHOLM, "2026-10-23 08:00", ["07:00", "07:00", "08:00", "08:00"]),
        (NEW_YORK, "2026-03-06 08:00", ["14:00", "14:00", "13:00", "13:00"]),
        (NEW_YORK, "2026-10-30 08:00", ["13:00", "13:00", "14:00", "14:00"]),
    ],
)
def test_a_campaign_that_spans_a_dst_change_keeps_its_wall_clock_times(
    zone: ZoneInfo, launch: str, expected_utc: list[str]
) -> None:
    campaign = steps("1 at_time 09:00", "2 at_time 09:00", "3 at_time 09:00", "4 at_time 09:00")
    dues = run(campaign, calendar(zone), at(launch, zone))
    assert [due.astimezone(zone).strftime("%H:%M") for due in dues] == ["09:00"] * 4
    assert [due.strftime("%H:%M") for due in dues] == expected_utc


@pytest.mark.parametrize(
    ("send_at", "day_3"), [("2026-03-27 15:00", "2026-03-29 13:00"), ("2026-10-23 15:00", "2026-10-25 14:00")]
)
def test_same_as_previous_keeps_the_local_time_across_a_dst_change(send_at: str, day_3: str) -> None:
    dues = run(steps("1 choose", "3 same_as_previous"), calendar(), at("2026-03-01 08:00"), at(send_at))
    assert wall(dues[1]).endswith("15:00")
    assert dues[1] == utc(day_3)


def test_same_as_previous_after_the_second_0230_of_a_fall_back_night_takes_02_30() -> None:
    # The rep chose 02:30 CET, the second 02:30 of that night.
    dues = run(steps("1 choose", "2 same_as_previous"), calendar(), at("2026-10-24 20:00"), utc("2026-10-25 01:30"))
    assert walls(dues) == ["Sun 2026-10-25 02:30", "Mon 2026-10-26 02:30"]
    assert dues[1] == utc("2026-10-26 01:30")


def test_skip_weekends_in_new_york_across_spring_forward() -> None:
    cal = calendar(NEW_YORK, skip_weekends=True)
    dues = run(steps("1 at_time 10:00", "2 at_time 10:00", "3 same_as_previous"), cal, at("2026-03-06 08:00", NEW_YORK))
    assert walls(dues, NEW_YORK) == ["Fri 2026-03-06 10:00", "Mon 2026-03-09 10:00", "Tue 2026-03-10 10:00"]
    assert [due.hour for due in dues] == [15, 14, 14]


def test_resume_across_a_dst_change_keeps_the_wall_clock_time() -> None:
    due, moved = resume(
        calendar(), at("2026-03-28 09:00"), paused_at=at("2026-03-27 12:00"), resumed_at=at("2026-03-30 08:00")
    )
    assert moved == 3
    assert wall(due) == "Tue 2026-03-31 09:00"


# --- recipient time zones -------------------------------------------------------


@pytest.mark.parametrize(
    ("send_in", "person_zone", "expected"),
    [
        (SendIn.RECIPIENT, "America/New_York", "America/New_York"),
        (SendIn.RECIPIENT, None, "Europe/Stockholm"),  # no zone of their own: the campaign's
        (SendIn.RECIPIENT, "", "Europe/Stockholm"),
        (SendIn.CAMPAIGN, "America/New_York", "Europe/Stockholm"),
    ],
)
def test_wall_clock_times_are_in_the_persons_zone_only_with_send_in_recipient(
    send_in: SendIn, person_zone: str | None, expected: str
) -> None:
    assert zone_for("Europe/Stockholm", send_in, person_zone) == ZoneInfo(expected)


def test_with_send_in_recipient_a_step_goes_out_at_its_time_on_the_persons_clock() -> None:
    campaign = steps("1 at_time 09:00", "2 at_time 09:00")
    zone = zone_for("Europe/Stockholm", SendIn.RECIPIENT, "America/New_York")
    dues = run(campaign, calendar(zone), at("2026-12-02 12:00"))  # 06:00 in New York
    assert walls(dues, NEW_YORK) == ["Wed 2026-12-02 09:00", "Thu 2026-12-03 09:00"]
    assert walls(dues) == ["Wed 2026-12-02 15:00", "Thu 2026-12-03 15:00"]


def test_with_send_in_recipient_day_1_is_the_persons_date() -> None:
    # 23:00 in Stockholm is still 17:00 in New York: day 1 is Wednesday there.
    zone = zone_for("Europe/Stockholm", SendIn.RECIPIENT, "America/New_York")
    due, day_one = first_due(steps("1 at_time 18:00"), calendar(zone), at("2026-12-02 23:00"))
    assert day_one == dt.date(2026, 12, 2)
    assert wall(due, NEW_YORK) == "Wed 2026-12-02 18:00"
