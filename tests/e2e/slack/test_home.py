"""App Home, the rep's command center: what it shows, its buttons, its refresh and limits."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.slack.blocks import tasks as blocks
from bot.slack.blocks.home import HOME_TASKS
from bot.slack.notifier import SlackNotifier
from bot.store.models import Person, Send, Step
from tests.support.factories import REP_ID, make_campaign, make_rep
from tests.support.fake_slack import FakeSlack
from tests.support.sends import TASK_STEPS, RecordingDeliverer, enroll, make_person, make_send, make_task
from tests.support.slack_requests import SlackRequests


@pytest.fixture
def deliverer(engine: Engine, clock: FixedClock) -> RecordingDeliverer:
    return RecordingDeliverer(engine, clock)


def open_home(fake: FakeSlack, slack: SlackRequests, user: str = REP_ID) -> dict[str, Any]:
    published = len(fake.calls_to("views.publish"))
    assert slack.event({"type": "app_home_opened", "user": user, "channel": "D0REP0001", "tab": "home"}).status == 200
    fake.wait_for(lambda: len(fake.calls_to("views.publish")) > published)
    return fake.home[user]


def shown(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def test_an_empty_home(session: Session, fake_slack: FakeSlack, slack: SlackRequests) -> None:
    make_rep(session)
    home = open_home(fake_slack, slack)
    assert home["type"] == "home"
    text = shown(home)
    assert "Nothing waiting for you" in text and "No emails planned for the rest of today" in text
    assert "No active campaigns" in text


def test_home_shows_tasks_overdue_first_todays_emails_and_campaigns(
    session: Session, clock: FixedClock, fake_slack: FakeSlack, slack: SlackRequests
) -> None:
    make_rep(session)
    make_task(session, due_at=clock.now(), email="nils@example.com", first_name="Nils")
    make_task(session, due_at=clock.now() - dt.timedelta(days=3), email="olga@example.com", first_name="Olga")
    spring = make_campaign(session, TASK_STEPS, name="Spring")
    enrollment = enroll(
        session, spring, make_person(session, "erik@example.com", first_name="Erik"), launched_at=clock.now()
    )
    make_send(session, enrollment, 2, due_at=clock.now() + dt.timedelta(hours=2), status="planned")

    text = shown(open_home(fake_slack, slack))
    assert "2 tasks waiting for you, 1 overdue" in text
    assert text.index("Olga") < text.index("Nils") and ":warning: *overdue*" in text
    assert "`12:00` Erik Lovelace · step 2 of “Spring” · _Still there?_" in text
    assert "*“Q4”*: 2 people active, 2 tasks queued" in text and "*“Spring”*: 1 person active, 0 tasks queued" in text
    buttons = [
        e["text"]["text"] for b in fake_slack.home[REP_ID]["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert buttons[:6] == ["Send", "Edit", "Schedule", "Skip", "Open in Gmail", "Open in Outlook"]


def test_the_messages_tab_draws_nothing(session: Session, fake_slack: FakeSlack, slack: SlackRequests) -> None:
    make_rep(session)
    slack.event({"type": "app_home_opened", "user": REP_ID, "channel": "D0REP0001", "tab": "messages"})
    open_home(fake_slack, slack)  # a later Home event is answered: the first was ignored, not stuck
    assert len(fake_slack.calls_to("views.publish")) == 1


def test_a_click_in_home_acts_and_refreshes_home_and_the_message(
    session: Session,
    clock: FixedClock,
    fake_slack: FakeSlack,
    slack: SlackRequests,
    notifier: SlackNotifier,
    deliverer: RecordingDeliverer,
) -> None:
    make_rep(session)
    send = make_task(session, due_at=clock.now())
    notifier.task_due(send.id)
    session.refresh(send)
    session.commit()
    home = open_home(fake_slack, slack)

    published = len(fake_slack.calls_to("views.publish"))
    slack.block_action(blocks.SEND, str(send.id), view=home, block_id=f"task-{send.id}-actions")
    fake_slack.wait_for(lambda: len(fake_slack.calls_to("views.publish")) > published)
    assert "Nothing waiting for you" in shown(fake_slack.home[REP_ID])
    assert "Sent at 10:00" in json.dumps(fake_slack.messages[(send.slack_channel, send.slack_ts)]["blocks"])
    assert deliverer.delivered == [send.id]


def test_a_rep_with_300_tasks_gets_a_home_and_a_digest_within_block_kit_limits(
    session: Session, clock: FixedClock, fake_slack: FakeSlack, slack: SlackRequests, notifier: SlackNotifier
) -> None:
    make_rep(session)
    campaign = make_campaign(session, TASK_STEPS, name="Q4")
    step = session.exec(select(Step).where(Step.campaign_id == campaign.id, Step.position == 1)).one()
    people = [Person(email=f"p{n}@example.com", first_name=f"P{n}") for n in range(300)]
    session.add_all(people)
    session.flush()
    enrollments = [enroll(session, campaign, person, launched_at=clock.now()) for person in people]
    session.execute(
        insert(Send),
        [
            dict(
                enrollment_id=e.id,
                step_id=step.id,
                position=1,
                rep_id=REP_ID,
                kind="task",
                status="queued",
                due_at=clock.now() - dt.timedelta(minutes=n),
                created_at=clock.now(),
                updated_at=clock.now(),
            )
            for n, e in enumerate(enrollments)
        ],
    )
    session.commit()

    home = open_home(fake_slack, slack)
    assert len(home["blocks"]) <= 100
    text = shown(home)
    assert "300 tasks waiting for you" in text and f"and {300 - HOME_TASKS} more tasks" in text
    assert "*“Q4”*: 300 people active, 300 tasks queued" in text

    assert notifier.digest(REP_ID)
    digest = fake_slack.calls_to("chat.postMessage")[-1]
    assert len(digest["blocks"]) <= 50 and "and 285 more tasks: see the Home tab" in json.dumps(digest["blocks"])
