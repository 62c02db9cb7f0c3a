"""Which campaigns are refused: the placement rules of the five send options."""

from __future__ import annotations

import pytest

from bot.core.rules import step_problems

from .support import steps


def problems(*texts: str) -> list[str]:
    return [str(problem) for problem in step_problems(steps(*texts))]


def test_a_campaign_using_all_five_send_options_in_their_places_is_accepted() -> None:
    assert problems("1 choose", "2 at_time 08:30", "2 same_as_previous", "4 thread", "4 task") == []


def test_a_task_may_have_its_own_time_or_none() -> None:
    assert problems("1 task", "2 task 14:00") == []


def test_at_time_and_task_may_come_first() -> None:
    assert problems("1 at_time 09:00") == []
    assert problems("1 task") == []


def test_choose_is_allowed_on_the_first_step_only() -> None:
    assert problems("1 at_time 09:00", "2 choose") == ["step 2, send: choose is allowed on the first step only"]


@pytest.mark.parametrize("send", ["same_as_previous", "thread"])
def test_same_as_previous_and_thread_are_not_allowed_first(send: str) -> None:
    assert problems(f"1 {send}", "2 at_time 09:00") == [f"step 1, send: {send} is not allowed on the first step"]


def test_at_time_needs_a_time() -> None:
    assert problems("1 at_time 09:00", "2 at_time") == ["step 2, time: at_time needs a time (HH:MM)"]


@pytest.mark.parametrize(
    ("campaign", "problem"),
    [
        (("1 choose 10:00",), "step 1, time: choose takes no time"),
        (("1 at_time 09:00", "2 same_as_previous 10:00"), "step 2, time: same_as_previous takes no time"),
        (("1 at_time 09:00", "2 thread 10:00"), "step 2, time: thread takes no time"),
    ],
)
def test_options_that_take_their_time_elsewhere_refuse_a_time(campaign: tuple[str, ...], problem: str) -> None:
    assert problems(*campaign) == [problem]


@pytest.mark.parametrize("day", [0, -1])
def test_a_day_is_1_or_more(day: int) -> None:
    assert problems("1 at_time 09:00", f"{day} at_time 09:00") == [f"step 2, day: must be 1 or more, not {day}"]


def test_the_first_step_is_on_day_1() -> None:
    assert problems("2 at_time 09:00", "3 at_time 09:00") == ["step 1, day: the first step is on day 1, not day 2"]


def test_days_are_in_order() -> None:
    assert problems("1 at_time 09:00", "3 at_time 09:00", "2 at_time 09:00") == [
        "step 3, day: day 2 comes after day 3: days are out of order"
    ]


def test_several_steps_may_share_a_day() -> None:
    assert problems("1 at_time 09:00", "1 task", "1 same_as_previous", "3 at_time 10:00", "3 thread") == []


def test_a_campaign_needs_a_step() -> None:
    assert [str(p) for p in step_problems([])] == ["step 1, steps: a campaign needs at least one step"]


def test_every_problem_is_reported_in_step_order() -> None:
    assert problems("1 thread", "2 choose", "1 at_time") == [
        "step 1, send: thread is not allowed on the first step",
        "step 2, send: choose is allowed on the first step only",
        "step 3, day: day 1 comes after day 2: days are out of order",
        "step 3, time: at_time needs a time (HH:MM)",
    ]
