"""A mailbox connected over OAuth 2.0 is watched too: XOAUTH2 on a real Dovecot whose oauth2
passdb checks each token at the fake provider's introspection endpoint (tests/support/fake_oauth.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session

from bot.clock import FixedClock
from bot.listen.watcher import Watcher
from bot.mail import mailboxes
from bot.mail.mailboxes import Provider
from bot.mail.oauth import Keeper
from bot.mail.urls import Security, parse_imap_url, parse_smtp_url
from bot.settings import Settings, load_settings
from bot.store.models import EnrollmentStatus, SendStatus
from tests.e2e.listening import sent_email, state
from tests.support import inbound_samples as samples
from tests.support.dovecot import Dovecot
from tests.support.factories import REP_ID, make_rep
from tests.support.fake_oauth import CLIENT_ID, CLIENT_SECRET, FakeAuthServer
from tests.support.tls import Certificate, self_signed

USER = "rita@seller.example"
OTHER_REP = "U0OTHER01"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAuthServer]:
    with FakeAuthServer(consenting=USER) as fake:
        yield fake


@pytest.fixture
def dovecot(cert: Certificate, fake: FakeAuthServer) -> Iterator[Dovecot]:
    with Dovecot(users={USER: ""}, cert=cert, introspection_url=f"{fake.url}/introspect") as server:
        yield server


def connect(
    session: Session, fake: FakeAuthServer, dovecot: Dovecot, settings: Settings, clock: FixedClock, provider: Provider
) -> str:
    """The rep's mailbox on Dovecot over OAuth, connected yesterday, as a finished consent leaves it: its refresh token."""
    refresh_token = f"refresh-watch-{len(fake.refresh_tokens)}"
    fake.refresh_tokens[refresh_token] = USER
    mailboxes.set_oauth_mailbox(
        session,
        REP_ID,
        provider=provider,
        user=USER,
        refresh_token=refresh_token,
        smtp=("127.0.0.1", 1, Security.TLS),
        imap=("127.0.0.1", dovecot.tls_port or 0, Security.TLS),
        key=settings.secret_key,
        now=clock.now() - dt.timedelta(days=1),
    )
    return refresh_token


def test_a_reply_in_an_oauth_mailbox_ends_the_campaign_and_a_mailbox_that_cannot_be_read_stops_no_other(
    engine: Engine,
    session: Session,
    clock: FixedClock,
    dovecot: Dovecot,
    fake: FakeAuthServer,
    cert: Certificate,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
):
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert))  # trusted as a real certificate would be
    key = Fernet.generate_key().decode()
    settings = load_settings(
        _env_file=None,
        secret_key=key,
        google_client_id=CLIENT_ID,
        google_client_secret=CLIENT_SECRET,
        oauth_base_url=fake.url,
    )
    sent = sent_email(session, "ada@engines.example", clock.now())
    refresh_token = connect(session, fake, dovecot, settings, clock, Provider.GOOGLE)
    # Another rep's mailbox, its password encrypted under a key the bot no longer has:
    make_rep(session, OTHER_REP)
    mailboxes.set_mailbox(
        session,
        OTHER_REP,
        smtp=parse_smtp_url("smtp://bo%40seller.example@127.0.0.1:2525"),
        imap=parse_imap_url(f"imap://bo%40seller.example@127.0.0.1:{dovecot.port}"),
        password="s3cret",
        provider=None,
        limits=mailboxes.Limits(),
        key=SecretStr(Fernet.generate_key().decode()),
        now=clock.now(),
    )
    session.commit()
    dovecot.deliver(USER, samples.gmail_reply("ada@engines.example", sent.message_id))

    result = Watcher(engine, clock, settings).read_all()

    reason = "replied at 2026-12-02 09:00 UTC"
    assert state(engine, sent) == (EnrollmentStatus.REPLIED, reason, SendStatus.CANCELLED, reason)
    assert str(result) == "read 1 inbound message: 1 reply"
    assert refresh_token not in dovecot.log


def test_a_refresh_token_rotated_while_reading_is_stored_so_the_next_worker_reads_on(
    engine: Engine,
    session: Session,
    clock: FixedClock,
    dovecot: Dovecot,
    fake: FakeAuthServer,
    cert: Certificate,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert))
    monkeypatch.setattr(fake, "rotating", True)  # as Microsoft does
    settings = load_settings(
        _env_file=None,
        secret_key=Fernet.generate_key().decode(),
        microsoft_client_id=CLIENT_ID,
        microsoft_client_secret=CLIENT_SECRET,
        oauth_base_url=fake.url,
    )
    first = connect(session, fake, dovecot, settings, clock, Provider.MICROSOFT365)
    early = sent_email(session, "ada@engines.example", clock.now())
    later = sent_email(session, "bob@engines.example", clock.now())
    session.commit()
    dovecot.deliver(USER, samples.gmail_reply("ada@engines.example", early.message_id))
    watcher = Watcher(engine, clock, settings)
    assert str(watcher.read_all()) == "read 1 inbound message: 1 reply"
    keeper = watcher.tokens.keep
    assert isinstance(keeper, Keeper)
    keeper.settle()

    fake.retire(first)  # its 90 days are up
    dovecot.deliver(USER, samples.gmail_reply("bob@engines.example", later.message_id))

    assert str(Watcher(engine, clock, settings).read_all()) == "read 1 inbound message: 1 reply"
    assert state(engine, later)[0] == EnrollmentStatus.REPLIED
