"""One email that cannot be built never breaks a list: Home, `/tasks`, the digest and its
own task message say what is wrong with it, with Skip, and the rest show as usual.

The broken values are stored directly (as data from before a check existed would be):
an address the email package cannot write, and a step body that fails when rendered.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, col

from bot.clock import FixedClock
from bot.slack.blocks import tasks as blocks
from bot.slack.notifier import SlackNotifier
from bot.store.models import Person, Send, Step
from tests.support.factories import REP_ID, make_campaign, make_rep
from tests.support.fake_slack import FakeSlack
from tests.support.sends import TASK_STEPS, make_task
from tests.support.slack_requests import SlackRequests

BROKEN_STEPS = [{**TASK_STEPS[0], "body": "Hi {{ first_name }}"}, TASK_STEPS[1]]


@pytest.fixture
def three(session: Session, clock: FixedClock) -> dict[str, Send]:
    """Three tasks of the rep: one fine, one to an address MIME cannot write, one whose body fails to render."""
    make_rep(session)
    fine = make_task(session, due_at=clock.now() - dt.timedelta(hours=3), email="olga@example.com", first_name="Olga")
    address = make_task(
        session, due_at=clock.now() - dt.timedelta(hours=2), email="nils@example.com", first_name="Nils"
    )
    broken = make_campaign(session, BROKEN_STEPS, name="Broken")
    template = make_task(
        session,
        due_at=clock.now() - dt.timedelta(hours=1),
        email="erik@example.com",
        first_name="Erik",
        campaign=broken,
    )
    session.execute(update(Person).where(col(Person.email) == "nils@example.com").values(email="nilsé@example.com"))
    session.execute(
        update(Step).where(col(Step.campaign_id) == broken.id, col(Step.position) == 1).values(body="Hi {{ 1 / 0 }}")
    )
    session.commit()
    return {"fine": fine, "address": address, "template": template}


def text_of(blocks_or_view: Any) -> str:
    return json.dumps(blocks_or_view, ensure_ascii=False)


def items_of(shown: list[dict[str, Any]], send: Send) -> list[dict[str, Any]]:
    return [b for b in shown if str(b.get("block_id", "")).startswith(f"task-{send.id}-")]


def buttons_of(shown: list[dict[str, Any]], send: Send) -> list[str]:
    return [e["text"]["text"] for b in items_of(shown, send) if b["type"] == "actions" for e in b["elements"]]


def assert_listed(shown: list[dict[str, Any]], three: dict[str, Send]) -> None:
    """Every task is listed: the fine one as usual, each broken one with its reason and only Skip."""
    assert "Hello Olga" in text_of(items_of(shown, three["fine"]))
    assert buttons_of(shown, three["fine"]) == ["Send", "Edit", "Schedule", "Skip", "Open in Gmail", "Open in Outlook"]
    assert "The email could not be built: 'ascii' codec can't encode" in text_of(items_of(shown, three["address"]))
    assert "The email could not be built: division by zero" in text_of(items_of(shown, three["template"]))
    assert buttons_of(shown, three["address"]) == buttons_of(shown, three["template"]) == ["Skip"]


def open_home(fake: FakeSlack, slack: SlackRequests) -> dict[str, Any]:
    published = len(fake.calls_to("views.publish"))
    assert slack.event({"type": "app_home_opened", "user": REP_ID, "channel": "D0REP0001", "tab": "home"}).status == 200
    fake.wait_for(lambda: len(fake.calls_to("views.publish")) > published)
    return fake.home[REP_ID]


def test_home_lists_every_task_and_says_what_is_wrong_with_the_broken_ones(
    three: dict[str, Send], fake_slack: FakeSlack, slack: SlackRequests
) -> None:
    home = open_home(fake_slack, slack)
    assert "3 tasks waiting for you" in text_of(home["blocks"])
    assert_listed(home["blocks"], three)


def test_slash_tasks_lists_every_task(three: dict[str, Send], fake_slack: FakeSlack, slack: SlackRequests) -> None:
    assert slack.command("", command="/tasks").status == 200
    listed = fake_slack.wait_for_response(1)
    assert listed.text == "Your email tasks: 3 tasks waiting for you"
    assert_listed(listed.payload["blocks"], three)


def test_the_digest_lists_every_task(three: dict[str, Send], notifier: SlackNotifier, fake_slack: FakeSlack) -> None:
    assert notifier.digest(REP_ID) is True
    digest = fake_slack.calls_to("chat.postMessage")[-1]
    assert digest["text"].startswith("Your day: 3 tasks waiting")
    assert_listed(digest["blocks"], three)


def test_a_broken_tasks_own_message_says_why_and_skip_goes_on(
    session: Session, three: dict[str, Send], notifier: SlackNotifier, fake_slack: FakeSlack, slack: SlackRequests
) -> None:
    broken = three["template"]
    notifier.task_due(broken.id)
    posted = fake_slack.calls_to("chat.postMessage")[-1]
    assert (
        posted["text"]
        == "Email task for Erik Lovelace (step 1 of “Broken”): the email could not be built: division by zero"
    )
    assert "Skip this step to go on with the campaign." in text_of(posted["blocks"])
    session.refresh(broken)
    session.commit()
    message = fake_slack.messages[(broken.slack_channel, broken.slack_ts)]
    assert [e["text"]["text"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]] == ["Skip"]

    # A stale Send button (or a click from an old message) is refused with the reason.
    assert slack.block_action(blocks.SEND, str(broken.id), message=message).status == 200
    refusal = fake_slack.wait_for_call("chat.postEphemeral")
    assert "This email cannot go out: the email could not be built: division by zero" in refusal["text"]

    published = len(fake_slack.calls_to("views.publish"))
    assert (
        slack.block_action(blocks.SKIP, str(broken.id), message=message, block_id=f"task-{broken.id}-actions").status
        == 200
    )
    fake_slack.wait_for(lambda: len(fake_slack.calls_to("views.publish")) > published)
    assert "Skipped" in text_of(fake_slack.messages[(broken.slack_channel, broken.slack_ts)]["blocks"])
    assert "2 tasks waiting for you" in text_of(fake_slack.home[REP_ID]["blocks"])
