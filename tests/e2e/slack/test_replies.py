"""What the rep sees when a reply comes back: the DM, the feed line, the Home tab, "Not a reply: go on"."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.clock import FixedClock
from bot.core.inbound import classify
from bot.services import replies
from bot.settings import Settings
from bot.slack.blocks import replies as blocks
from bot.slack.notifier import SlackNotifier
from bot.store.models import EnrollmentStatus, Inbound, SendStatus
from tests.e2e.listening import sent_email, state
from tests.support import inbound_samples as samples
from tests.support.factories import REP_ID
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SlackRequests

FEED = "C0FEED001"


@pytest.fixture
def slack_settings(slack_settings: Settings) -> Settings:
    return slack_settings.model_copy(update={"feed_channel": FEED})


def came_back(engine: Engine, clock: FixedClock, raw: bytes, uid: int = 1) -> Inbound:
    verdict = classify(email.message_from_bytes(raw, policy=email.policy.default), clock.now())
    with Session(engine, expire_on_commit=False) as session:
        inbound = replies.act(
            session, clock.now(), replies.Where(f"rep:{REP_ID}", "INBOX", 7, uid, REP_ID), verdict, clock.now()
        )
        session.commit()
    assert inbound is not None
    return inbound


def test_a_reply_is_told_by_direct_message_with_its_first_lines_and_a_feed_line(
    engine: Engine, session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack
) -> None:
    sent = sent_email(session, "ada@engines.example", clock.now())
    inbound = came_back(
        engine,
        clock,
        samples.gmail_reply("Ada Lovelace <ada@engines.example>", sent.message_id, body="Yes <@U0EVIL> & let's talk!"),
    )

    notifier.inbound(inbound.id)  # type: ignore[arg-type]

    [dm, feed] = fake_slack.calls_to("chat.postMessage")
    shown = json.dumps(dm["blocks"], ensure_ascii=False)
    assert dm["channel"] == REP_ID
    assert "Yes &lt;@U0EVIL&gt; &amp; let's talk!" in shown  # escaped: no mention, no link
    assert "wrote" not in shown and "A quick idea" not in shown  # the quoted history is left out
    assert "step 1 of “Q4 outreach”" in shown
    assert blocks.GO_ON in shown
    assert (
        feed["channel"] == FEED and feed["text"] == "Reply: Ada Lovelace replied to step 1 of “Q4 outreach” (Rita Rep)"
    )


def test_not_a_reply_go_on_resumes_the_enrollment_as_on_resume(
    engine: Engine,
    session: Session,
    clock: FixedClock,
    notifier: SlackNotifier,
    fake_slack: FakeSlack,
    slack: SlackRequests,
) -> None:
    sent = sent_email(session, "ada@engines.example", clock.now())
    inbound = came_back(engine, clock, samples.gmail_reply("ada@engines.example", sent.message_id))
    notifier.inbound(inbound.id)  # type: ignore[arg-type]
    [dm] = [call for call in fake_slack.calls_to("chat.postMessage") if call["channel"] == REP_ID]
    assert state(engine, sent)[0] == EnrollmentStatus.REPLIED

    stopped_at = clock.now()
    clock.advance(days=1)  # a day later: the follow-up moves a day later too (no catch-up)
    slack.block_action(blocks.GO_ON, str(inbound.id))
    fake_slack.wait_for(lambda: len(fake_slack.calls_to("views.publish")) > 0)

    assert state(engine, sent) == (EnrollmentStatus.ACTIVE, None, SendStatus.PLANNED, None)
    with Session(engine) as check:
        from bot.store.models import Send

        planned = check.get(Send, sent.planned_id)
        assert planned is not None and planned.due_at == stopped_at + dt.timedelta(days=3)  # was +2 days, moved 1
        assert check.get(Inbound, inbound.id).undone_at == clock.now()  # type: ignore[union-attr]


def test_the_home_tab_lists_the_weeks_replies(
    engine: Engine, session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack
) -> None:
    sent = sent_email(session, "ada@engines.example", clock.now())
    came_back(engine, clock, samples.gmail_reply("ada@engines.example", sent.message_id, body="Thursday works for me."))

    notifier.publish_home(REP_ID)

    [published] = fake_slack.calls_to("views.publish")
    shown = json.dumps(published["view"], ensure_ascii=False)
    assert "Replies this week" in shown and "Ada Lovelace" in shown and "Thursday works for me." in shown


def test_an_out_of_office_and_a_bounce_are_told_too(
    engine: Engine, session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack
) -> None:
    ada = sent_email(session, "ada@engines.example", clock.now())
    bob = sent_email(session, "bob@builders.example", clock.now())
    away = came_back(
        engine, clock, samples.gmail_out_of_office("ada@engines.example", ada.message_id, "Back on December 14."), uid=1
    )
    bounce = came_back(engine, clock, samples.postfix_bounce("bob@builders.example", bob.message_id), uid=2)

    notifier.inbound(away.id)  # type: ignore[arg-type]
    notifier.inbound(bounce.id)  # type: ignore[arg-type]

    texts = [(call["channel"], call["text"]) for call in fake_slack.calls_to("chat.postMessage")]
    assert texts == [
        (REP_ID, "Ada Lovelace is out of office: paused until Tue 15 Dec 09:00"),
        (REP_ID, "An email to bob@builders.example bounced"),
        (
            FEED,
            "Bounce: bob@builders.example, step 1 of “Q4 outreach” (Rita Rep): 5.1.1 550 5.1.1 &lt;bob@builders.example&gt;: Recipient address rejected: User unknown in virtual mailbox table",
        ),
    ]
