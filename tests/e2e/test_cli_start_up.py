"""Every `bot` command that cannot open its database, or reach Slack, says so in one line.

Run as a user runs them: the real command in its own process, its stderr read whole.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.support.slack_requests import SIGNING_SECRET, bot_env

PASSWORD = "s3cret-pw"
SLACK = {"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SIGNING_SECRET}
CAMPAIGN = """\
name: Q4
timezone: Europe/Stockholm
steps:
  - day: 1
    send: at_time
    time: "09:00"
    subject: Hello
    body: Hi
"""
COMMANDS = {
    "tick": ["tick", "--now", "2026-12-02T09:00:00+01:00"],
    "worker": ["worker"],
    "serve": ["serve", "--no-scheduler", "--port", "0"],
    "serve --socket": ["serve", "--socket"],
    "campaign list": ["campaign", "list"],
    "campaign import": ["campaign", "import", "q4.yml", "--owner", "U0123ABCD"],
    "campaign preview": ["campaign", "preview", "Q4", "--start", "2026-12-01T10:00:00+01:00"],
}
BAD_DATABASES = {
    "a PostgreSQL database that does not exist": (
        f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/nosuchdb",
        "nosuchdb",
    ),
    "a PostgreSQL server that is not there": (f"postgresql+psycopg://bot:{PASSWORD}@127.0.0.1:9/bot", "127.0.0.1"),
    "a SQLite file in a folder that does not exist": ("sqlite:///{tmp}/no/such/folder/bot.db", "no/such/folder"),
    "a URL that does not parse": (f"postgresql+psycopg://bot:{PASSWORD}@host:port/bot", "DATABASE_URL"),
    "a driver that is not installed": (f"postgresql+nosuch://bot:{PASSWORD}@127.0.0.1/bot", "nosuch"),
}


def run_bot(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "q4.yml").write_text(CAMPAIGN)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=bot_env(tmp_path, **settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


# Every command with one bad database, and one command of each kind with every bad database.
CASES = [
    pytest.param(args, "a PostgreSQL database that does not exist", id=name) for name, args in COMMANDS.items()
] + [
    pytest.param(COMMANDS[command], database, id=f"{command}-{database}")
    for command in ("tick", "campaign list")
    for database in list(BAD_DATABASES)[1:]
]


@pytest.mark.parametrize(("command", "database"), CASES)
def test_a_database_that_cannot_be_opened_is_one_line_without_the_password(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    database: str,
) -> None:
    url, named = BAD_DATABASES[database]
    monkeypatch.setattr(sys, "setswitchinterval", lambda _: None)  # `bot worker` would keep its own for the session
    monkeypatch.chdir(tmp_path)
    for name, value in bot_env(
        tmp_path, DATABASE_URL=url.format(tmp=tmp_path), SLACK_APP_TOKEN="xapp-1", **SLACK
    ).items():
        monkeypatch.setenv(name, value)
    (tmp_path / "q4.yml").write_text(CAMPAIGN)

    assert main(command) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("bot: ") and named in err
    assert PASSWORD not in err


@pytest.mark.parametrize("command", [COMMANDS["tick"], COMMANDS["serve"]], ids=["tick", "serve"])
def test_as_a_process_too(tmp_path: Path, command: list[str]) -> None:
    url, _ = BAD_DATABASES["a PostgreSQL database that does not exist"]
    result = run_bot(tmp_path, *command, DATABASE_URL=url, **SLACK)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "bot: cannot open the database postgresql+psycopg://postgres:***@127.0.0.1:5432/nosuchdb: "
    )
    assert len(result.stderr.strip().splitlines()) == 1 and PASSWORD not in result.stderr


def test_a_slack_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "serve", "--no-scheduler", SLACK_API_URL="http://127.0.0.1:9/api/", **SLACK)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "bot: cannot reach Slack at SLACK_API_URL (http://127.0.0.1:9/api/): Connection refused"
    ]
