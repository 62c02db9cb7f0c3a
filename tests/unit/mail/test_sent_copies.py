"""Sent copies: emails sent through a rep's own mailbox land in its Sent folder (Dovecot), once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest
from cryptography.fernet import Fernet
from imapclient import IMAPClient
from pydantic import SecretStr
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.delivery.routes import Mailboxes, Relay
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import SmtpTransport
from bot.mail import mailboxes
from bot.mail.mailboxes import Limits, Provider
from bot.mail.sent_copies import RETRY_DELAYS, SentCopier
from bot.mail.urls import parse_imap_url, parse_smtp_url
from bot.settings import load_settings
from bot.store.models import Mailbox, SentCopy
from tests.support.dovecot import Dovecot, free_port
from tests.support.due_emails import due_email
from tests.support.factories import REP_ID
from tests.support.notifier import RecordingNotifier
from tests.support.smtp_sink import SmtpSink

USER = "rita@seller.example"
PASSWORD = "app password 1234"
KEY = SecretStr(Fernet.generate_key().decode())


@pytest.fixture
def imap() -> Iterator[Dovecot]:
    with Dovecot(users={USER: PASSWORD}) as server:
        yield server


@pytest.fixture
def own_smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def connect(session: Session, clock: FixedClock, smtp: SmtpSink, imap_port: int, provider: Provider) -> None:
    mailboxes.set_mailbox(
        session,
        REP_ID,
        smtp=parse_smtp_url(f"smtp://rita%40seller.example@127.0.0.1:{smtp.port}"),
        imap=parse_imap_url(f"imap://127.0.0.1:{imap_port}?timeout=5"),
        password=PASSWORD,
        provider=provider,
        limits=Limits(),
        key=KEY,
        now=clock.now(),
    )
    session.commit()


def deliver(engine: Engine, clock: FixedClock) -> int:
    settings = load_settings(_env_file=None, digest_cron="0 0 1 1 *", secret_key=KEY.get_secret_value())
    relay = Relay(lambda: SmtpTransport("smtp://127.0.0.1:1", timeout=1))  # never used: the rep has a mailbox
    return Scheduler(engine, clock, Mailboxes(relay, settings), RecordingNotifier(), settings).tick().sent


def sent_folder(imap: Dovecot, folder: str = "Sent") -> list[tuple[str, tuple[bytes, ...]]]:
    """Message-IDs and flags of the folder, as the rep's mail client sees them."""
    with IMAPClient("127.0.0.1", port=imap.port, ssl=False, timeout=5) as client:
        client.login(USER, PASSWORD)
        if not client.folder_exists(folder):
            return []
        client.select_folder(folder, readonly=True)
        fetched = client.fetch(client.search(), ["RFC822", "FLAGS"])
        # \Recent is the server's own (this session is the first to see it), not ours.
        return [
            (
                str(message_from_bytes(d[b"RFC822"], policy=policy.default)["Message-ID"]),
                tuple(f for f in d[b"FLAGS"] if f != b"\\Recent"),
            )
            for d in fetched.values()
        ]


def copies(session: Session) -> list[tuple[int, str | None, dt.datetime]]:
    session.expire_all()
    rows = [(c.attempts, c.last_error, c.next_at) for c in session.exec(select(SentCopy))]
    session.commit()
    return rows


@pytest.mark.parametrize("provider", [Provider.OTHER, Provider.MICROSOFT365])
def test_an_email_through_a_server_that_keeps_no_copy_lands_in_the_sent_folder_once_as_read(
    engine: Engine, session: Session, clock: FixedClock, imap: Dovecot, own_smtp: SmtpSink, provider: Provider
) -> None:
    send = due_email(session, clock.now(), "pat@buyer.example")
    connect(session, clock, own_smtp, imap.port, provider)

    assert deliver(engine, clock) == 1
    copier = SentCopier(engine, clock, KEY)
    assert copier.drain() == 1
    assert copier.drain() == 0

    session.refresh(send)
    session.commit()
    assert sent_folder(imap) == [(send.message_id, (b"\\Seen",))]
    assert own_smtp.messages[0].data.replace(b"\r\n", b"\n").rstrip() in _stored(imap), "exactly what went out"
    assert copies(session) == []


