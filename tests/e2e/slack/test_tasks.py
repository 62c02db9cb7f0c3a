"""Email tasks in Slack, end to end: the task message, each button, each modal, refusals,
double clicks and retries, failure messages and the digest. Requests come signed to
the app's real HTTP endpoint; the app talks to the fake Slack over HTTP.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.clock import FixedClock
from bot.delivery.ports import Email
from bot.delivery.routes import Relay
from bot.delivery.scheduler import Scheduler
from bot.slack.blocks import tasks as blocks
from bot.slack.context import Deps
from bot.slack.notifier import SlackNotifier
from bot.store.models import Enrollment, Send
from tests.support.factories import REP_ID, make_campaign, make_rep
from tests.support.fake_slack import FakeSlack
from tests.support.sends import TASK_STEPS, RecordingDeliverer, enroll, make_person, make_send, make_task
from tests.support.slack_requests import SlackRequests, datetime_value, running_app

UTC = dt.UTC
OTHER = "U0OTHER01"


@pytest.fixture
def deliverer(engine: Engine, clock: FixedClock) -> RecordingDeliverer:
    return RecordingDeliverer(engine, clock)


@pytest.fixture
def task(session: Session, clock: FixedClock, notifier: SlackNotifier) -> Send:
    """A task due now, already posted to its rep by the notifier."""
    make_rep(session)
    send = make_task(session, due_at=clock.now())
    notifier.task_due(send.id)
    reload(session, send)
    return send


def reload(session: Session, send: Send) -> Send:
    """The send as stored now; the read ends at once (on SQLite an open one blocks the app)."""
    session.refresh(send)
    session.commit()
    return send


def message_of(fake: FakeSlack, send: Send) -> dict[str, Any]:
    return fake.messages[(send.slack_channel, send.slack_ts)]


def text_of(message: dict[str, Any]) -> str:
    """Every piece of text in a message's or view's blocks, for assertions."""
    return json.dumps(message.get("blocks", []), ensure_ascii=False)


def elements(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


def button_texts(message: dict[str, Any]) -> list[str]:
    return [e["text"]["text"] for e in elements(message)]


def click(fake: FakeSlack, slack: SlackRequests, action_id: str, send: Send, **options: Any) -> None:
    """Click a button of the send's message and wait until the app is done (it redraws Home last)."""
    published = len(fake.calls_to("views.publish"))
    if "message" not in options:
        options["message"] = message_of(fake, send)
    assert slack.block_action(action_id, str(send.id), **options).status == 200
    fake.wait_for(lambda: len(fake.calls_to("views.publish")) > published)


def submit(fake: FakeSlack, slack: SlackRequests, view: dict[str, Any], values: dict[str, Any]) -> Any:
    """Submit a modal; when it is accepted, wait until the app is done."""
    published = len(fake.calls_to("views.publish"))
    reply = slack.view_submission(view, values)
    assert reply.status == 200
    if not reply.body:
        fake.wait_for(lambda: len(fake.calls_to("views.publish")) > published)
    return reply.json()


def wait_updated(fake: FakeSlack, send: Send, contains: str) -> dict[str, Any]:
    fake.wait_for(lambda: contains in text_of(message_of(fake, send)))
    return message_of(fake, send)


def status_of(session: Session, send_id: int) -> str:
    return reload(session, session.get(Send, send_id)).status


# --- the task message --------------------------------------------------------------


def test_the_task_message_shows_the_email_and_its_buttons(fake_slack: FakeSlack, task: Send) -> None:
    post = fake_slack.calls_to("chat.postMessage")[0]
    assert post["channel"] == REP_ID  # a direct message to the rep
    message = message_of(fake_slack, task)
    assert message["text"] == "Email task: “Hello Ada” to Ada Lovelace (step 1 of “Q4”)"
    shown = text_of(message)
    for words in ("Ada Lovelace", "ada@example.com", "Analytical Engines", "Step 1 of “Q4”", "Hello Ada", "Hi Ada,"):
        assert words in shown
    assert button_texts(message) == ["Send", "Edit", "Schedule", "Skip", "Open in Gmail", "Open in Outlook"]
    send, _, _, skip, gmail, outlook = elements(message)
    assert send["style"] == "primary" and skip["confirm"]["confirm"]["text"] == "Skip"
    assert parse_qs(urlsplit(gmail["url"]).query) == {
        "view": ["cm"],
        "fs": ["1"],
        "to": ["ada@example.com"],
        "su": ["Hello Ada"],
        "body": ["Hi Ada,\nshall we talk?"],
    }
    assert outlook["url"].startswith("https://outlook.office.com/mail/deeplink/compose?")
    assert parse_qs(urlsplit(outlook["url"]).query)["subject"] == ["Hello Ada"]


