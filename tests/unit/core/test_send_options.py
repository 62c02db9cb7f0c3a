"""When each send option makes a step due (spec: "Send options", "When a step is due")."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.core.rules import (
    UTC,
    Done,
    Progress,
    RuleError,
    StepKind,
    first_due,
    next_due,
    preview,
    record_done,
    thread_of,
)

from .support import at, calendar, run, steps, wall, walls

WORKED_EXAMPLE = steps("1 choose", "2 at_time 08:30", "2 same_as_previous", "4 thread", "4 task")


def test_the_worked_example_of_the_spec() -> None:
    planned = preview(WORKED_EXAMPLE, calendar(), launched_at=at("2026-12-02 10:00"), send_at=at("2026-12-02 15:00"))

    assert [wall(p.due) for p in planned] == [
        "Wed 2026-12-02 15:00",  # (1) the send-at the rep chose
        "Thu 2026-12-03 08:30",  # (2) day 2 at its time
        "Thu 2026-12-03 15:00",  # (3) same-day: takes day 1's time
        "Sat 2026-12-05 15:00",  # (4) latest earlier-day email: step 3 at 15:00
        "Sat 2026-12-05 15:00",  # (5) 09:00 is before step 4: right after step 4
    ]
    assert [p.thread_of for p in planned] == [None, None, None, 3, None]
    assert [p.step.kind for p in planned] == [StepKind.EMAIL] * 4 + [StepKind.TASK]
    assert planned[3].due == dt.datetime(2026, 12, 5, 14, 0, tzinfo=UTC)


# --- choose ---------------------------------------------------------------------


@pytest.mark.parametrize("first", ["choose", "at_time 09:00"])
def test_choose_and_the_at_time_override_are_due_at_the_send_at_the_rep_picked(first: str) -> None:
    due, day_one = first_due(steps(f"1 {first}"), calendar(), at("2026-12-02 10:00"), at("2026-12-09 07:45"))
    assert wall(due) == "Wed 2026-12-09 07:45"
    assert day_one == dt.date(2026, 12, 9)


def test_choose_needs_a_send_at_at_launch() -> None:
    with pytest.raises(RuleError, match="the first step is choose: a send-at date and time is required"):
        first_due(steps("1 choose"), calendar(), at("2026-12-02 10:00"))


@pytest.mark.parametrize("first", ["choose", "at_time 09:00"])
def test_a_send_at_in_the_past_is_refused(first: str) -> None:
    with pytest.raises(RuleError, match="the send-at time is in the past"):
        first_due(steps(f"1 {first}"), calendar(), at("2026-12-02 10:00"), at("2026-12-02 09:59"))


def test_choose_accepts_right_now() -> None:
    due, _ = first_due(steps("1 choose"), calendar(), at("2026-12-02 10:00"), at("2026-12-02 10:00"))
    assert wall(due) == "Wed 2026-12-02 10:00"


@pytest.mark.parametrize("day", [1, 2])
def test_choose_cannot_be_planned_after_the_first_step(day: int) -> None:
    campaign = steps("1 at_time 09:00", f"{day} choose")
    progress = Progress(dt.date(2026, 12, 2), done=(Done(1, at("2026-12-02 09:00")),))
    with pytest.raises(RuleError, match="step 2: choose is allowed on the first step only"):
        next_due(campaign, calendar(), 2, progress, ready_at=at("2026-12-02 09:00"))


@pytest.mark.parametrize("send", ["same_as_previous", "thread"])
def test_same_as_previous_and_thread_cannot_start_a_campaign(send: str) -> None:
    with pytest.raises(RuleError, match=f"{send} is not allowed on the first step"):
        first_due(steps(f"1 {send}"), calendar(), at("2026-12-02 10:00"))


# --- at_time --------------------------------------------------------------------


def test_at_time_is_due_on_its_day_at_its_time() -> None:
    dues = run(steps("1 at_time 09:00", "3 at_time 16:15"), calendar(), at("2026-12-02 08:00"))
    assert walls(dues) == ["Wed 2026-12-02 09:00", "Fri 2026-12-04 16:15"]


def test_at_time_already_past_at_launch_is_due_immediately() -> None:
    # Launching at 14:00 a campaign whose day-1 email is at 09:00.
    due, day_one = first_due(steps("1 at_time 09:00"), calendar(), at("2026-12-02 14:00"))
    assert wall(due) == "Wed 2026-12-02 14:00"
    assert day_one == dt.date(2026, 12, 2)


def test_at_time_already_past_when_the_step_becomes_schedulable_is_due_immediately() -> None:
    # The day-2 task held up the 09:00 email until 11:20 the same day.
    campaign = steps("1 at_time 09:00", "2 task", "2 at_time 09:00")
    dues = run(
        campaign,
        calendar(),
        at("2026-12-02 08:00"),
        done_at=lambda position, due: Done(position, at("2026-12-03 11:20") if position == 2 else due),
    )
    assert walls(dues) == ["Wed 2026-12-02 09:00", "Thu 2026-12-03 09:00", "Thu 2026-12-03 11:20"]


# --- task -----------------------------------------------------------------------


def test_a_day_1_task_is_queued_at_launch() -> None:
    due, _ = first_due(steps("1 task 16:00"), calendar(), at("2026-12-02 10:37"))
    assert wall(due) == "Wed 2026-12-02 10:37"


def test_a_day_1_task_after_the_first_step_is_queued_right_after_it() -> None:
    dues = run(steps("1 choose", "1 task 07:00"), calendar(), at("2026-12-02 10:00"), at("2026-12-02 11:00"))
    assert walls(dues) == ["Wed 2026-12-02 11:00", "Wed 2026-12-02 11:00"]


def test_a_task_is_queued_on_its_day_at_its_own_time() -> None:
    dues = run(steps("1 at_time 09:00", "3 task 14:45"), calendar(), at("2026-12-02 08:00"))
    assert walls(dues)[1] == "Fri 2026-12-04 14:45"


def test_a_task_without_a_time_is_queued_at_the_campaigns_task_time() -> None:
    assert (
        walls(run(steps("1 at_time 09:00", "2 task"), calendar(), at("2026-12-02 08:00")))[1] == "Thu 2026-12-03 09:00"
    )
    late = calendar(task_time="10:30")
    assert walls(run(steps("1 at_time 09:00", "2 task"), late, at("2026-12-02 08:00")))[1] == "Thu 2026-12-03 10:30"


def test_a_task_first_step_takes_no_send_at() -> None:
    with pytest.raises(
        RuleError, match="a send-at time applies only when the first step is choose or at_time, not task"
    ):
        first_due(steps("1 task"), calendar(), at("2026-12-02 10:00"), at("2026-12-03 10:00"))


# --- same_as_previous -----------------------------------------------------------


def test_same_as_previous_takes_the_time_the_latest_earlier_day_email_was_actually_sent() -> None:
    # Day 1 was due at 09:00 but went out at 09:07 (the scheduler was busy).
    dues = run(
        steps("1 at_time 09:00", "3 same_as_previous"),
        calendar(),
        at("2026-12-02 08:00"),
        done_at=lambda position, due: Done(position, due + dt.timedelta(minutes=7)),
    )
    assert walls(dues) == ["Wed 2026-12-02 09:00", "Fri 2026-12-04 09:07"]


def test_same_as_previous_on_the_same_day_takes_the_previous_days_time() -> None:
    dues = run(
        steps("1 choose", "2 at_time 08:30", "2 same_as_previous"),
        calendar(),
        at("2026-12-02 10:00"),
        at("2026-12-02 15:00"),
    )
    assert walls(dues) == ["Wed 2026-12-02 15:00", "Thu 2026-12-03 08:30", "Thu 2026-12-03 15:00"]


def test_same_as_previous_uses_the_latest_of_the_earlier_days() -> None:
    campaign = steps("1 at_time 09:00", "2 at_time 17:20", "3 at_time 11:00", "3 same_as_previous")
    assert walls(run(campaign, calendar(), at("2026-12-02 08:00")))[3] == "Fri 2026-12-04 17:20"


def test_same_as_previous_counts_a_task_the_rep_sent_as_an_email() -> None:
    dues = run(
        steps("1 task", "2 same_as_previous"),
        calendar(),
        at("2026-12-02 08:00"),
        done_at=lambda position, due: Done(position, at("2026-12-02 13:40")),
    )
    assert walls(dues) == ["Wed 2026-12-02 08:00", "Thu 2026-12-03 13:40"]


def test_same_as_previous_on_day_1_goes_right_after_the_step_before() -> None:
    dues = run(
        steps("1 choose", "1 same_as_previous", "1 thread"),
        calendar(),
        at("2026-12-02 10:00"),
        send_at=at("2026-12-02 15:00"),
        done_at=lambda position, due: Done(position, due + dt.timedelta(seconds=3)),
    )
    assert dues == [
        at("2026-12-02 15:00"),
        at("2026-12-02 15:00") + dt.timedelta(seconds=3),
        at("2026-12-02 15:00") + dt.timedelta(seconds=6),
    ]


def test_same_as_previous_skips_over_skipped_earlier_day_steps() -> None:
    # Day 2's task was skipped at 11:20: nothing was sent then, so day 1's 15:00 stands.
    dues = run(
        steps("1 choose", "2 task", "3 same_as_previous"),
        calendar(),
        at("2026-12-02 10:00"),
        at("2026-12-02 15:00"),
        done_at=lambda position, due: (
            Done(position, at("2026-12-03 11:20"), sent=False) if position == 2 else Done(position, due)
        ),
    )
    assert walls(dues) == ["Wed 2026-12-02 15:00", "Thu 2026-12-03 09:00", "Fri 2026-12-04 15:00"]


def test_same_as_previous_after_only_skipped_steps_takes_the_time_the_last_was_skipped() -> None:
    dues = run(
        steps("1 task", "2 same_as_previous"),
        calendar(),
        at("2026-12-02 08:00"),
        done_at=lambda position, due: Done(position, at("2026-12-02 10:45"), sent=False),
    )
    assert walls(dues) == ["Wed 2026-12-02 08:00", "Thu 2026-12-03 10:45"]


# --- thread ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "campaign",
    [
        ("1 choose", "2 at_time 08:30", "2 {send}", "4 {send}"),
        ("1 choose", "1 {send}", "3 {send}"),
        ("1 at_time 07:00", "2 task", "5 {send}"),
    ],
)
def test_thread_is_timed_as_same_as_previous(campaign: tuple[str, ...]) -> None:
    def dues(send: str) -> list[str]:
        texts = [text.format(send=send) for text in campaign]
        return walls(
            run(
                steps(*texts),
                calendar(),
                at("2026-12-02 10:00"),
                at("2026-12-02 15:00") if "choose" in texts[0] else None,
            )
        )

    assert dues("thread") == dues("same_as_previous")


def test_thread_replies_to_the_step_before_it() -> None:
    campaign = steps("1 at_time 09:00", "2 at_time 09:00", "3 thread", "3 task", "4 thread", "5 same_as_previous")
    assert [thread_of(campaign, position) for position in range(1, 7)] == [None, None, 2, None, 4, None]


# --- nothing before the step before it --------------------------------------------


def test_nothing_is_sent_before_the_step_before_it() -> None:
    # Step 3's 08:00 is before step 2's 10:00 on the same day: right after step 2.
    dues = run(steps("1 at_time 09:00", "2 at_time 10:00", "2 at_time 08:00"), calendar(), at("2026-12-02 08:00"))
    assert walls(dues) == ["Wed 2026-12-02 09:00", "Thu 2026-12-03 10:00", "Thu 2026-12-03 10:00"]


# --- instants --------------------------------------------------------------------


def test_due_times_are_utc_whatever_zone_the_inputs_came_in() -> None:
    stockholm_send_at = dt.datetime(2026, 12, 2, 15, 0, tzinfo=calendar().zone)
    planned = preview(WORKED_EXAMPLE, calendar(), at("2026-12-02 10:00").astimezone(calendar().zone), stockholm_send_at)
    assert {p.due.tzinfo for p in planned} == {UTC}
    assert planned[0].due == dt.datetime(2026, 12, 2, 14, 0, tzinfo=UTC)


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(RuleError, match="has no time zone"):
        first_due(steps("1 choose"), calendar(), at("2026-12-02 10:00"), dt.datetime(2026, 12, 3, 10, 0))


def test_record_done_keeps_what_was_done_in_order() -> None:
    campaign = steps("1 at_time 09:00", "2 task")
    progress = record_done(campaign, calendar(), Progress(dt.date(2026, 12, 2)), Done(1, at("2026-12-02 09:00")))
    progress = record_done(campaign, calendar(), progress, Done(2, at("2026-12-03 10:00"), sent=False))
    assert [(d.position, d.sent) for d in progress.done] == [(1, True), (2, False)]