def _stored(imap: Dovecot) -> bytes:
    with IMAPClient("127.0.0.1", port=imap.port, ssl=False, timeout=5) as client:
        client.login(USER, PASSWORD)
        client.select_folder("Sent", readonly=True)
        return next(iter(client.fetch(client.search(), ["RFC822"]).values()))[b"RFC822"].replace(b"\r\n", b"\n")


def test_gmail_keeps_its_own_copy_so_none_is_appended(
    engine: Engine, session: Session, clock: FixedClock, imap: Dovecot, own_smtp: SmtpSink
) -> None:
    due_email(session, clock.now(), "pat@buyer.example")
    connect(session, clock, own_smtp, imap.port, Provider.GOOGLE)

    assert deliver(engine, clock) == 1
    assert SentCopier(engine, clock, KEY).drain() == 0
    assert copies(session) == [] and sent_folder(imap) == []


def test_a_folder_named_like_a_sent_folder_is_used(
    engine: Engine, session: Session, clock: FixedClock, imap: Dovecot, own_smtp: SmtpSink
) -> None:
    with IMAPClient("127.0.0.1", port=imap.port, ssl=False, timeout=5) as client:
        client.login(USER, PASSWORD)
        client.create_folder("Sent Items")  # Outlook's name
    due_email(session, clock.now(), "pat@buyer.example")
    connect(session, clock, own_smtp, imap.port, Provider.OTHER)

    deliver(engine, clock)
    SentCopier(engine, clock, KEY).drain()

    assert len(sent_folder(imap, "Sent Items")) == 1 and sent_folder(imap, "Sent") == []


def test_an_unreachable_imap_server_is_tried_again_later_and_delivery_does_not_wait(
    engine: Engine, session: Session, clock: FixedClock, imap: Dovecot, own_smtp: SmtpSink
) -> None:
    due_email(session, clock.now(), "pat@buyer.example")
    connect(session, clock, own_smtp, free_port(), Provider.OTHER)  # nothing listens there
    assert deliver(engine, clock) == 1 and len(own_smtp.messages) == 1
    copier = SentCopier(engine, clock, KEY)

    assert copier.drain() == 0
    [(attempts, error, next_at)] = copies(session)
    assert (attempts, next_at) == (1, clock.now() + RETRY_DELAYS[0]) and "connection refused" in (error or "")
    assert copier.drain() == 0, "not before its delay"

    session.execute(update(Mailbox).values(imap_port=imap.port))  # the server is back
    session.commit()
    clock.advance(minutes=1)
    assert copier.drain() == 1
    assert len(sent_folder(imap)) == 1 and copies(session) == []


def test_a_copy_appended_but_not_recorded_is_not_filed_twice(
    engine: Engine, session: Session, clock: FixedClock, imap: Dovecot, own_smtp: SmtpSink
) -> None:
    due_email(session, clock.now(), "pat@buyer.example")
    connect(session, clock, own_smtp, imap.port, Provider.OTHER)
    deliver(engine, clock)
    [copy] = session.exec(select(SentCopy)).all()
    again = SentCopy(**copy.model_dump())
    session.expunge(copy)
    session.commit()
    SentCopier(engine, clock, KEY).drain()

    session.add(again)  # as if the copier died between the APPEND and deleting the row
    session.commit()
    clock.advance(minutes=10)
    SentCopier(engine, clock, KEY, worker_id="another").drain()

    assert len(sent_folder(imap)) == 1 and copies(session) == []


def test_copies_are_given_up_after_the_last_delay(
    engine: Engine, session: Session, clock: FixedClock, own_smtp: SmtpSink
) -> None:
    due_email(session, clock.now(), "pat@buyer.example")
    connect(session, clock, own_smtp, free_port(), Provider.OTHER)
    deliver(engine, clock)
    copier = SentCopier(engine, clock, KEY)

    for delay in RETRY_DELAYS:
        copier.drain()
        clock.advance(seconds=delay.total_seconds())
    copier.drain()

    session.expire_all()
    [copy] = session.exec(select(SentCopy)).all()
    session.commit()
    assert copy.done_at == clock.now() and copy.attempts == len(RETRY_DELAYS) + 1
    clock.advance(days=30)
    assert copier.drain() == 0