def test_a_long_body_is_cut_to_fit_the_link_limit(
    session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack
) -> None:
    make_rep(session)
    campaign = make_campaign(
        session, [{"day": 1, "send": "task", "subject": "Long", "body": "ö & ∑ " * 2000}], name="Long"
    )
    send = make_task(session, due_at=clock.now(), campaign=campaign)
    notifier.task_due(send.id)
    reload(session, send)
    for link in elements(message_of(fake_slack, send))[4:]:
        assert len(link["url"]) <= 3000
        assert parse_qs(urlsplit(link["url"]).query)["body"][0].endswith("…")


def test_a_task_with_a_missing_field_says_so(
    session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack, slack: SlackRequests
) -> None:
    make_rep(session)
    campaign = make_campaign(
        session, [{"day": 1, "send": "task", "subject": "For {{ company }}", "body": "Hi"}], name="Co"
    )
    send = make_task(session, due_at=clock.now(), campaign=campaign, company="")
    notifier.task_due(send.id)
    reload(session, send)
    assert "No value for company: edit the email before sending." in text_of(message_of(fake_slack, send))
    slack.block_action(blocks.SEND, str(send.id), message=message_of(fake_slack, send))
    refusal = fake_slack.wait_for_call("chat.postEphemeral")
    assert "no value for company: edit it first" in refusal["text"]


# --- the buttons ----------------------------------------------------------------------


def test_send_delivers_and_the_message_says_when(
    fake_slack: FakeSlack, slack: SlackRequests, task: Send, deliverer: RecordingDeliverer, session: Session
) -> None:
    click(fake_slack, slack, blocks.SEND, task)
    message = wait_updated(fake_slack, task, "Sent at 10:00")  # 09:00 UTC is 10:00 in Stockholm
    assert button_texts(message) == [] and "Hello Ada" in text_of(message)
    assert deliverer.delivered == [task.id]
    home = fake_slack.wait_for(lambda: fake_slack.home.get(REP_ID))
    assert "Nothing waiting for you" in text_of(home)


