"""`bot tick`: one pass at a given time, with a one-line summary."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from bot.cli import main
from bot.clock import FixedClock
from tests.support.due_emails import due_email
from tests.support.factories import make_campaign
from tests.support.smtp_sink import SmtpSink


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, db_url: str, sink: SmtpSink, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SMTP_URL", sink.url)
    monkeypatch.setenv("DIGEST_CRON", "0 0 1 1 *")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


def test_tick_delivers_what_is_due_by_now_and_says_what_it_did(
    settings_env: None, session: Session, clock: FixedClock, sink: SmtpSink, capsys: pytest.CaptureFixture[str]
):
    for n in range(3):
        due_email(session, clock.now(), f"person{n}@buyer.example")
    tasks = make_campaign(session, [{"day": 1, "send": "task", "subject": "Hi", "body": "Hi"}], name="Calls")
    due_email(session, clock.now(), "call@buyer.example", campaign=tasks)
    due_email(session, clock.now().replace(hour=12), "later@buyer.example")
    session.close()

    code = main(["tick", "--now", "2026-12-02T10:00:00+01:00"])

    assert code == 0
    assert capsys.readouterr().out.strip() == "sent 3 emails, queued 1 task, 0 failed"
    assert sorted(r.rcpt_tos[0] for r in sink.messages) == [f"person{n}@buyer.example" for n in range(3)]


def test_tick_refuses_a_time_without_an_offset(settings_env: None, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit:
        main(["tick", "--now", "2026-12-02T10:00:00"])

    assert exit.value.code == 2
    assert "has no time zone offset" in capsys.readouterr().err
