"""Small helpers so rule tests read in a rep's terms: local wall-clock times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from bot.core.rules import Calendar, Done, Progress, SendOption, Step, first_due, next_due, record_done

STOCKHOLM = ZoneInfo("Europe/Stockholm")
NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC


def at(text: str, zone: ZoneInfo = STOCKHOLM) -> dt.datetime:
    """The UTC instant at which clocks in `zone` show `text` ("2026-12-02 15:00")."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)


def wall(instant: dt.datetime, zone: ZoneInfo = STOCKHOLM) -> str:
    """What a rep in `zone` reads on the clock: "Wed 2026-12-02 15:00"."""
    return instant.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


def step(text: str) -> Step:
    """A step from "2 at_time 08:30", "4 task" or "1 choose"."""
    day, send, *time = text.split()
    return Step(int(day), SendOption(send), dt.time.fromisoformat(time[0]) if time else None)


def steps(*texts: str) -> list[Step]:
    return [step(text) for text in texts]


def calendar(zone: ZoneInfo = STOCKHOLM, *, skip_weekends: bool = False, task_time: str = "09:00") -> Calendar:
    return Calendar(zone, skip_weekends, dt.time.fromisoformat(task_time))


def run(
    campaign: Sequence[Step],
    cal: Calendar,
    launched_at: dt.datetime,
    send_at: dt.datetime | None = None,
    *,
    done_at: Callable[[int, dt.datetime], Done] | None = None,
) -> list[dt.datetime]:
    """Every step's due time for one enrollment, as the bot plans them one by one.

    `done_at(position, due)` says when and how a step was done; by default each
    step is sent at its due time (as in a preview).
    """
    finish = done_at or (lambda position, due: Done(position, due))
    due, day_one = first_due(campaign, cal, launched_at, send_at)
    progress = Progress(day_one)
    dues = [due]
    for position in range(2, len(campaign) + 1):
        done = finish(position - 1, due)
        progress = record_done(campaign, cal, progress, done)
        due = next_due(campaign, cal, position, progress, ready_at=done.at)
        dues.append(due)
    return dues


def walls(dues: Sequence[dt.datetime], zone: ZoneInfo = STOCKHOLM) -> list[str]:
    return [wall(due, zone) for due in dues]
