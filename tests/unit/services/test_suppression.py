"""Suppressed addresses: refused at add, never handed over, managed by admins with `bot suppress`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.cli import main
from bot.clock import FixedClock
from bot.delivery.routes import Relay
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import SmtpTransport
from bot.services import suppression
from bot.services.enrollments import add_people
from bot.services.people import parse_people
from bot.services.suppression import SuppressionError
from bot.settings import load_settings
from bot.store.models import Enrollment, EnrollmentStatus, SendStatus
from tests.support.due_emails import due_email, reload
from tests.support.factories import REP_ID, make_campaign
from tests.support.notifier import RecordingNotifier
from tests.support.smtp_sink import SmtpSink

ONE_EMAIL = [{"day": 1, "send": "at_time", "time": "09:00", "subject": "Hi", "body": "Hi"}]


def test_a_suppressed_address_is_refused_at_add_and_the_answer_names_it(session: Session, clock: FixedClock):
    campaign = make_campaign(session, ONE_EMAIL)
    suppression.suppress(session, "Ada@Example.com", "unsubscribed at 2026-12-01 10:00 UTC", clock.now())
    people, invalid = parse_people("ada@example.com, bob@example.com")

    result = add_people(session, campaign, REP_ID, people, now=clock.now(), invalid=invalid, smtputf8=lambda: None)

    lines = {line.email_or_text: (line.outcome, line.reason) for line in result.lines}
    assert lines["bob@example.com"] == ("added", "")
    outcome, reason = lines["ada@example.com"]
    assert outcome == "invalid" and "ada@example.com is suppressed (unsubscribed at 2026-12-01 10:00 UTC)" in reason


def test_an_address_suppressed_after_planning_is_never_handed_over(engine: Engine, session: Session, clock: FixedClock):
    notifier = RecordingNotifier()
    kept = due_email(session, clock.now(), "bob@buyer.example")
    gone = due_email(session, clock.now(), "ada@buyer.example")
    suppression.suppress(session, "ada@buyer.example", "bounced: 5.1.1 no such user", clock.now())
    session.commit()
    with SmtpSink() as sink:
        settings = load_settings(digest_cron="0 0 1 1 *")
        Scheduler(engine, clock, Relay(lambda: SmtpTransport(sink.url, timeout=5)), notifier, settings).tick()
        assert [received.rcpt_tos for received in sink.messages] == [["bob@buyer.example"]]

    assert reload(session, kept).status == SendStatus.SENT
    stopped = reload(session, gone)
    assert stopped.status == SendStatus.CANCELLED and "suppressed (bounced: 5.1.1 no such user)" in (
        stopped.reason or ""
    )
    enrollment = session.get(Enrollment, stopped.enrollment_id)
    assert enrollment is not None and enrollment.status == EnrollmentStatus.REMOVED
    session.commit()
    [(send_id, text)] = notifier.told("send_notice")
    assert send_id == gone.id and text.startswith("Not sent: ada@buyer.example is suppressed")


def test_suppressing_twice_keeps_the_first_reason_and_lifting_an_unknown_address_says_so(
    session: Session, clock: FixedClock
):
    suppression.suppress(session, "ada@example.com", "unsubscribed", clock.now())
    suppression.suppress(session, "ADA@example.com", "added by an admin", clock.now() + dt.timedelta(hours=1))
    assert [(s.email, s.reason) for s in suppression.all_suppressed(session)] == [("ada@example.com", "unsubscribed")]
    suppression.lift(session, "ada@example.com")
    assert suppression.all_suppressed(session) == []
    with pytest.raises(SuppressionError, match="ada@example.com is not suppressed"):
        suppression.lift(session, "ada@example.com")
    with pytest.raises(SuppressionError, match="is not an email address"):
        suppression.suppress(session, "not an address", "x", clock.now())


def test_admins_list_add_and_remove_suppressed_addresses(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)

    def bot(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    assert bot("suppress", "list") == (0, "no suppressed addresses\n", "")
    assert bot("suppress", "add", "Ada@Example.com", "--reason", "asked by phone") == (
        0,
        "suppressed Ada@Example.com: no campaign emails it again\n",
        "",
    )
    code, out, _ = bot("suppress", "list")
    assert code == 0 and out.startswith("ada@example.com\t") and out.rstrip().endswith("\tasked by phone")
    assert bot("suppress", "remove", "ada@example.com") == (0, "ada@example.com may be emailed again\n", "")
    assert bot("suppress", "remove", "ada@example.com") == (1, "", "bot: ada@example.com is not suppressed\n")
    code, _, err = bot("suppress", "add", "nope")
    assert code == 1 and err.startswith("bot: 'nope' is not an email address") and len(err.splitlines()) == 1
