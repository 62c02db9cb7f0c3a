"""The rules of campaigns and send options, as pure functions.

This module is ../shared/spec/campaigns.md in code: no database, no Slack, no clock
and no I/O. Its inputs are a campaign's steps, the facts of a launch and what has
been done so far; its outputs are due times. Everything else in the bot calls it.

Vocabulary: a *step* has a *day* (a position in the campaign, not a gap) and a *send
option*. An *enrollment* is one person in one campaign; its *progress* is its day 1,
how many days it has moved later (no catch-up, pauses) and the steps done so far.

Where the spec is silent, the choice made here is listed in the README ("Rules where
the spec is silent"); every rule, silent or not, has a test in tests/unit/core/.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from zoneinfo import ZoneInfo

UTC = dt.UTC
DEFAULT_TASK_TIME = dt.time(9, 0)


class SendOption(StrEnum):
    CHOOSE = "choose"  # the rep picks the send-at date and time at launch
    AT_TIME = "at_time"  # a fixed wall-clock time on the step's day
    TASK = "task"  # queued for the rep to personalize and send by hand
    SAME_AS_PREVIOUS = "same_as_previous"  # the time of day of the latest earlier-day email
    THREAD = "thread"  # a reply to the previous email, timed as same_as_previous


class StepKind(StrEnum):
    EMAIL = "email"
    TASK = "task"


class SendIn(StrEnum):
    CAMPAIGN = "campaign"
    RECIPIENT = "recipient"


class RuleError(ValueError):
    """A launch or a campaign that breaks a rule; the message says which."""


@dataclass(frozen=True)
class Step:
    """What the rules need to know of a step: its day, send option and time."""

    day: int
    send: SendOption
    time: dt.time | None = None

    @property
    def kind(self) -> StepKind:
        return StepKind.TASK if self.send is SendOption.TASK else StepKind.EMAIL


@dataclass(frozen=True)
class Calendar:
    """How days and wall-clock times are counted for one enrollment."""

    zone: ZoneInfo
    skip_weekends: bool = False
    task_time: dt.time = DEFAULT_TASK_TIME


@dataclass(frozen=True)
class Done:
    """A step that is done: sent at `at`, or skipped by the rep at `at`."""

    position: int  # the step's number, 1-based
    at: dt.datetime
    sent: bool = True


@dataclass(frozen=True)
class Progress:
    """Where an enrollment stands: its day 1, its shift in days and the steps done."""

    day_one: dt.date
    shift_days: int = 0
    done: tuple[Done, ...] = ()

    def with_done(self, done: Done, shift_days: int) -> Progress:
        return Progress(self.day_one, shift_days, (*self.done, done))


@dataclass(frozen=True)
class Planned:
    """One step of a preview: when it goes out (or is queued, for a task)."""

    position: int
    step: Step
    due: dt.datetime
    thread_of: int | None


# --- checking a campaign's steps -------------------------------------------------


@dataclass(frozen=True)
class StepProblem:
    position: int  # 1-based step number
    field: str
    message: str

    def __str__(self) -> str:
        return f"step {self.position}, {self.field}: {self.message}"


def step_problems(steps: Sequence[Step]) -> list[StepProblem]:
    """Every way the steps break the send-option rules, in step order."""
    problems: list[StepProblem] = []
    if not steps:
        return [StepProblem(1, "steps", "a campaign needs at least one step")]
    previous_day = 1
    for position, step in enumerate(steps, start=1):
        first = position == 1
        if step.day < 1:
            problems.append(StepProblem(position, "day", f"must be 1 or more, not {step.day}"))
        elif first and step.day != 1:
            problems.append(StepProblem(position, "day", f"the first step is on day 1, not day {step.day}"))
        elif step.day < previous_day:
            problems.append(
                StepProblem(position, "day", f"day {step.day} comes after day {previous_day}: days are out of order")
            )
        previous_day = max(previous_day, step.day)
        if step.send is SendOption.CHOOSE and not first:
            problems.append(StepProblem(position, "send", "choose is allowed on the first step only"))
        if step.send in (SendOption.SAME_AS_PREVIOUS, SendOption.THREAD) and first:
            problems.append(StepProblem(position, "send", f"{step.send} is not allowed on the first step"))
        if step.send is SendOption.AT_TIME and step.time is None:
            problems.append(StepProblem(position, "time", "at_time needs a time (HH:MM)"))
        if step.send in (SendOption.CHOOSE, SendOption.SAME_AS_PREVIOUS, SendOption.THREAD) and step.time:
            problems.append(StepProblem(position, "time", f"{step.send} takes no time"))
    return problems


# --- days and wall-clock times --------------------------------------------------


def is_weekend(day: dt.date) -> bool:
    return day.weekday() >= 5


def next_business_day(day: dt.date) -> dt.date:
    """The day itself on Monday to Friday, else the next Monday."""
    while is_weekend(day):
        day += dt.timedelta(days=1)
    return day


def add_days(day: dt.date, count: int, skip_weekends: bool) -> dt.date:
    """`count` days later; with skip_weekends, Saturdays and Sundays are not counted."""
    if not skip_weekends:
        return day + dt.timedelta(days=count)
    for _ in range(count):
        day = next_business_day(day + dt.timedelta(days=1))
    return day


def days_between(start: dt.date, end: dt.date, skip_weekends: bool) -> int:
    """How many (business) days lie after `start` up to and including `end`; 0 if none."""
    if end <= start:
        return 0
    if not skip_weekends:
        return (end - start).days
    return sum(1 for n in range(1, (end - start).days + 1) if not is_weekend(start + dt.timedelta(days=n)))


def day_date(progress: Progress, day: int, calendar: Calendar) -> dt.date:
    """The date day N falls on: N-1 days after day 1, plus the days the enrollment moved."""
    return add_days(progress.day_one, day - 1 + progress.shift_days, calendar.skip_weekends)


def wall_time(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The instant (UTC) at which the clocks in `zone` show `time` on `day`.

    A wall time that does not exist (spring forward) moves forward by the gap, and an
    ambiguous one (fall back) takes its first occurrence: with fold=0 zoneinfo reads a
    gap time with the offset from before the change, which is exactly that.
    """
    return dt.datetime.combine(day, time.replace(tzinfo=None), tzinfo=zone).replace(fold=0).astimezone(UTC)


