"""`bot serve` as a real process: settings checked at start-up, Slack answered on a port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session
from sqlmodel import select as sql_select

from bot.store.models import Enrollment
from tests.support.factories import REP_ID, make_campaign
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SIGNING_SECRET, SlackRequests, bot_env, serving


def run_bot(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,  # no .env file there
        env=bot_env(tmp_path, **settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "settings", "line"),
    [
        (["serve"], {"SLACK_BOT_TOKEN": "xoxb-1"}, "bot: SLACK_SIGNING_SECRET is not set"),
        (["serve"], {"SLACK_SIGNING_SECRET": "s"}, "bot: SLACK_BOT_TOKEN is not set"),
        (["serve", "--socket"], {"SLACK_BOT_TOKEN": "xoxb-1"}, "bot: SLACK_APP_TOKEN is not set"),
        (
            ["serve"],
            {"SLACK_BOT_TOKEN": "abc", "SLACK_SIGNING_SECRET": "s"},
            "bot: SLACK_BOT_TOKEN: must start with xoxb-",
        ),
        (
            ["serve"],
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "PORT": "http"},
            "bot: PORT: Input should be a valid integer, unable to parse string as an integer",
        ),
    ],
)
def test_a_missing_or_malformed_setting_stops_start_up_with_one_line(
    tmp_path: Path, args: list[str], settings: dict[str, str], line: str
) -> None:
    result = run_bot(tmp_path, *args, **settings)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [line]


def test_a_token_slack_refuses_stops_start_up(tmp_path: Path, fake_slack: FakeSlack) -> None:
    fake_slack.fail("auth.test", "invalid_auth")
    result = run_bot(
        tmp_path,
        "serve",
        "--no-scheduler",
        SLACK_BOT_TOKEN="xoxb-revoked",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.url,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "bot: SLACK_BOT_TOKEN was refused by Slack: invalid_auth"


def test_a_port_already_taken_stops_start_up_with_one_line(tmp_path: Path, fake_slack: FakeSlack) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_bot(
            tmp_path,
            "serve",
            "--no-scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            SLACK_BOT_TOKEN="xoxb-test-token",
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=fake_slack.url,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"bot: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert "Traceback" not in result.stderr


def test_bot_serve_answers_a_signed_command(
    tmp_path: Path, fake_slack: FakeSlack, db_url: str, session: Session
) -> None:
    make_campaign(session, [{"day": 1, "send": "task", "subject": "Hi", "body": "Hello"}], name="Q4 outreach")
    with serving(tmp_path, fake_slack, db_url, "--no-scheduler") as url:
        slack = SlackRequests(url, SIGNING_SECRET, fake_slack)
        response_url = fake_slack.response_url()
        reply = slack.command('add "Q4 outreach" Ada Lovelace <ada@example.com>', response_url=response_url)
        assert reply.status == 200
        assert fake_slack.response_to(response_url).text == "Q4 outreach: 1 added, 0 already active, 0 invalid."
        assert SlackRequests(url, "wrong-secret", fake_slack).command("help").status == 401
    assert len(session.exec(sql_select(Enrollment)).all()) == 1


def test_the_scheduler_runs_in_the_same_process(
    tmp_path: Path, fake_slack: FakeSlack, db_url: str, session: Session
) -> None:
    make_campaign(session, [{"day": 1, "send": "task", "subject": "Hi", "body": "Hello"}], name="Q4")
    with serving(tmp_path, fake_slack, db_url, SCHEDULER_INTERVAL="0.1") as url:
        SlackRequests(url, SIGNING_SECRET, fake_slack).command("add Q4 ada@example.com")
        # The day-1 task is queued at launch; the scheduler posts it to the rep.
        task = fake_slack.wait_for(
            lambda: [m for m in fake_slack.calls_to("chat.postMessage") if "ada@example.com" in str(m)]
        )
    assert task[0]["channel"] == REP_ID
