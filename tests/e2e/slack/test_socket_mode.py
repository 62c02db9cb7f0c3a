"""`bot serve --socket` as a real process: a rep uses the bot over Socket Mode, with no public URL.

The app side is the real one (Bolt's SocketModeHandler on slack_sdk's client); Slack is
FakeSlack (Web API, response_url) plus FakeSocketMode (the WebSocket it hands out).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlmodel import Session
from sqlmodel import select as sql_select

from bot.store.models import Enrollment
from tests.support.factories import make_campaign
from tests.support.fake_slack import FakeSlack
from tests.support.fake_socket_mode import FakeSocketMode
from tests.support.slack_requests import bot_env, command_fields, slack_escape

APP_TOKEN = "xapp-1-A0APP0001-1234-abcdef"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


def socket_env(tmp_path: Path, fake: FakeSlack, **settings: str) -> dict[str, str]:
    env = bot_env(
        tmp_path, SLACK_BOT_TOKEN="xoxb-test-token", SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=fake.url, **settings
    )
    # slack_sdk's Socket Mode client would take a proxy from these, even for loopback.
    return {key: value for key, value in env.items() if key not in PROXY_VARIABLES}


@contextmanager
def serving_socket_mode(
    tmp_path: Path, fake: FakeSlack, socket_mode: FakeSocketMode, database_url: str
) -> Iterator[subprocess.Popen[str]]:
    """`bot serve --socket --no-scheduler` connected to `socket_mode`; stopped with SIGTERM."""
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--socket", "--no-scheduler"],
            cwd=tmp_path,
            env=socket_env(tmp_path, fake, DATABASE_URL=database_url),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def wake_when_ended() -> None:
            # The wait below ends early, with the log, if the process dies before it connects.
            process.wait()
            socket_mode.notify()

        threading.Thread(target=wake_when_ended, daemon=True).start()
        try:
            socket_mode.wait_for(lambda: socket_mode.is_connected() or process.poll() is not None, timeout=30)
            assert socket_mode.is_connected(), f"bot serve --socket did not connect:\n{log.read_text()[-3000:]}"
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)
    assert process.returncode == 0, log.read_text()[-3000:]


# The transport is what is under test here; test_serve.py runs `bot serve` on both databases.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_rep_adds_a_person_over_socket_mode(
    tmp_path: Path, fake_slack: FakeSlack, db_url: str, session: Session
) -> None:
    make_campaign(session, [{"day": 1, "send": "task", "subject": "Hi", "body": "Hello"}], name="Q4 outreach")
    with FakeSocketMode().serve_for(fake_slack) as socket_mode:
        with serving_socket_mode(tmp_path, fake_slack, socket_mode, db_url):
            response_url = fake_slack.response_url()
            text = slack_escape('add "Q4 outreach" Ada Lovelace <ada@example.com>')
            envelope_id = socket_mode.send("slash_commands", command_fields(text, response_url=response_url))
            assert socket_mode.ack_for(envelope_id)["envelope_id"] == envelope_id
            assert fake_slack.response_to(response_url).text == "Q4 outreach: 1 added, 0 already active, 0 invalid."

            list_url = fake_slack.response_url()
            socket_mode.ack_for(socket_mode.send("slash_commands", command_fields("list", response_url=list_url)))
            assert "Q4 outreach" in str(fake_slack.response_to(list_url).payload)

    # The Socket Mode link came from apps.connections.open, asked with the app-level token
    # (FakeSlack fails the test at exit if any other token was used for it).
    assert len(fake_slack.calls_to("apps.connections.open")) == 1
    assert socket_mode.connections == 1
    assert len(session.exec(sql_select(Enrollment)).all()) == 1


def test_an_app_token_slack_refuses_stops_start_up(tmp_path: Path, fake_slack: FakeSlack) -> None:
    fake_slack.fail("apps.connections.open", "invalid_auth")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--socket", "--no-scheduler"],
        cwd=tmp_path,
        env=socket_env(tmp_path, fake_slack),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "bot: SLACK_APP_TOKEN was refused by Slack: invalid_auth"
    assert APP_TOKEN not in result.stderr