def test_double_clicks_and_slack_retries_send_nothing_twice(
    fake_slack: FakeSlack, slack: SlackRequests, task: Send, deliverer: RecordingDeliverer
) -> None:
    message = message_of(fake_slack, task)
    clicks = [
        threading.Thread(target=slack.block_action, args=(blocks.SEND, str(task.id)), kwargs={"message": message})
        for _ in range(3)
    ]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    slack.block_action(
        blocks.SEND,
        str(task.id),
        message=message,
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    wait_updated(fake_slack, task, "Sent at")
    fake_slack.wait_for(lambda: len(fake_slack.calls_to("views.publish")) >= 4)
    assert deliverer.delivered == [task.id]


def test_skip_goes_on_with_the_campaign(
    fake_slack: FakeSlack, slack: SlackRequests, task: Send, session: Session
) -> None:
    click(fake_slack, slack, blocks.SKIP, task)
    message = wait_updated(fake_slack, task, "Skipped")
    assert button_texts(message) == []
    session.expire_all()
    statuses = [
        s.status
        for s in session.exec(select(Send).where(Send.enrollment_id == task.enrollment_id).order_by(Send.position))
    ]
    session.commit()
    assert statuses == ["skipped", "planned"]


def test_someone_elses_click_is_refused_privately(
    fake_slack: FakeSlack, slack: SlackRequests, task: Send, deliverer: RecordingDeliverer, session: Session
) -> None:
    for action in (blocks.SEND, blocks.SKIP, blocks.EDIT):
        slack.block_action(action, str(task.id), user_id=OTHER, message=message_of(fake_slack, task))
    fake_slack.wait_for(lambda: len(fake_slack.calls_to("chat.postEphemeral")) == 3)
    for refusal in fake_slack.calls_to("chat.postEphemeral"):
        assert refusal["user"] == OTHER and refusal["text"].startswith("This is not your task")
    assert fake_slack.calls_to("chat.update") == [] and fake_slack.calls_to("views.open") == []
    assert deliverer.delivered == [] and status_of(session, task.id) == "queued"


def test_a_paused_persons_task_is_refused_clearly(
    fake_slack: FakeSlack, slack: SlackRequests, task: Send, session: Session
) -> None:
    session.execute(update(Enrollment).where(col(Enrollment.id) == task.enrollment_id).values(status="paused"))
    session.execute(update(Send).where(col(Send.id) == task.id).values(status="paused"))
    session.commit()
    slack.block_action(blocks.SEND, str(task.id), message=message_of(fake_slack, task))
    refusal = fake_slack.wait_for_call("chat.postEphemeral")
    assert refusal["text"] == "This person is paused in “Q4”: resume them to act on this task."


# --- the modals -----------------------------------------------------------------------------


def open_modal(fake: FakeSlack, slack: SlackRequests, action_id: str, send: Send) -> dict[str, Any]:
    slack.block_action(action_id, str(send.id), message=message_of(fake, send))
    return fake.wait_for_call("views.open")["view"]


def input_of(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)["element"]


def test_edit_keeps_the_reps_version(
    fake_slack: FakeSlack, slack: SlackRequests, task: Send, deliverer: RecordingDeliverer
) -> None:
    view = open_modal(fake_slack, slack, blocks.EDIT, task)
    assert input_of(view, blocks.SUBJECT_BLOCK)["initial_value"] == "Hello Ada"
    body = input_of(view, blocks.BODY_BLOCK)
    assert body["multiline"] and body["initial_value"] == "Hi Ada,\nshall we talk?"

    answer = submit(
        fake_slack,
        slack,
        view,
        {"subject": {"value": {"value": "Lunch?"}}, "body": {"value": {"value": "Dear Ada, lunch on Friday?"}}},
    )
    assert answer is None
    message = wait_updated(fake_slack, task, "Lunch?")
    assert "Dear Ada, lunch on Friday?" in text_of(message) and "Send" in button_texts(message)
    gmail = next(e for e in elements(message) if e["action_id"] == blocks.OPEN_GMAIL)
    assert parse_qs(urlsplit(gmail["url"]).query)["su"] == ["Lunch?"]

    click(fake_slack, slack, blocks.SEND, task)
    wait_updated(fake_slack, task, "Sent at")
    assert deliverer.delivered == [task.id]


def test_edit_opens_a_long_email_whole_and_saving_it_keeps_every_character(
    fake_slack: FakeSlack, slack: SlackRequests, task: Send, session: Session
) -> None:
    subject = "Widgets & gadgets, " * 13 + "and a few more words to pass 250 characters!"
    body = "".join(f"Paragraph {n}: we make very good widgets, é 😀 & <co>. " * 12 + "\n\n" for n in range(10))[:6940]
    session.execute(update(Send).where(col(Send.id) == task.id).values(subject=subject, body=body))
    session.commit()
    view = open_modal(fake_slack, slack, blocks.EDIT, task)
    assert input_of(view, blocks.SUBJECT_BLOCK)["initial_value"] == subject
    parts = [b for b in view["blocks"] if b.get("block_id", "").startswith(blocks.BODY_BLOCK)]
    assert [p["label"]["text"] for p in parts] == ["Body, part 1 of 3", "Body, part 2 of 3", "Body, part 3 of 3"]
    assert "joined again, as one body, when you save" in text_of(view)

    def value(block: dict[str, Any], text: str | None = None) -> dict[str, Any]:
        return {"value": {"value": text or block["element"]["initial_value"]}}

    unchanged = {"subject": {"value": {"value": subject}}, **{p["block_id"]: value(p) for p in parts}}
    assert submit(fake_slack, slack, view, unchanged) is None
    assert (reload(session, task).subject, task.body) == (subject, body)

    changed = {**unchanged, "body-3": value(parts[2], "Best, Rita")}
    assert submit(fake_slack, slack, view, changed) is None
    assert reload(session, task).body == join_parts(parts[:2]) + "\nBest, Rita"


def join_parts(parts: list[dict[str, Any]]) -> str:
    return "\n".join(p["element"]["initial_value"] for p in parts)


def test_edit_refuses_an_empty_subject_on_the_field(fake_slack: FakeSlack, slack: SlackRequests, task: Send) -> None:
    view = open_modal(fake_slack, slack, blocks.EDIT, task)
    answer = submit(
        fake_slack, slack, view, {"subject": {"value": {"value": None}}, "body": {"value": {"value": "Hi"}}}
    )
    assert answer == {"response_action": "errors", "errors": {"subject": "The subject cannot be empty."}}
    assert "Hello Ada" in text_of(message_of(fake_slack, task))


def test_schedule_plans_the_email_and_says_when(
    fake_slack: FakeSlack, slack: SlackRequests, task: Send, session: Session
) -> None:
    view = open_modal(fake_slack, slack, blocks.SCHEDULE, task)
    picker = input_of(view, blocks.WHEN_BLOCK)
    assert picker["type"] == "datetimepicker"
    # Tomorrow 09:00 in the rep's zone, Stockholm, as a first guess.
    assert picker["initial_date_time"] == int(dt.datetime(2026, 12, 3, 8, 0, tzinfo=UTC).timestamp())

    at = dt.datetime(2026, 12, 3, 7, 30, tzinfo=UTC)
    assert submit(fake_slack, slack, view, {"when": {"value": datetime_value(at)}}) is None
    message = wait_updated(fake_slack, task, "Scheduled for Thu 3 Dec 08:30")
    assert button_texts(message) == []
    send = reload(session, task)
    assert (send.kind, send.status, send.due_at) == ("email", "planned", at)


def test_schedule_refuses_a_time_in_the_past_on_the_field(
    fake_slack: FakeSlack, slack: SlackRequests, task: Send, clock: FixedClock, session: Session
) -> None:
    view = open_modal(fake_slack, slack, blocks.SCHEDULE, task)
    answer = submit(fake_slack, slack, view, {"when": {"value": datetime_value(clock.now() - dt.timedelta(hours=1))}})
    assert answer == {"response_action": "errors", "errors": {"when": "Pick a time in the future."}}
    assert status_of(session, task.id) == "queued"


# --- failed and uncertain emails -----------------------------------------------------------


@pytest.fixture
def uncertain(session: Session, clock: FixedClock, notifier: SlackNotifier) -> Send:
    make_rep(session)
    campaign = make_campaign(session, TASK_STEPS, name="Q4")
    enrollment = enroll(session, campaign, make_person(session), launched_at=clock.now())
    send = make_send(
        session,
        enrollment,
        1,
        due_at=clock.now(),
        status="uncertain",
        kind="email",
        message_id="<m1@seller.example>",
        last_error="connection lost after the message was sent",
    )
    notifier.send_uncertain(send.id)
    reload(session, send)
    return send


def test_an_uncertain_email_asks_the_rep(fake_slack: FakeSlack, uncertain: Send) -> None:
    message = message_of(fake_slack, uncertain)
    assert (
        message["text"]
        == "An email to Ada Lovelace may not have gone out: connection lost after the message was sent (step 1 of “Q4”)"
    )
    shown = text_of(message)
    assert "connection lost after the message was sent" in shown and "ada@example.com" in shown and "Hi Ada," in shown
    assert button_texts(message) == ["Send again", "Mark as sent"]


def test_send_again_delivers_it(
    fake_slack: FakeSlack, slack: SlackRequests, uncertain: Send, deliverer: RecordingDeliverer
) -> None:
    click(fake_slack, slack, blocks.SEND_AGAIN, uncertain)
    wait_updated(fake_slack, uncertain, "Sent at 10:00")
    assert deliverer.delivered == [uncertain.id]


def test_mark_as_sent_goes_on_without_sending(
    fake_slack: FakeSlack, slack: SlackRequests, uncertain: Send, deliverer: RecordingDeliverer, session: Session
) -> None:
    click(fake_slack, slack, blocks.MARK_SENT, uncertain)
    wait_updated(fake_slack, uncertain, "Sent at 10:00")
    assert deliverer.delivered == []
    assert reload(session, uncertain).message_id == "<m1@seller.example>"


def test_a_failed_email_tells_the_reason(
    session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack
) -> None:
    make_rep(session)
    send = make_task(session, due_at=clock.now(), status="failed")
    session.execute(
        update(Send).where(col(Send.id) == send.id).values(kind="email", last_error="550 5.1.1 mailbox unavailable")
    )
    session.commit()
    notifier.send_failed(send.id)
    reload(session, send)
    message = message_of(fake_slack, send)
    assert message["text"] == "An email to Ada Lovelace failed: 550 5.1.1 mailbox unavailable (step 1 of “Q4”)"
    assert "Failed: 550 5.1.1 mailbox unavailable" in text_of(message)
    assert button_texts(message) == ["Send again", "Mark as sent"]


# --- the digest and /tasks -----------------------------------------------------------------


def test_the_digest_lists_tasks_and_todays_emails_with_buttons(
    session: Session, clock: FixedClock, notifier: SlackNotifier, fake_slack: FakeSlack, slack: SlackRequests
) -> None:
    make_rep(session)
    assert notifier.digest(REP_ID) is False and fake_slack.calls_to("chat.postMessage") == []
    old = make_task(session, due_at=clock.now() - dt.timedelta(days=2), email="old@example.com", first_name="Olga")
    new = make_task(session, due_at=clock.now(), email="new@example.com", first_name="Nils")
    campaign = make_campaign(session, TASK_STEPS, name="Spring")
    enrollment = enroll(
        session, campaign, make_person(session, "e@example.com", first_name="Erik"), launched_at=clock.now()
    )
    make_send(session, enrollment, 2, due_at=clock.now() + dt.timedelta(hours=5), status="planned")

    assert notifier.digest(REP_ID) is True
    digest = fake_slack.calls_to("chat.postMessage")[0]
    assert digest["channel"] == REP_ID
    assert digest["text"] == "Your day: 2 tasks waiting (1 overdue), 1 email going out today"
    shown = text_of(digest)
    assert shown.index("Olga") < shown.index("Nils") and "overdue" in shown
    assert "`15:00` Erik Lovelace · step 2 of “Spring” · _Still there?_" in shown
    assert button_texts(digest).count("Send") == 2

    # A click in the digest redraws that item in place; the other keeps its buttons.
    stored = next(iter(fake_slack.messages.values()))
    click(fake_slack, slack, blocks.SKIP, old, message=stored)
    assert "Skipped" in text_of(fake_slack.messages[(stored["channel"], stored["ts"])])
    redrawn = fake_slack.messages[(stored["channel"], stored["ts"])]
    assert button_texts(redrawn).count("Send") == 1 and "Nils" in text_of(redrawn)
    assert new.id is not None


def test_slash_tasks_lists_the_reps_tasks_privately(
    session: Session, clock: FixedClock, fake_slack: FakeSlack, slack: SlackRequests
) -> None:
    make_rep(session)
    reply = slack.command("", command="/tasks")
    assert reply.status == 200
    assert fake_slack.wait_for_response(1).text == "No email tasks are waiting for you."
    make_task(session, due_at=clock.now())
    make_task(session, due_at=clock.now(), email="other@example.com", rep_id=OTHER)
    slack.command("", command="/tasks")
    listed = fake_slack.wait_for_response(2)
    assert listed.payload["response_type"] == "ephemeral"
    assert listed.text == "Your email tasks: 1 task waiting for you"
    assert "Ada Lovelace" in text_of(listed.payload) and "other@example.com" not in text_of(listed.payload)
    assert button_texts(listed.payload)[:4] == ["Send", "Edit", "Schedule", "Skip"]


class CountingTransport:
    """A mail server connection that keeps what it was handed (shared by every connection)."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []  # parsed back from the wire
        self._lock = threading.Lock()

    def send(self, email: Email) -> None:
        with self._lock:
            self.sent.append(BytesParser(policy=policy.default).parsebytes(email.data))  # type: ignore[arg-type]

    def close(self) -> None:
        pass


def test_with_the_real_scheduler_double_clicks_and_retries_send_one_email(
    session: Session,
    clock: FixedClock,
    notifier: SlackNotifier,
    fake_slack: FakeSlack,
    deps: Deps,
    slack_client: WebClient,
) -> None:
    transport = CountingTransport()
    deps.deliverer = Scheduler(deps.engine, clock, Relay(lambda: transport), notifier, deps.settings)
    make_rep(session)
    send = make_task(session, due_at=clock.now())
    notifier.task_due(send.id)
    reload(session, send)
    with running_app(deps, slack_client) as server:
        slack = SlackRequests(server.url, fake=fake_slack)
        message = message_of(fake_slack, send)
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        clicks = [
            threading.Thread(
                target=slack.block_action, args=(blocks.SEND, str(send.id)), kwargs={"message": message, **extra}
            )
            for extra in ({}, {}, {"headers": retry})
        ]
        for click_ in clicks:
            click_.start()
        for click_ in clicks:
            click_.join()
        wait_updated(fake_slack, send, "Sent at 10:00")
        fake_slack.wait_for(lambda: len(fake_slack.calls_to("views.publish")) >= 3)
    assert len(transport.sent) == 1
    assert transport.sent[0]["To"] == "Ada Lovelace <ada@example.com>" and transport.sent[0]["Subject"] == "Hello Ada"