def utc(at: dt.datetime) -> dt.datetime:
    """`at` as aware UTC; a time without a zone cannot be placed on anyone's clock."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise RuleError(f"{at.isoformat()} has no time zone")
    return at.astimezone(UTC)


def local_date(at: dt.datetime, zone: ZoneInfo) -> dt.date:
    return at.astimezone(zone).date()


def local_time(at: dt.datetime, zone: ZoneInfo) -> dt.time:
    return at.astimezone(zone).time().replace(tzinfo=None)


def zone_for(campaign_zone: str, send_in: SendIn, person_zone: str | None) -> ZoneInfo:
    """The person's own zone where the campaign says `send_in: recipient` and one is known."""
    if send_in is SendIn.RECIPIENT and person_zone:
        return ZoneInfo(person_zone)
    return ZoneInfo(campaign_zone)


# --- when a step is due -----------------------------------------------------------


def first_due(
    steps: Sequence[Step], calendar: Calendar, launched_at: dt.datetime, send_at: dt.datetime | None = None
) -> tuple[dt.datetime, dt.date]:
    """When the first step is due for a launch at `launched_at`, and the enrollment's day 1.

    `send_at` is the rep's chosen send-at: required for `choose`, an optional override
    for `at_time`. A time the rep picks is honoured as picked, weekend or not.
    """
    step = steps[0]
    launched_at = utc(launched_at)
    if send_at is not None:
        if step.send not in (SendOption.CHOOSE, SendOption.AT_TIME):
            raise RuleError(f"a send-at time applies only when the first step is choose or at_time, not {step.send}")
        send_at = utc(send_at)
        if send_at < launched_at:
            raise RuleError("the send-at time is in the past")
        return send_at, local_date(send_at, calendar.zone)
    if step.send is SendOption.CHOOSE:
        raise RuleError("the first step is choose: a send-at date and time is required")
    if step.send not in (SendOption.AT_TIME, SendOption.TASK):
        raise RuleError(f"{step.send} is not allowed on the first step")

    launch_day = local_date(launched_at, calendar.zone)
    day_one = next_business_day(launch_day) if calendar.skip_weekends else launch_day
    if step.send is SendOption.TASK and day_one == launch_day:
        return launched_at, day_one  # a day-1 task is queued at launch
    time = step.time if step.send is SendOption.AT_TIME else step.time or calendar.task_time
    assert time is not None
    return max(wall_time(day_one, time, calendar.zone), launched_at), day_one


def next_due(
    steps: Sequence[Step], calendar: Calendar, position: int, progress: Progress, ready_at: dt.datetime
) -> dt.datetime:
    """When step `position` (2 or more) is due, once it became schedulable at `ready_at`.

    `ready_at` is when the step before it was done (or when a paused enrollment was
    resumed). Nothing is due before it: an earlier time becomes "right after the
    previous step", and a time that has already passed means "due immediately".
    """
    step = steps[position - 1]
    ready_at = utc(ready_at)
    if step.send is SendOption.CHOOSE:
        raise RuleError(f"step {position}: choose is allowed on the first step only")
    day = day_date(progress, step.day, calendar)
    if step.send is SendOption.AT_TIME:
        assert step.time is not None
        wanted = wall_time(day, step.time, calendar.zone)
    elif step.day == 1:
        wanted = ready_at  # day-1 tasks and same-time emails go right after the step before
    elif step.send is SendOption.TASK:
        wanted = wall_time(day, step.time or calendar.task_time, calendar.zone)
    else:  # same_as_previous and thread, on day 2 or later
        time = local_time(latest_earlier_day_email(steps, progress, step.day), calendar.zone)
        wanted = wall_time(day, time, calendar.zone)
    return max(wanted, ready_at)


