"""A rep's own mailbox: their emails go through it, within its provider's limits, never via the relay."""

from __future__ import annotations

import datetime as dt

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session

from bot.clock import FixedClock
from bot.delivery.routes import Mailboxes, Relay, smtputf8_refusal
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import SmtpTransport, offers_smtputf8
from bot.mail import mailboxes
from bot.mail.mailboxes import Limits, Provider
from bot.mail.urls import parse_smtp_url
from bot.settings import load_settings
from bot.store.models import Mailbox, MailboxState, SendStatus
from tests.support.due_emails import due_email, reload
from tests.support.factories import REP_ID
from tests.support.notifier import RecordingNotifier
from tests.support.smtp_sink import SmtpSink

PASSWORD = "app password 1234"


def connect(
    session: Session, key: SecretStr, server: SmtpSink, clock: FixedClock, provider: Provider = Provider.GOOGLE
) -> None:
    smtp = parse_smtp_url(f"smtp://rita%40seller.example@127.0.0.1:{server.port}")
    mailboxes.set_mailbox(
        session,
        REP_ID,
        smtp=smtp,
        imap=None,
        password=PASSWORD,
        provider=provider,
        limits=Limits(),
        key=key,
        now=clock.now(),
    )
    session.commit()


def scheduler(
    engine: Engine, clock: FixedClock, relay: SmtpSink, key: SecretStr, notifier: RecordingNotifier
) -> Scheduler:
    settings = load_settings(digest_cron="0 0 1 1 *", secret_key=key.get_secret_value())
    router = Mailboxes(Relay(lambda: SmtpTransport(relay.url, timeout=5)), settings)
    return Scheduler(engine, clock, router, notifier, settings)


def test_a_reps_emails_go_through_their_own_mailbox_within_its_providers_limit(
    engine: Engine, session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier
):
    key = SecretStr(Fernet.generate_key().decode())
    start = clock.now() - dt.timedelta(minutes=5)
    sends = [due_email(session, start + dt.timedelta(seconds=n), f"p{n}@buyer.example") for n in range(65)]
    other = due_email(session, clock.now(), "o@buyer.example", rep_id="U0OTHER01")
    with SmtpSink() as own:
        connect(session, key, own, clock)
        result = scheduler(engine, clock, sink, key, notifier).tick()

        assert result.sent == 61, "Google Workspace: 60 a minute from the rep's mailbox, and the other rep's email"
        assert len(own.messages) == 60 and own.by_sender == {"rita@seller.example": 60}
        assert [received.rcpt_tos for received in sink.messages] == [["o@buyer.example"]], "others use the relay"
    assert reload(session, other).status == SendStatus.SENT
    waiting = [(s.status, s.attempts) for s in (reload(session, send) for send in sends[60:])]
    assert waiting == [(SendStatus.PLANNED, 0)] * 5


def test_a_refused_login_breaks_only_that_mailbox_until_it_is_set_again(
    engine: Engine, session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier
):
    key = SecretStr(Fernet.generate_key().decode())
    sends = [due_email(session, clock.now(), f"p{n}@buyer.example") for n in range(3)]
    with SmtpSink() as own:
        connect(session, key, own, clock)
        own.refuse_logins()
        bot = scheduler(engine, clock, sink, key, notifier)

        first = bot.tick()
        clock.advance(hours=3)
        later = bot.tick()

        assert (first.sent, first.failed, later.sent) == (0, 0, 0)
        assert sink.messages == [] and own.messages == [], "never silently sent through the relay"
        session.expire_all()
        mailbox = session.get(Mailbox, REP_ID)
        assert mailbox is not None and mailbox.state == MailboxState.BROKEN and "535" in (mailbox.last_error or "")
        session.commit()
        [(_, text)] = notifier.told("mailbox_broken")
        assert "your mailbox refused the login" in text and PASSWORD not in text

        own.refusing_logins = False
        connect(session, key, own, clock)  # the rep connects it again
        assert bot.tick().sent == 3 and len(own.messages) == 3
    assert {reload(session, send).status for send in sends} == {SendStatus.SENT}


def test_whether_a_rep_can_email_an_address_with_non_ascii_before_the_at_is_asked_of_their_own_mailbox(
    session: Session, clock: FixedClock
):
    offers_smtputf8.cache_clear()
    key = SecretStr(Fernet.generate_key().decode())
    with SmtpSink(smtputf8=True) as relay, SmtpSink() as own:
        settings = load_settings(smtp_url=relay.url, secret_key=key.get_secret_value())
        assert smtputf8_refusal(settings, session, REP_ID) is None, "without a mailbox, the relay's answer"
        connect(session, key, own, clock)
        own.refuse_logins()  # asked without logging in: the password is not needed

        assert smtputf8_refusal(settings, session, REP_ID) == (
            "your mailbox's server does not take addresses with non-ASCII characters before the @ "
            "(it offers no SMTPUTF8)"
        )
