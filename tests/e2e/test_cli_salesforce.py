"""`bot salesforce check|status|sync` and `bot tick` as an admin runs them, against a fake Salesforce over HTTPS."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_salesforce import FakeSalesforce, connected_app_key
from tests.support.tls import Certificate, self_signed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fake(cert: Certificate, tmp_path: Path) -> Iterator[tuple[FakeSalesforce, Path]]:
    key_file, public_key = connected_app_key(tmp_path)
    salesforce = FakeSalesforce(cert, public_key).start()
    yield salesforce, key_file
    salesforce.stop()


@pytest.fixture
def bot(fake, cert: Certificate, tmp_path: Path):
    salesforce, key_file = fake
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
        "REQUESTS_CA_BUNDLE": str(cert.cert),
        "SALESFORCE_URL": salesforce.url,
        "SALESFORCE_CLIENT_ID": salesforce.client_id,
        "SALESFORCE_USERNAME": salesforce.username,
        "SALESFORCE_PRIVATE_KEY_FILE": str(key_file),
    }
    env.pop("SLACK_BOT_TOKEN", None)

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_check_says_the_user_may_do_everything(bot) -> None:
    done = bot("salesforce", "check")
    assert done.returncode == 0, done.stderr
    assert (
        "Contact: Read\nLead: Read\nUser: Read\nTask: Read, Create, Edit\nok: the sync can do everything it needs"
        in done.stdout
    )


def test_check_says_what_is_missing(bot, fake) -> None:
    fake[0].describe_flags["Task"] = {"updateable": False}
    fake[0].describe_flags["Lead"] = {"createable": False}
    done = bot("salesforce", "check", SALESFORCE_NO_MATCH="lead")
    assert done.returncode == 1
    assert "Task: Read, Create; missing: Edit" in done.stdout
    assert done.stderr.splitlines()[-1] == "bot: the Salesforce user lacks Create on Lead, Edit on Task"


def test_check_shows_why_the_login_was_refused(bot) -> None:
    done = bot("salesforce", "check", SALESFORCE_USERNAME="someone@else.example")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "bot: Salesforce refused the login: user hasn't approved this consumer"


def test_tick_syncs_and_status_lists_who_was_not_matched(bot, fake) -> None:
    salesforce, _ = fake
    contact = salesforce.add("Contact", Email="ada@example.com", LastName="Lovelace")
    assert bot("campaign", "import", str(EXAMPLES / "q4-outreach.yml"), "--owner", "U0123ABCD").returncode == 0
    assert bot("rep", "set", "U0123ABCD", "--email", "rita@example.com", "--name", "Rita Rep").returncode == 0
    added = bot(
        "campaign",
        "add",
        "Q4 outreach",
        "--rep",
        "U0123ABCD",
        "--send-at",
        "2037-12-02T15:00:00+01:00",
        "--csv",
        str(EXAMPLES / "people.csv"),
    )
    assert added.returncode == 0, added.stderr
    tick = bot("tick", "--now", "2037-12-02T15:00:00+01:00")
    assert tick.returncode == 0, tick.stderr
    assert "salesforce: 1 synced, 2 unmatched, 0 failed, 0 to retry, 0 completed in Salesforce" in tick.stdout
    (task,) = salesforce.tasks()
    assert (task["WhoId"], task["Subject"], task["ActivityDate"]) == (
        contact,
        "Email: Analytical Engines and Acme",
        "2037-12-02",
    )

    status = bot("salesforce", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("0 waiting (0 after an error), 1 synced, 0 failed, 2 unmatched")
    assert (
        "email_sent  grace@example.com  no Contact or Lead in Salesforce has the email grace@example.com"
        in status.stdout
    )
    assert (
        "email_sent  alan@example.com   no Contact or Lead in Salesforce has the email alan@example.com"
        in status.stdout
    )
    show = bot("campaign", "show", "Q4 outreach")
    assert (
        "not synced to Salesforce: grace@example.com: no Contact or Lead in Salesforce has the email grace@example.com"
        in show.stdout
    )


def test_sync_runs_one_pass_and_fails_while_salesforce_is_down(bot, fake) -> None:
    done = bot("salesforce", "sync")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "salesforce: 0 synced, 0 unmatched, 0 failed, 0 to retry, 0 completed in Salesforce"
    fake[0].outage = 503
    down = bot("salesforce", "sync")
    assert down.returncode == 1
    assert "stopped: SERVER_UNAVAILABLE: Service Unavailable" in down.stdout


def test_without_salesforce_the_commands_say_so(bot) -> None:
    done = bot("salesforce", "status", SALESFORCE_URL="")
    assert done.returncode == 1 and done.stderr.strip() == "bot: SALESFORCE_URL is not set"
