"""Progress and order: no catch-up after a late step, and pausing (spec: "Progress and
order", "The lifecycle of an enrollment")."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.core.rules import Done, Progress, first_due, next_due, record_done, resume

from .support import at, calendar, steps, wall

CAMPAIGN = steps("1 at_time 09:00", "2 task", "3 at_time 09:00", "5 same_as_previous")


def launch(skip_weekends: bool = False) -> Progress:
    """CAMPAIGN launched on Wednesday 2026-12-02 at 08:00, step 1 sent at 09:00."""
    cal = calendar(skip_weekends=skip_weekends)
    due, day_one = first_due(CAMPAIGN, cal, at("2026-12-02 08:00"))
    return record_done(CAMPAIGN, cal, Progress(day_one), Done(1, due))


@pytest.mark.parametrize(
    ("skip_weekends", "task_sent", "late", "step_3", "step_4"),
    [
        # Day 2 is Thursday; the task is sent on Saturday: 2 days late.
        (False, "2026-12-05 10:00", 2, "Sun 2026-12-06 09:00", "Tue 2026-12-08 09:00"),
        # ... or on Monday: Friday and Monday, 2 business days late.
        (True, "2026-12-07 16:00", 2, "Tue 2026-12-08 09:00", "Thu 2026-12-10 09:00"),
    ],
    ids=["calendar-days", "business-days"],
)
def test_no_catch_up_a_late_task_moves_every_later_day_by_the_days_it_was_late(
    skip_weekends: bool, task_sent: str, late: int, step_3: str, step_4: str
) -> None:
    cal = calendar(skip_weekends=skip_weekends)
    progress = launch(skip_weekends)
    assert wall(next_due(CAMPAIGN, cal, 2, progress, ready_at=at("2026-12-02 09:00"))) == "Thu 2026-12-03 09:00"

    progress = record_done(CAMPAIGN, cal, progress, Done(2, at(task_sent)))
    assert progress.shift_days == late
    due_3 = next_due(CAMPAIGN, cal, 3, progress, ready_at=at(task_sent))
    assert wall(due_3) == step_3  # day 3 was Friday
    progress = record_done(CAMPAIGN, cal, progress, Done(3, due_3))
    assert wall(next_due(CAMPAIGN, cal, 4, progress, ready_at=due_3)) == step_4


def test_a_task_done_over_the_weekend_after_its_friday_is_not_late_with_skip_weekends() -> None:
    campaign = steps("1 task", "2 at_time 09:00")
    cal = calendar(skip_weekends=True)
    progress = record_done(campaign, cal, Progress(dt.date(2026, 12, 4)), Done(1, at("2026-12-06 20:00")))
    assert progress.shift_days == 0
    assert wall(next_due(campaign, cal, 2, progress, ready_at=at("2026-12-06 20:00"))) == "Mon 2026-12-07 09:00"


def test_a_skipped_step_moves_later_days_too() -> None:
    cal = calendar()
    progress = record_done(CAMPAIGN, cal, launch(), Done(2, at("2026-12-04 17:00"), sent=False))
    assert progress.shift_days == 1
    assert wall(next_due(CAMPAIGN, cal, 3, progress, ready_at=at("2026-12-04 17:00"))) == "Sat 2026-12-05 09:00"


def test_lateness_adds_up() -> None:
    campaign = steps("1 task", "2 task", "3 at_time 09:00")
    cal = calendar()
    progress = record_done(campaign, cal, Progress(dt.date(2026, 12, 2)), Done(1, at("2026-12-03 10:00")))
    progress = record_done(campaign, cal, progress, Done(2, at("2026-12-06 10:00")))
    assert progress.shift_days == 1 + 2
    assert wall(next_due(campaign, cal, 3, progress, ready_at=at("2026-12-06 10:00"))) == "Mon 2026-12-07 09:00"


def test_a_step_done_later_on_its_own_day_moves_nothing() -> None:
    progress = record_done(CAMPAIGN, calendar(), launch(), Done(2, at("2026-12-03 23:59")))
    assert progress.shift_days == 0


def test_a_step_done_early_does_not_pull_later_days_earlier() -> None:
    # The rep sent the day-2 task with "Send now" on day 1.
    cal = calendar()
    progress = record_done(CAMPAIGN, cal, launch(), Done(2, at("2026-12-02 11:00")))
    assert progress.shift_days == 0
    assert wall(next_due(CAMPAIGN, cal, 3, progress, ready_at=at("2026-12-02 11:00"))) == "Fri 2026-12-04 09:00"


# --- pause and resume -------------------------------------------------------------


def test_resume_moves_the_waiting_step_by_the_days_paused() -> None:
    due, moved = resume(
        calendar(), at("2026-12-09 09:00"), paused_at=at("2026-12-07 10:00"), resumed_at=at("2026-12-10 12:00")
    )
    assert moved == 3
    assert wall(due) == "Sat 2026-12-12 09:00"


def test_resume_counts_business_days_with_skip_weekends() -> None:
    cal = calendar(skip_weekends=True)
    due, moved = resume(
        cal, at("2026-12-09 09:00"), paused_at=at("2026-12-07 10:00"), resumed_at=at("2026-12-10 12:00")
    )
    assert moved == 3
    assert wall(due) == "Mon 2026-12-14 09:00"


def test_resume_the_same_day_moves_nothing() -> None:
    due, moved = resume(
        calendar(), at("2026-12-09 09:00"), paused_at=at("2026-12-07 10:00"), resumed_at=at("2026-12-07 17:00")
    )
    assert (wall(due), moved) == ("Wed 2026-12-09 09:00", 0)


def test_a_step_whose_time_passed_during_the_pause_is_due_at_resume() -> None:
    due, moved = resume(
        calendar(), at("2026-12-07 15:00"), paused_at=at("2026-12-07 10:00"), resumed_at=at("2026-12-07 16:30")
    )
    assert (wall(due), moved) == ("Mon 2026-12-07 16:30", 0)


def test_after_resume_the_remaining_days_move_by_the_paused_days() -> None:
    cal = calendar()
    progress = launch()  # step 2 (day-2 task) due Thu 09:00
    held, moved = resume(
        cal, at("2026-12-03 09:00"), paused_at=at("2026-12-02 12:00"), resumed_at=at("2026-12-04 08:00")
    )
    assert wall(held) == "Sat 2026-12-05 09:00"
    progress = Progress(progress.day_one, progress.shift_days + moved, progress.done)
    progress = record_done(CAMPAIGN, cal, progress, Done(2, held))
    assert progress.shift_days == 2  # the task itself was on time for its moved day
    assert wall(next_due(CAMPAIGN, cal, 3, progress, ready_at=held)) == "Sun 2026-12-06 09:00"
