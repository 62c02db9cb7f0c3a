"""A rep's OAuth 2.0 mailbox sends with XOAUTH2: tokens renewed in time, and once more when refused; revoked consent."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlmodel import Session

from bot.clock import FixedClock
from bot.delivery.routes import Mailboxes, Relay
from bot.delivery.scheduler import Scheduler, build_scheduler
from bot.delivery.transports import SmtpTransport
from bot.mail import credentials, mailboxes
from bot.mail.mailboxes import Provider
from bot.mail.oauth import Keeper, Tokens
from bot.mail.urls import Security
from bot.settings import Settings, load_settings
from bot.store.models import Mailbox, MailboxState, SendStatus
from tests.support.due_emails import due_email, reload
from tests.support.factories import REP_ID
from tests.support.fake_oauth import CLIENT_ID, CLIENT_SECRET, FakeAuthServer
from tests.support.notifier import RecordingNotifier
from tests.support.smtp_sink import SmtpSink
from tests.support.smtp_xoauth2 import SmtpXOAuth2
from tests.support.tls import Certificate, self_signed

USER = "rita@seller.example"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fake() -> Iterator[FakeAuthServer]:
    with FakeAuthServer(consenting=USER) as fake:
        yield fake


@pytest.fixture
def own(cert: Certificate, fake: FakeAuthServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpXOAuth2]:
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert))  # trusted as a real certificate would be
    with SmtpXOAuth2(cert, fake) as server:
        yield server


@pytest.fixture
def settings(fake: FakeAuthServer) -> Settings:
    return load_settings(
        _env_file=None,
        digest_cron="0 0 1 1 *",
        secret_key=Fernet.generate_key().decode(),
        google_client_id=CLIENT_ID,
        google_client_secret=CLIENT_SECRET,
        microsoft_client_id=CLIENT_ID,
        microsoft_client_secret=CLIENT_SECRET,
        public_url="https://bot.example.com",
        oauth_base_url=fake.url,
    )


def grant(fake: FakeAuthServer, user: str = USER) -> str:
    """A refresh token of `user`, as a finished consent leaves it (the flow has tests of its own)."""
    token = f"refresh-{len(fake.refresh_tokens)}-{user}"
    fake.refresh_tokens[token] = user
    fake.issued.append(token)
    return token


def connect(
    session: Session,
    settings: Settings,
    server: SmtpXOAuth2,
    refresh_token: str,
    clock: FixedClock,
    provider: Provider = Provider.GOOGLE,
) -> None:
    mailboxes.set_oauth_mailbox(
        session,
        REP_ID,
        provider=provider,
        user=USER,
        refresh_token=refresh_token,
        smtp=("127.0.0.1", server.port, Security.STARTTLS),
        imap=("127.0.0.1", 993, Security.TLS),
        key=settings.secret_key,
        now=clock.now(),
    )
    session.commit()


def scheduler(
    engine: Engine, clock: FixedClock, relay: SmtpSink, settings: Settings, notifier: RecordingNotifier
) -> Scheduler:
    router = Mailboxes(Relay(lambda: SmtpTransport(relay.url, timeout=5)), settings, Tokens(settings, clock))
    return Scheduler(engine, clock, router, notifier, settings)


def test_emails_go_out_with_xoauth2_within_googles_preset_and_one_renewal(
    engine: Engine,
    session: Session,
    clock: FixedClock,
    sink: SmtpSink,
    notifier: RecordingNotifier,
    fake: FakeAuthServer,
    own: SmtpXOAuth2,
    settings: Settings,
):
    start = clock.now() - dt.timedelta(minutes=5)
    sends = [due_email(session, start + dt.timedelta(seconds=n), f"p{n}@buyer.example") for n in range(63)]
    connect(session, settings, own, grant(fake), clock)

    result = scheduler(engine, clock, sink, settings, notifier).tick()

    assert result.sent == 60 and own.by_sender == {USER: 60}, "Google Workspace's preset: 60 a minute"
    assert sink.messages == [], "never through the relay"
    assert own.logins and set(own.logins) == {USER} and own.refused == 0
    assert fake.refreshes == 1, "one access token for all the mailbox's connections"
    assert [reload(session, s).status for s in sends[60:]] == [SendStatus.PLANNED] * 3


def test_an_access_token_expiring_mid_batch_is_renewed_without_losing_or_doubling_an_email(
    engine: Engine,
    session: Session,
    clock: FixedClock,
    sink: SmtpSink,
    notifier: RecordingNotifier,
    fake: FakeAuthServer,
    own: SmtpXOAuth2,
    settings: Settings,
):
    # The server hangs up every 4 emails, and the token's hour is up just then: the next
    # connection's login with the cached token is refused, renewed once, and goes on.
    own.hang_up_every = 4
    own.on_hang_up = fake.expire_access_tokens
    sends = [due_email(session, clock.now(), f"p{n}@buyer.example") for n in range(20)]
    connect(session, settings, own, grant(fake), clock)
    # One connection: each hang-up is followed by exactly one login with the stale token.
    # (With several, each hang-up here would also expire the token another connection has
    # just renewed, which no provider does: see the test below.)
    mailbox = session.get(Mailbox, REP_ID)
    assert mailbox is not None
    mailbox.max_connections = 1
    session.commit()

    result = scheduler(engine, clock, sink, settings, notifier).tick()

    assert (result.sent, result.failed, result.uncertain, result.held) == (20, 0, 0, 0)
    assert own.hang_ups >= 1 and own.refused >= 1 and fake.refreshes >= 2
    assert len(own.messages) == 20 and set(own.counts().values()) == {1}, "each email once"
    assert {reload(session, send).status for send in sends} == {SendStatus.SENT}
    assert notifier.told("mailbox_broken") == []


def test_an_access_token_expiring_under_several_connections_is_renewed_once_for_all(
    engine: Engine,
    session: Session,
    clock: FixedClock,
    sink: SmtpSink,
    notifier: RecordingNotifier,
    fake: FakeAuthServer,
    own: SmtpXOAuth2,
    settings: Settings,
):
    # Google's three connections; the server hangs up every 4 emails, and the token's hour
    # is up at the first hang-up: the connections opened after it share one renewal.
    expired: list[bool] = []

    def hour_up_once() -> None:
        if not expired:
            expired.append(True)
            fake.expire_access_tokens()

    own.hang_up_every = 4
    own.on_hang_up = hour_up_once
    sends = [due_email(session, clock.now(), f"p{n}@buyer.example") for n in range(40)]
    connect(session, settings, own, grant(fake), clock)

    result = scheduler(engine, clock, sink, settings, notifier).tick()

    assert (result.sent, result.failed, result.uncertain, result.held) == (40, 0, 0, 0)
    assert expired and own.refused >= 1 and fake.refreshes == 2, "one renewal, then one for the hour that was up"
    assert len(own.messages) == 40 and set(own.counts().values()) == {1}, "each email once"
    assert {reload(session, send).status for send in sends} == {SendStatus.SENT}
    assert notifier.told("mailbox_broken") == []


def test_connections_refused_the_same_token_share_one_renewal(
    fake: FakeAuthServer, settings: Settings, clock: FixedClock
):
    bearer = Tokens(settings, clock).bearer(Provider.GOOGLE, grant(fake))
    stale = bearer(None)
    assert bearer(None) == stale and fake.refreshes == 1, "one token for every connection"
    fake.expire_access_tokens()

    renewed = {bearer(stale) for _ in range(3)}  # three connections, each refused `stale`

    assert len(renewed) == 1 and fake.user_of(renewed.pop()) == USER
    assert fake.refreshes == 2


def test_an_access_token_is_renewed_before_it_expires(
    engine: Engine,
    session: Session,
    clock: FixedClock,
    sink: SmtpSink,
    notifier: RecordingNotifier,
    fake: FakeAuthServer,
    own: SmtpXOAuth2,
    settings: Settings,
):
    connect(session, settings, own, grant(fake), clock)
    bot = scheduler(engine, clock, sink, settings, notifier)
    due_email(session, clock.now(), "early@buyer.example")
    session.commit()
    assert bot.tick().sent == 1
    clock.advance(minutes=56)  # the hour-long token has four minutes left: renewed first
    due_email(session, clock.now(), "later@buyer.example")
    session.commit()

    assert bot.tick().sent == 1
    assert fake.refreshes == 2 and own.refused == 0, "renewed before the server could refuse it"


def test_a_revoked_consent_breaks_only_that_mailbox_and_the_rep_is_told_once(
    engine: Engine,
    session: Session,
    clock: FixedClock,
    sink: SmtpSink,
    notifier: RecordingNotifier,
    fake: FakeAuthServer,
    own: SmtpXOAuth2,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    sends = [due_email(session, clock.now(), f"p{n}@buyer.example") for n in range(3)]
    other = due_email(session, clock.now(), "o@buyer.example", rep_id="U0OTHER01")
    connect(session, settings, own, grant(fake), clock)
    fake.revoke(USER)  # the rep removed the app's access in their Google account
    bot = scheduler(engine, clock, sink, settings, notifier)

    first = bot.tick()
    clock.advance(hours=3)
    later = bot.tick()

    assert (first.sent, first.failed, later.sent, later.failed) == (1, 0, 0, 0)
    assert [m.rcpt_tos for m in sink.messages] == [["o@buyer.example"]], "the other rep goes on, through the relay"
    assert own.messages == [], "never silently sent another way"
    assert reload(session, other).status == SendStatus.SENT
    assert [(s.status, s.attempts) for s in (reload(session, send) for send in sends)] == [(SendStatus.PLANNED, 0)] * 3
    mailbox = session.get(Mailbox, REP_ID)
    assert (
        mailbox is not None and mailbox.state == MailboxState.BROKEN and "invalid_grant" in (mailbox.last_error or "")
    )
    session.commit()
    [(_, told)] = notifier.told("mailbox_broken")
    assert "invalid_grant" in told and "reconnect" in told
    for token in fake.issued:
        assert token not in told and token not in caplog.text and token not in (mailbox.last_error or "")

    connect(session, settings, own, grant(fake), clock)  # the rep connects it again
    assert bot.tick().sent == 3 and len(own.messages) == 3
    assert {reload(session, send).status for send in sends} == {SendStatus.SENT}


def stored_refresh_token(engine: Engine, settings: Settings) -> str:
    with Session(engine) as session:
        mailbox = session.get(Mailbox, REP_ID)
        assert mailbox is not None
        return credentials.decrypt(mailbox.secret, settings.secret_key)


def test_a_refresh_token_microsoft_rotates_is_stored_so_a_restart_outlives_the_first_one(
    engine: Engine,
    session: Session,
    clock: FixedClock,
    notifier: RecordingNotifier,
    fake: FakeAuthServer,
    own: SmtpXOAuth2,
    settings: Settings,
):
    fake.rotating = True
    first = grant(fake)
    connect(session, settings, own, first, clock, Provider.MICROSOFT365)
    bot = build_scheduler(settings, engine, notifier, clock)  # as `bot worker` and `bot serve` build it
    due_email(session, clock.now(), "early@buyer.example")
    session.commit()

    assert bot.tick().sent == 1
    assert isinstance(bot.router, Mailboxes) and isinstance(bot.router.tokens.keep, Keeper)
    keeper = bot.router.tokens.keep
    keeper.settle()
    rotated = stored_refresh_token(engine, settings)
    assert rotated != first and fake.refresh_tokens.get(rotated) == USER, "the one Microsoft handed on renewal"

    fake.retire(first)  # its 90 days are up
    restarted = build_scheduler(settings, engine, notifier, clock)
    due_email(session, clock.now(), "later@buyer.example")
    session.commit()
    assert restarted.tick().sent == 1, "the restarted worker renews with the stored token"
    assert notifier.told("mailbox_broken") == []
    assert len(own.messages) == 2


def test_a_rotated_refresh_token_never_overwrites_a_mailbox_connected_again(
    engine: Engine, session: Session, clock: FixedClock, fake: FakeAuthServer, own: SmtpXOAuth2, settings: Settings
):
    first, again = grant(fake), grant(fake)
    connect(session, settings, own, first, clock, Provider.MICROSOFT365)
    connect(session, settings, own, again, clock, Provider.MICROSOFT365)  # the rep reconnected meanwhile
    keeper = Keeper(engine, settings.secret_key)

    keeper(REP_ID, first, "rotated-from-the-first")
    keeper.settle()

    assert stored_refresh_token(engine, settings) == again
    keeper(REP_ID, again, "rotated-from-the-second")
    keeper.settle()
    assert stored_refresh_token(engine, settings) == "rotated-from-the-second"


def test_the_refresh_token_is_stored_encrypted(
    engine: Engine, session: Session, clock: FixedClock, fake: FakeAuthServer, own: SmtpXOAuth2, settings: Settings
):
    token = grant(fake)
    connect(session, settings, own, token, clock)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM mailbox")).one()
    assert all(token not in str(value) for value in row)
    assert (
        mailboxes.smtp_server(session.get(Mailbox, REP_ID), settings.secret_key, Tokens(settings, clock)).bearer
        is not None
    )  # type: ignore[arg-type]


def test_an_oauth_mailbox_without_tokens_is_refused_in_words(
    session: Session, clock: FixedClock, fake: FakeAuthServer, own: SmtpXOAuth2, settings: Settings
):
    connect(session, settings, own, grant(fake), clock)
    with pytest.raises(mailboxes.MailboxError, match="OAuth 2.0"):
        mailboxes.smtp_server(session.get(Mailbox, REP_ID), SecretStr(settings.secret_key.get_secret_value()))  # type: ignore[arg-type, union-attr]
