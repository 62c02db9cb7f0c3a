"""The live feed: with FEED_CHANNEL set, a short line for each task queued and each email sent."""

from __future__ import annotations

import datetime as dt

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine, update
from sqlmodel import Session

from bot.clock import FixedClock
from bot.settings import Settings
from bot.slack.blocks import tasks as blocks
from bot.slack.notifier import SlackNotifier
from bot.store.models import Send
from tests.support.factories import make_rep
from tests.support.fake_slack import FakeSlack
from tests.support.sends import RecordingDeliverer, make_task
from tests.support.slack_requests import SlackRequests

FEED = "C0FEED001"


@pytest.fixture
def slack_settings(slack_settings: Settings) -> Settings:
    """The e2e settings, with the live feed on."""
    return slack_settings.model_copy(update={"feed_channel": FEED})


@pytest.fixture
def deliverer(engine: Engine, clock: FixedClock, notifier: SlackNotifier) -> RecordingDeliverer:
    """Tells the notifier what went out, as the scheduler does."""
    return RecordingDeliverer(engine, clock, notifier)


def feed_lines(fake: FakeSlack) -> list[str]:
    return [
        line
        for call in fake.calls_to("chat.postMessage")
        if call["channel"] == FEED
        for line in call["text"].split("\n")
    ]


def test_a_task_queued_and_its_email_sent_show_in_the_feed(
    session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack, slack: SlackRequests
) -> None:
    make_rep(session)
    send = make_task(session, due_at=clock.now())
    notifier.task_due(send.id)
    assert feed_lines(fake_slack) == ["Task queued: step 1 of “Q4” for Ada Lovelace (Rita Rep)"]

    session.refresh(send)
    session.commit()
    published = len(fake_slack.calls_to("views.publish"))
    slack.block_action(blocks.SEND, str(send.id), message=fake_slack.messages[(send.slack_channel, send.slack_ts)])
    fake_slack.wait_for(lambda: len(fake_slack.calls_to("views.publish")) > published)
    assert feed_lines(fake_slack)[1:] == ["Email sent: step 1 of “Q4” to Ada Lovelace (Rita Rep)"]


def test_a_batch_of_emails_is_one_feed_message(
    session: Session, clock: FixedClock, notifier: SlackNotifier, deliverer: RecordingDeliverer, fake_slack: FakeSlack
) -> None:
    make_rep(session)
    ids = [make_task(session, due_at=clock.now(), email=f"p{n}@example.com", first_name=f"P{n}").id for n in range(3)]
    session.execute(update(Send).values(kind="email", status="planned"))  # three emails due now
    session.commit()
    deliverer.deliver(ids)
    feed = [c for c in fake_slack.calls_to("chat.postMessage") if c["channel"] == FEED]
    assert len(feed) == 1
    assert sorted(feed[0]["text"].split("\n")) == [
        f"Email sent: step 1 of “Q4” to P{n} Lovelace (Rita Rep)" for n in range(3)
    ]


def test_no_feed_channel_no_feed(
    session: Session,
    engine: Engine,
    clock: FixedClock,
    slack_settings: Settings,
    slack_client: WebClient,
    fake_slack: FakeSlack,
) -> None:
    make_rep(session)
    send = make_task(session, due_at=clock.now())
    quiet = SlackNotifier(engine, slack_client, clock, slack_settings.model_copy(update={"feed_channel": None}))
    quiet.task_due(send.id)
    quiet.email_sent([send.id])
    assert feed_lines(fake_slack) == [] and len(fake_slack.calls_to("chat.postMessage")) == 1


def test_a_feed_slack_refuses_does_not_stop_anything(
    session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack
) -> None:
    make_rep(session)
    send = make_task(session, due_at=clock.now() - dt.timedelta(hours=1))
    fake_slack.fail("chat.postMessage", "channel_not_found")
    notifier.email_sent([send.id])  # no message of its own: the only post is the feed's, refused
    assert fake_slack.calls_to("chat.postMessage")[0]["channel"] == FEED
