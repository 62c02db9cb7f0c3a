"""The syncer against a fake Salesforce over HTTPS, driven by the real simple-salesforce client.

Each flow runs the real scheduler (emails into an outbox folder) and the rep's task
actions; what reaches Salesforce is checked field by field.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.delivery.scheduler import Scheduler, build_scheduler
from bot.salesforce.sync import REF, Syncer
from bot.services import enrollments, sync, tasks
from bot.services.people import PersonInput
from bot.settings import Settings, load_settings
from bot.store.models import Campaign, SalesforceSync, Send, SendStatus, SyncOutcome
from tests.support.factories import REP_ID, make_campaign, make_rep
from tests.support.fake_salesforce import FakeSalesforce

STEPS = [
    {
        "day": 1,
        "send": "at_time",
        "time": "09:00",
        "subject": "Hello {{ first_name }}",
        "body": "Hi {{ first_name }},\nquick idea.",
    },
    {"day": 2, "send": "task", "subject": "Call {{ first_name }}?", "body": "Personal note to {{ first_name }}."},
    {"day": 3, "send": "at_time", "time": "09:00", "subject": "Last one", "body": "Bye."},
]
THURSDAY_0900_STOCKHOLM = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def scheduler(engine: Engine, clock: FixedClock, tmp_path: Path) -> Scheduler:
    return build_scheduler(
        load_settings(_env_file=None, outbox_dir=str(tmp_path / "outbox"), digest_cron="0 0 1 1 *"), engine, None, clock
    )


@pytest.fixture
def syncer(engine: Engine, clock: FixedClock, sf_settings: Settings) -> Syncer:
    return Syncer(engine, clock, sf_settings, worker_id="sync-1")


@pytest.fixture
def crm(salesforce: FakeSalesforce) -> dict[str, str]:
    """Ada is a Contact; Rita, the rep, a User."""
    return {
        "ada": salesforce.add("Contact", Email="Ada@Example.com", FirstName="Ada", LastName="Lovelace"),
        "rita": salesforce.add("User", Email="rita@seller.example", IsActive=True),
    }


def launch(session: Session, clock: FixedClock, *emails: str, company: str = "Analytical Engines") -> Campaign:
    make_rep(session)
    campaign = make_campaign(session, STEPS, name="Q4")
    people = [
        PersonInput(email=email, first_name=email.split("@")[0].title(), last_name="Lovelace", company=company)
        for email in emails
    ]
    enrollments.add_people(session, campaign, REP_ID, people, now=clock.now(), smtputf8=lambda: None)
    session.commit()
    return campaign


def the_task(session: Session) -> Send:
    session.expire_all()
    send = session.exec(select(Send).where(Send.position == 2)).one()
    session.commit()  # on SQLite a read holds the write lock till then
    return send


def queue_the_task(session: Session, clock: FixedClock, scheduler: Scheduler, *emails: str) -> Send:
    launch(session, clock, *(emails or ("ada@example.com",)))
    scheduler.tick()  # the day-1 email
    clock.set(THURSDAY_0900_STOCKHOLM)
    scheduler.tick()  # the day-2 task reaches the rep
    return the_task(session)


def items(session: Session) -> list[SalesforceSync]:
    session.expire_all()
    found = list(session.exec(select(SalesforceSync).order_by(SalesforceSync.id)))
    session.commit()
    return found


def test_an_automatic_email_is_a_completed_email_task_on_the_contact_owned_by_the_rep(
    session, clock, scheduler, syncer, salesforce, crm
):
    launch(session, clock, "ada@example.com")
    assert str(scheduler.tick()).startswith("sent 1 email")
    result = syncer.sync()
    assert result.synced == 1
    (task,) = salesforce.tasks()
    assert task["Subject"] == "Email: Hello Ada"
    assert task["Status"] == "Completed"
    assert task["ActivityDate"] == "2026-12-02"
    assert task["TaskSubtype"] == "Email"
    assert task["WhoId"] == crm["ada"]
    assert task["OwnerId"] == crm["rita"]
    assert task["Description"] == f"Hi Ada,\nquick idea.\n\n{REF} {items(session)[0].id}"
    assert [(i.event, i.outcome, i.sf_task_id) for i in items(session)] == [("email_sent", "synced", task["Id"])]


def test_a_queued_task_is_a_not_started_task_due_on_its_day_then_completed_as_sent(
    session, clock, scheduler, syncer, salesforce, crm
):
    send = queue_the_task(session, clock, scheduler)
    syncer.sync()
    queued = next(t for t in salesforce.tasks() if t["Subject"] == "Email: Call Ada?")
    assert (queued["Status"], queued["ActivityDate"], queued["TaskSubtype"]) == ("Not Started", "2026-12-03", "Email")
    assert queued["Description"].startswith("Personal note to Ada.\n\n")
    assert (queued["WhoId"], queued["OwnerId"]) == (crm["ada"], crm["rita"])

    tasks.save_edit(session, send.id, REP_ID, "Call you Friday?", "Ada, as promised: the numbers.", clock.now())
    tasks.send_now(session, send.id, REP_ID, clock.now())
    session.commit()
    clock.advance(days=1)
    scheduler.tick()
    syncer.sync()
    done = salesforce.records["Task"][queued["Id"]]
    assert done["Status"] == "Completed"
    assert done["Subject"] == "Email: Call you Friday?"
    assert done["Description"] == "Ada, as promised: the numbers."
    assert done["ActivityDate"] == "2026-12-04"
    assert len(salesforce.tasks()) == 2  # the day-1 email and this one: the task was updated, not doubled


def test_a_scheduled_task_moves_its_activity_date(session, clock, scheduler, syncer, salesforce, crm):
    send = queue_the_task(session, clock, scheduler)
    tasks.schedule(session, send.id, REP_ID, dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC), clock.now())
    session.commit()
    syncer.sync()
    task = next(t for t in salesforce.tasks() if t["Subject"] == "Email: Call Ada?")
    assert (task["Status"], task["ActivityDate"]) == ("Not Started", "2026-12-08")


def test_a_skipped_task_is_completed_and_marked_skipped(session, clock, scheduler, syncer, salesforce, crm):
    send = queue_the_task(session, clock, scheduler)
    syncer.sync()
    tasks.skip(session, send.id, REP_ID, clock.now())
    session.commit()
    syncer.sync()
    task = next(t for t in salesforce.tasks() if t["Subject"].startswith("Email: Call Ada?"))
    assert task["Status"] == "Completed"
    assert task["Subject"] == "Email: Call Ada? (skipped)"
    assert task["Description"] == "Skipped: this email was not sent.\n\nPersonal note to Ada."


def test_a_reply_is_a_completed_reply_task(session, clock, scheduler, syncer, salesforce, crm):
    launch(session, clock, "ada@example.com")
    scheduler.tick()
    first = session.exec(select(Send).where(Send.position == 1)).one()
    session.commit()
    clock.advance(hours=2)
    sync.reply_received(session, first.id, "Re: Hello Ada", "Sounds good, call me.", clock.now())
    session.commit()
    syncer.sync()
    reply = next(t for t in salesforce.tasks() if t["Subject"].startswith("Reply:"))
    assert reply["Subject"] == "Reply: Re: Hello Ada"
    assert (reply["Status"], reply["ActivityDate"], reply["TaskSubtype"]) == ("Completed", "2026-12-02", "Email")
    assert reply["Description"].startswith("Sounds good, call me.\n\n")
    assert (reply["WhoId"], reply["OwnerId"]) == (crm["ada"], crm["rita"])


def test_without_a_contact_the_unconverted_lead_is_matched(session, clock, scheduler, syncer, salesforce):
    salesforce.add("Lead", Email="ada@example.com", LastName="Old", IsConverted=True)
    lead = salesforce.add("Lead", Email="ada@example.com", LastName="Lovelace", Company="AE")
    launch(session, clock, "ada@example.com")
    scheduler.tick()
    syncer.sync()
    (task,) = salesforce.tasks()
    assert task["WhoId"] == lead
    assert "OwnerId" not in task  # no User has the rep's email: the integration user owns it


def test_no_match_skips_with_why_and_the_task_updates_follow(session, clock, scheduler, syncer, salesforce):
    send = queue_the_task(session, clock, scheduler, "nobody@example.com")
    tasks.skip(session, send.id, REP_ID, clock.now())
    session.commit()
    result = syncer.sync()
    assert salesforce.tasks() == [] and result.unmatched == 3
    why = "no Contact or Lead in Salesforce has the email nobody@example.com"
    assert [(i.event, i.outcome, i.last_error) for i in items(session)] == [
        ("email_sent", SyncOutcome.UNMATCHED, why),
        ("task_queued", SyncOutcome.UNMATCHED, why),
        ("task_skipped", SyncOutcome.UNMATCHED, f"its task has no Salesforce Task: {why}"),
    ]
    assert len(sync.status(session).unmatched) == 3


def test_no_match_with_lead_creates_a_lead_with_company_not_provided(
    session, clock, scheduler, engine, sf_settings, salesforce
):
    settings = sf_settings.model_copy(update={"salesforce_no_match": "lead"})
    launch(session, clock, "grace@example.com", company="")
    scheduler.tick()
    Syncer(engine, clock, settings).sync()
    (lead,) = salesforce.records["Lead"].values()
    assert (lead["Email"], lead["LastName"], lead["FirstName"], lead["Company"]) == (
        "grace@example.com",
        "Lovelace",
        "Grace",
        "[not provided]",
    )
    assert salesforce.tasks()[0]["WhoId"] == lead["Id"]


def test_an_expired_session_logs_in_again_and_nothing_is_lost(session, clock, scheduler, syncer, salesforce, crm):
    launch(session, clock, "ada@example.com")
    scheduler.tick()
    syncer.sync()
    salesforce.expire_sessions()
    sync.reply_received(session, session.exec(select(Send)).first().id, "Re: Hello", "Yes", clock.now())
    session.commit()
    assert syncer.sync().synced == 1
    assert salesforce.logins == 2 and len(salesforce.tasks()) == 2


def test_request_limit_exceeded_backs_off_then_syncs_once(session, clock, scheduler, syncer, salesforce, crm):
    salesforce.add("Contact", Email="bob@example.com", LastName="B")
    launch(session, clock, "ada@example.com", "bob@example.com")
    scheduler.tick()
    salesforce.outage = "REQUEST_LIMIT_EXCEEDED"
    result = syncer.sync()
    assert result.synced == 0 and "REQUEST_LIMIT_EXCEEDED" in str(result.down)
    waiting = items(session)
    assert waiting[0].next_at == clock.now() + dt.timedelta(seconds=30) and waiting[0].attempts == 1
    assert waiting[1].next_at == clock.now() and waiting[1].attempts == 0  # given back untried
    salesforce.outage = None
    clock.advance(seconds=30)
    syncer.sync()
    assert sorted(t["Subject"] for t in salesforce.tasks()) == ["Email: Hello Ada", "Email: Hello Bob"]


def test_a_create_whose_answer_was_lost_is_found_not_made_twice(session, clock, scheduler, syncer, salesforce, crm):
    launch(session, clock, "ada@example.com")
    scheduler.tick()
    salesforce.drop_next_create = 1
    result = syncer.sync()
    assert result.retrying == 1 and len(salesforce.tasks()) == 1  # Salesforce has it; the bot does not know
    clock.advance(seconds=30)
    assert syncer.sync().synced == 1
    (task,) = salesforce.tasks()
    assert items(session)[0].sf_task_id == task["Id"]


def test_hours_of_outage_then_everything_once(session, clock, scheduler, syncer, salesforce, crm):
    launch(session, clock, "ada@example.com", "bob@example.com", "cleo@example.com")
    salesforce.add("Contact", Email="bob@example.com", LastName="B")
    salesforce.add("Contact", Email="cleo@example.com", LastName="C")
    scheduler.tick()
    salesforce.outage = 503
    end = clock.now() + dt.timedelta(hours=5)
    while clock.now() < end:  # passes every 5 minutes
        result = syncer.sync()
        assert result.synced == 0
        clock.advance(minutes=5)
    clock.set(THURSDAY_0900_STOCKHOLM)
    scheduler.tick()  # three tasks queued while Salesforce is still down
    syncer.sync()
    salesforce.outage = None
    clock.advance(minutes=15)
    syncer.sync()
    subjects = sorted(t["Subject"] for t in salesforce.tasks())
    assert subjects == [
        "Email: Call Ada?",
        "Email: Call Bob?",
        "Email: Call Cleo?",
        "Email: Hello Ada",
        "Email: Hello Bob",
        "Email: Hello Cleo",
    ]
    assert all(i.outcome == SyncOutcome.SYNCED for i in items(session))


def test_a_task_completed_in_salesforce_is_done_here_and_the_campaign_goes_on(
    session, clock, scheduler, syncer, salesforce, crm
):
    queue_the_task(session, clock, scheduler)
    syncer.sync()
    task_id = items(session)[-1].sf_task_id
    clock.advance(hours=1)
    salesforce.edit("Task", task_id, Status="Completed")
    result = syncer.sync()
    assert result.completed_in_salesforce == 1
    assert the_task(session).status == SendStatus.SKIPPED
    last = session.exec(select(Send).where(Send.position == 3)).one()
    session.commit()
    assert last.status == SendStatus.PLANNED  # the campaign goes on
    assert salesforce.records["Task"][task_id]["Subject"] == "Email: Call Ada?"  # not written back as skipped
    assert [i.event for i in items(session)] == ["email_sent", "task_queued"]
    assert syncer.sync().completed_in_salesforce == 0  # read again: nothing more to do


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # neither syncer's pass fails
def test_two_syncers_on_postgresql_sync_each_event_once(
    session, clock, scheduler, engine, sf_settings, salesforce, crm
):
    emails = [f"p{n}@example.com" for n in range(30)]
    for email in emails:
        salesforce.add("Contact", Email=email, LastName="P")
    launch(session, clock, *emails)
    scheduler.tick()
    syncers = [Syncer(engine, clock, sf_settings, worker_id=f"sync-{n}", batch=3) for n in (1, 2)]
    threads = [threading.Thread(target=s.sync) for s in syncers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(salesforce.tasks()) == 30
    assert {i.claimed_by for i in items(session)} == {"sync-1", "sync-2"}
