"""A rep's agenda: queued tasks (overdue first), today's emails, active campaigns."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import event, update
from sqlmodel import Session, col

from bot.clock import FixedClock
from bot.services.agenda import agenda_for, day_bounds, entry_for
from bot.store.models import Step
from tests.support.factories import make_campaign, make_rep
from tests.support.sends import TASK_STEPS, enroll, make_person, make_send, make_task

UTC = dt.UTC
STOCKHOLM = ZoneInfo("Europe/Stockholm")
ALL = dict(tasks=100, emails=100)


def test_an_empty_agenda(session: Session, clock: FixedClock) -> None:
    agenda = agenda_for(session, "U0REP0001", clock.now(), STOCKHOLM, **ALL)
    assert agenda.empty and agenda.tasks == [] and agenda.campaigns == []


def test_tasks_come_oldest_first_and_overdue_ones_are_marked(session: Session, clock: FixedClock) -> None:
    make_rep(session)
    now = clock.now()  # Wed 10:00 in Stockholm
    today = make_task(session, due_at=now - dt.timedelta(hours=1), email="today@example.com")
    old = make_task(session, due_at=now - dt.timedelta(days=2), email="old@example.com")
    last_night = make_task(session, due_at=dt.datetime(2026, 12, 1, 22, 30, tzinfo=UTC), email="late@example.com")
    make_task(session, due_at=now, email="other@example.com", rep_id="U0OTHER01")

    agenda = agenda_for(session, "U0REP0001", now, STOCKHOLM, **ALL)
    assert [(e.send.id, e.overdue) for e in agenda.tasks] == [(old.id, True), (last_night.id, True), (today.id, False)]
    assert agenda.tasks[0].person.email == "old@example.com" and agenda.tasks[0].campaign.name == "Q4"
    assert agenda.overdue == 2 and not agenda.empty


def test_todays_emails_follow_the_reps_local_day(session: Session, clock: FixedClock) -> None:
    make_rep(session)
    campaign = make_campaign(session, TASK_STEPS, name="Q4")
    due = {
        "morning": dt.datetime(2026, 12, 2, 7, 0, tzinfo=UTC),  # 08:00 Stockholm
        "late": dt.datetime(2026, 12, 2, 22, 30, tzinfo=UTC),  # 23:30 Stockholm, still today
        "tomorrow": dt.datetime(2026, 12, 2, 23, 30, tzinfo=UTC),  # 00:30 Thursday in Stockholm
        "yesterday": dt.datetime(2026, 12, 1, 22, 59, tzinfo=UTC),
    }
    ids = {}
    for name, at in due.items():
        enrollment = enroll(session, campaign, make_person(session, f"{name}@example.com"), launched_at=at)
        ids[name] = make_send(session, enrollment, 2, due_at=at, status="planned").id

    agenda = agenda_for(session, "U0REP0001", clock.now(), STOCKHOLM, **ALL)
    assert [e.send.id for e in agenda.scheduled_today] == [ids["morning"], ids["late"]]
    # In New York it is still Wednesday 04:00: the local day runs to Thursday 05:00 UTC.
    in_new_york = agenda_for(session, "U0REP0001", clock.now(), "America/New_York", **ALL)
    assert [e.send.id for e in in_new_york.scheduled_today] == [ids["morning"], ids["late"], ids["tomorrow"]]


def test_active_campaigns_with_counts(session: Session, clock: FixedClock) -> None:
    make_rep(session)
    q4 = make_campaign(session, TASK_STEPS, name="Q4")
    spring = make_campaign(session, TASK_STEPS, name="Spring")
    make_task(session, due_at=clock.now(), campaign=q4, email="a@example.com")
    make_task(session, due_at=clock.now(), campaign=q4, email="b@example.com")
    enrollment = enroll(session, spring, make_person(session, "c@example.com"), launched_at=clock.now())
    make_send(session, enrollment, 2, due_at=clock.now() + dt.timedelta(days=3), status="planned")
    enroll(session, spring, make_person(session, "d@example.com"), launched_at=clock.now(), status="finished")
    make_task(session, due_at=clock.now(), campaign=spring, email="e@example.com", rep_id="U0OTHER01")

    agenda = agenda_for(session, "U0REP0001", clock.now(), STOCKHOLM, **ALL)
    assert [(c.name, c.active, c.queued) for c in agenda.campaigns] == [("Q4", 2, 2), ("Spring", 1, 0)]


def test_queued_tasks_of_every_step_count_for_their_campaign_and_overdue_ones_for_the_rep(
    session: Session, clock: FixedClock
) -> None:
    make_rep(session)
    now = clock.now()
    two_tasks = [TASK_STEPS[0], {**TASK_STEPS[0], "day": 2}]
    q4, spring = make_campaign(session, two_tasks, name="Q4"), make_campaign(session, two_tasks, name="Spring")
    for n, (campaign, position) in enumerate([(q4, 1), (q4, 2), (q4, 2), (spring, 2)]):
        enrollment = enroll(session, campaign, make_person(session, f"p{n}@example.com"), launched_at=now)
        make_send(session, enrollment, position, due_at=now - dt.timedelta(days=n))  # p0 today, the rest overdue
    other = enroll(session, spring, make_person(session, "o@example.com"), launched_at=now, rep_id="U0OTHER01")
    make_send(session, other, 1, due_at=now - dt.timedelta(days=9))

    agenda = agenda_for(session, "U0REP0001", now, STOCKHOLM, **ALL)
    assert [(c.name, c.active, c.queued) for c in agenda.campaigns] == [("Q4", 3, 3), ("Spring", 1, 1)]
    assert (agenda.task_count, agenda.overdue) == (4, 3)


def selects_to_build(session: Session, clock: FixedClock, **limits: int) -> int:
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(session.get_bind(), "before_cursor_execute", listener)
    try:
        agenda_for(session, "U0REP0001", clock.now(), STOCKHOLM, **limits)
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", listener)
    return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])


def test_the_same_queries_however_many_tasks(session: Session, clock: FixedClock) -> None:
    make_rep(session)
    for n in range(3):
        make_task(session, due_at=clock.now() - dt.timedelta(hours=n), email=f"p{n}@example.com")
    few = selects_to_build(session, clock, tasks=30, emails=40)
    for n in range(3, 60):
        make_task(session, due_at=clock.now() - dt.timedelta(hours=n), email=f"p{n}@example.com")
    assert selects_to_build(session, clock, tasks=30, emails=40) == few


def test_only_the_first_tasks_are_loaded_and_all_are_counted(session: Session, clock: FixedClock) -> None:
    make_rep(session)
    now = clock.now()
    sends = [make_task(session, due_at=now - dt.timedelta(days=n), email=f"p{n}@example.com") for n in range(5)]
    campaign = make_campaign(session, TASK_STEPS, name="Spring")
    for n in range(3):
        enrollment = enroll(session, campaign, make_person(session, f"e{n}@example.com"), launched_at=now)
        make_send(session, enrollment, 2, due_at=now + dt.timedelta(hours=n + 1), status="planned")

    agenda = agenda_for(session, "U0REP0001", now, STOCKHOLM, tasks=2, emails=1)
    assert [e.send.id for e in agenda.tasks] == [sends[4].id, sends[3].id]  # the oldest two
    assert (agenda.task_count, agenda.overdue, agenda.email_count, len(agenda.scheduled_today)) == (5, 4, 3, 1)
    assert [(c.name, c.queued) for c in agenda.campaigns] == [("Q4", 5), ("Spring", 0)]
    assert not agenda_for(session, "U0REP0001", now, STOCKHOLM, tasks=0, emails=0).empty


def test_a_task_whose_email_cannot_be_built_says_why_and_the_others_are_drafted(
    session: Session, clock: FixedClock
) -> None:
    make_rep(session)
    fine = make_task(session, due_at=clock.now() - dt.timedelta(hours=2), email="ada@example.com")
    broken_campaign = make_campaign(session, TASK_STEPS, name="Broken")
    broken = make_task(
        session, due_at=clock.now() - dt.timedelta(hours=1), email="grace@example.com", campaign=broken_campaign
    )
    # A body that fails to render (as one stored before templates were checked at import).
    session.execute(update(Step).where(col(Step.campaign_id) == broken_campaign.id).values(body="Hi {{ 1 / 0 }}"))
    session.commit()

    entries = agenda_for(session, "U0REP0001", clock.now(), STOCKHOLM, **ALL).tasks
    assert [e.send.id for e in entries] == [fine.id, broken.id]
    assert entries[0].draft is not None and entries[0].draft.subject == "Hello Ada" and entries[0].problem is None
    assert entries[1].draft is None and entries[1].problem is not None
    assert "division by zero" in entries[1].problem
    assert entry_for(session, broken.id, clock.now(), STOCKHOLM).problem == entries[1].problem  # type: ignore[union-attr]


def test_a_dst_day_has_23_hours() -> None:
    start, end = day_bounds(dt.datetime(2026, 3, 29, 12, 0, tzinfo=UTC), STOCKHOLM)
    assert (start, end - start) == (dt.datetime(2026, 3, 28, 23, 0, tzinfo=UTC), dt.timedelta(hours=23))


def test_one_entry_to_redraw(session: Session, clock: FixedClock) -> None:
    make_rep(session)
    send = make_task(session, due_at=clock.now() - dt.timedelta(days=1))
    entry = entry_for(session, send.id, clock.now(), STOCKHOLM)
    assert entry is not None and entry.overdue and entry.person.first_name == "Ada"
    assert entry_for(session, 12345, clock.now(), STOCKHOLM) is None
