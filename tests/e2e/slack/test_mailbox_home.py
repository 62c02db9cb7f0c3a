"""A rep connects their own mailbox from the Home tab: the dialog, the login check, Disconnect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlmodel import Session

from bot.mail.mailboxes import mark_broken
from bot.settings import Settings
from bot.slack.blocks import mailbox as blocks
from bot.slack.notifier import SlackNotifier
from bot.store.models import Mailbox
from tests.support.factories import REP_ID, make_rep
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SIGNING_SECRET, SlackRequests
from tests.support.smtp_sink import SmtpSink

PASSWORD = "app-password-7731"


@pytest.fixture
def secret_key() -> str | None:
    return Fernet.generate_key().decode()


@pytest.fixture
def slack_settings(fake_slack: FakeSlack, secret_key: str | None) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.url,
        secret_key=secret_key,
    )


@pytest.fixture
def server() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def home_text(fake: FakeSlack) -> str:
    return json.dumps(fake.home[REP_ID], ensure_ascii=False)


def open_dialog(fake: FakeSlack, slack: SlackRequests) -> dict[str, Any]:
    assert slack.block_action(blocks.CONNECT, view={"id": "VHOME", "type": "home"}).status == 200
    fake.wait_for_call("views.open", timeout=60)
    return list(fake.views.values())[-1]  # as Slack keeps it: with its id, which views.update names


def values(server: SmtpSink, password: str = PASSWORD, **changes: str) -> dict[str, Any]:
    typed = {
        "smtp_host": "127.0.0.1",
        "smtp_port": str(server.port),
        "imap_host": "",
        "imap_port": "",
        "user": "rita@seller.example",
    }
    typed |= {"password": password, **changes}
    picked = {"provider": "other", "security": "none"}
    return {
        **{key: {blocks.INPUT: {"type": "plain_text_input", "value": value}} for key, value in typed.items()},
        **{
            key: {blocks.INPUT: {"type": "static_select", "selected_option": {"value": value}}}
            for key, value in picked.items()
        },
    }


def test_a_rep_connects_their_mailbox_from_home_and_the_password_is_kept_encrypted(
    fake_slack: FakeSlack, slack: SlackRequests, notifier: SlackNotifier, session: Session, server: SmtpSink
) -> None:
    make_rep(session)
    notifier.publish_home(REP_ID)
    assert "Connect your mailbox" in home_text(fake_slack) and "through the company relay" not in home_text(fake_slack)
    dialog = open_dialog(fake_slack, slack)
    assert dialog["submit"]["text"] == "Connect"

    reply = slack.view_submission(dialog, values(server))

    assert reply.json()["response_action"] == "update" and "Logging in" in json.dumps(reply.json()["view"])
    update = fake_slack.wait_for_call("views.update", timeout=60)
    assert "Connected: your emails now go out from *rita@seller.example*" in json.dumps(update["view"])
    fake_slack.wait_for(lambda: ":white_check_mark: Connected" in home_text(fake_slack), timeout=60)
    assert "Sent in the last 24 hours: 0." in home_text(fake_slack)
    stored = session.get(Mailbox, REP_ID)
    assert stored is not None and (stored.smtp_host, stored.smtp_user) == ("127.0.0.1", "rita@seller.example")
    raw = session.execute(text("SELECT * FROM mailbox")).one()
    assert PASSWORD not in " ".join(str(value) for value in raw), "never in the database in clear"
    assert PASSWORD not in json.dumps([call.params for call in fake_slack.calls]), "never shown back in Slack"


def test_a_refused_login_shows_the_servers_answer_and_stores_nothing(
    fake_slack: FakeSlack, slack: SlackRequests, session: Session, server: SmtpSink
) -> None:
    make_rep(session)
    server.refuse_logins()
    dialog = open_dialog(fake_slack, slack)

    slack.view_submission(dialog, values(server, password="wrong"))

    again = fake_slack.wait_for_call("views.update", timeout=60)["view"]
    shown = json.dumps(again)
    assert "535" in shown and "wrong" not in shown.replace("wrong guess", "")
    assert (
        next(b for b in again["blocks"] if b.get("block_id") == "smtp_host")["element"]["initial_value"] == "127.0.0.1"
    )
    assert next(b for b in again["blocks"] if b.get("block_id") == "password")["element"].get("initial_value") is None
    assert session.get(Mailbox, REP_ID) is None


def test_missing_fields_are_refused_on_the_field(fake_slack: FakeSlack, slack: SlackRequests, server: SmtpSink) -> None:
    dialog = open_dialog(fake_slack, slack)

    reply = slack.view_submission(dialog, values(server, password="", smtp_host="", smtp_port="twenty-five"))

    errors = reply.json()["errors"]
    assert set(errors) == {"smtp_host", "smtp_port", "password"}
    assert "not a port" in errors["smtp_port"]


@pytest.mark.parametrize("secret_key", [None])
def test_without_a_secret_key_the_dialog_says_no_mailbox_can_be_stored(
    fake_slack: FakeSlack, slack: SlackRequests
) -> None:
    dialog = open_dialog(fake_slack, slack)

    assert "submit" not in dialog and "has not set `SECRET_KEY`" in json.dumps(dialog)


def test_a_broken_mailbox_shows_its_error_with_reconnect_and_disconnect_gives_the_relay_back(
    fake_slack: FakeSlack, slack: SlackRequests, notifier: SlackNotifier, session: Session, server: SmtpSink, clock: Any
) -> None:
    make_rep(session)
    dialog = open_dialog(fake_slack, slack)
    slack.view_submission(dialog, values(server))
    fake_slack.wait_for_call("views.update", timeout=60)
    session.expire_all()
    mailbox = session.get(Mailbox, REP_ID)
    assert mailbox is not None
    mark_broken(session, mailbox, "535 5.7.8 Authentication credentials invalid", clock.now())
    session.commit()

    notifier.publish_home(REP_ID)
    assert "refused the login: 535 5.7.8 Authentication credentials invalid" in home_text(fake_slack)
    assert "Reconnect" in home_text(fake_slack)

    slack.block_action(blocks.DISCONNECT, view={"id": "VHOME", "type": "home"})
    fake_slack.wait_for(lambda: "Connect your mailbox" in home_text(fake_slack), timeout=60)
    session.expire_all()
    assert session.get(Mailbox, REP_ID) is None