def latest_earlier_day_email(steps: Sequence[Step], progress: Progress, day: int) -> dt.datetime:
    """When the latest email of a day before `day` was sent.

    Same-day emails cannot share a time, so only earlier days count. If every
    earlier-day step was skipped, the time the latest of them was done stands in.
    """
    earlier = [done for done in progress.done if steps[done.position - 1].day < day]
    if not earlier:
        raise RuleError(f"no step of a day before day {day} is done yet")
    sent = [done for done in earlier if done.sent]
    return max(done.at for done in (sent or earlier))


def thread_of(steps: Sequence[Step], position: int) -> int | None:
    """The step a `thread` step replies to: the one before it."""
    return position - 1 if steps[position - 1].send is SendOption.THREAD else None


# --- progress and no catch-up -------------------------------------------------


def shift_after(
    steps: Sequence[Step], calendar: Calendar, progress: Progress, position: int, done_at: dt.datetime
) -> int:
    """The enrollment's shift once step `position` is done at `done_at`.

    No catch-up: a step done k days (business days with skip_weekends) after its own
    day moves every later day k days later.
    """
    own_day = day_date(progress, steps[position - 1].day, calendar)
    late = days_between(own_day, local_date(done_at, calendar.zone), calendar.skip_weekends)
    return progress.shift_days + late


def record_done(steps: Sequence[Step], calendar: Calendar, progress: Progress, done: Done) -> Progress:
    """The progress after a step is done (sent or skipped)."""
    return progress.with_done(done, shift_after(steps, calendar, progress, done.position, done.at))


def resume(
    calendar: Calendar, due: dt.datetime, paused_at: dt.datetime, resumed_at: dt.datetime
) -> tuple[dt.datetime, int]:
    """The new due time of the step that was waiting, and the days everything moved.

    On resume the remaining days move later by the days (business days with
    skip_weekends) the enrollment was paused; a due time that has passed is due now.
    """
    due, resumed_at = utc(due), utc(resumed_at)
    moved = days_between(
        local_date(paused_at, calendar.zone), local_date(resumed_at, calendar.zone), calendar.skip_weekends
    )
    due_day = add_days(local_date(due, calendar.zone), moved, calendar.skip_weekends)
    return max(wall_time(due_day, local_time(due, calendar.zone), calendar.zone), resumed_at), moved


def preview(
    steps: Sequence[Step], calendar: Calendar, launched_at: dt.datetime, send_at: dt.datetime | None = None
) -> list[Planned]:
    """Every step's due time, assuming each step is done (sent) at its due time."""
    due, day_one = first_due(steps, calendar, launched_at, send_at)
    progress = Progress(day_one)
    planned = [Planned(1, steps[0], due, None)]
    for position in range(2, len(steps) + 1):
        progress = record_done(steps, calendar, progress, Done(position - 1, due))
        due = next_due(steps, calendar, position, progress, ready_at=due)
        planned.append(Planned(position, steps[position - 1], due, thread_of(steps, position)))
    return planned


# --- threading ---------------------------------------------------------------


def reply_subject(subject: str) -> str:
    """`Re: ` + the previous subject, never `Re: Re: `."""
    return subject if subject[:3].lower() == "re:" else f"Re: {subject}"


def reply_references(previous_references: Sequence[str], previous_message_id: str) -> list[str]:
    """The previous email's references plus its Message-ID."""
    return [*previous_references, previous_message_id]


@dataclass(frozen=True)
class Quoted:
    """The previous email as it was sent, to quote under a reply."""

    body: str
    sent_at: dt.datetime
    sender: str  # "Name <address>"
    zone: ZoneInfo = field(default=ZoneInfo("UTC"))


def reply_body(body: str, previous: Quoted) -> str:
    """This step's body, an attribution line and the previous email quoted."""
    when = previous.sent_at.astimezone(previous.zone)
    attribution = f"On {when:%a, %d %b %Y at %H:%M}, {previous.sender} wrote:"
    quoted = "\n".join(f"> {line}" if line else ">" for line in previous.body.splitlines())
    return f"{body.rstrip()}\n\n{attribution}\n{quoted}\n"
