"""The mailbox service: presets and overrides, the password encrypted in the row, set/remove."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import Session

from bot.clock import FixedClock
from bot.mail import mailboxes
from bot.mail.check import check_imap, check_smtp
from bot.mail.credentials import CredentialsError
from bot.mail.mailboxes import PRESETS, Limits, MailboxError, Provider
from bot.mail.urls import parse_imap_url, parse_smtp_url
from bot.store.models import Mailbox, MailboxState
from tests.support.dovecot import Dovecot
from tests.support.smtp_login import SmtpLogin
from tests.unit.mail.conftest import PASSWORD, USER

SMTP = parse_smtp_url("smtp://pat%40seller.example@smtp.seller.example:587?starttls=true")
IMAP = parse_imap_url("imaps://imap.seller.example")


def connect(session: Session, key: SecretStr | None, clock: FixedClock, **options: object) -> Mailbox:
    given = {"smtp": SMTP, "imap": IMAP, "password": PASSWORD, "provider": None, "limits": Limits()} | options
    return mailboxes.set_mailbox(session, "U1", key=key, now=clock.now(), **given)  # type: ignore[arg-type]


def test_the_provider_presets_are_the_specs(session: Session, key: SecretStr, clock: FixedClock):
    assert {p: dataclasses.astuple(PRESETS[p]) for p in Provider} == {
        Provider.MICROSOFT365: (30, 10_000, 3),
        Provider.GOOGLE: (60, 2_000, 3),
        Provider.OTHER: (None, None, None),
    }
    mailbox = connect(session, key, clock, provider=Provider.GOOGLE)
    assert mailboxes.limits_of(mailbox) == Limits(per_minute=60, per_day=2_000, max_connections=3)


def test_a_value_set_on_the_mailbox_overrides_its_preset_and_only_that_one(
    session: Session, key: SecretStr, clock: FixedClock
):
    mailbox = connect(session, key, clock, provider=Provider.MICROSOFT365, limits=Limits(per_day=500))

    assert mailboxes.limits_of(mailbox) == Limits(per_minute=30, per_day=500, max_connections=3)
    other = connect(session, key, clock, provider=Provider.OTHER, limits=Limits(max_connections=2))
    assert mailboxes.limits_of(other) == Limits(max_connections=2)


def test_the_provider_follows_the_smtp_host_when_none_is_named(session: Session, key: SecretStr, clock: FixedClock):
    office = parse_smtp_url("smtp://pat%40seller.example@smtp.office365.com:587?starttls=true")

    assert connect(session, key, clock, smtp=office).provider == Provider.MICROSOFT365
    assert connect(session, key, clock).provider == Provider.OTHER


def test_the_password_is_never_in_the_row_in_clear_and_is_read_back_with_the_key(
    session: Session, key: SecretStr, clock: FixedClock
):
    connect(session, key, clock)
    session.commit()

    row = session.execute(text("SELECT * FROM mailbox")).mappings().one()
    assert not [name for name, value in row.items() if PASSWORD in str(value)]
    assert (row["smtp_user"], row["imap_user"], row["auth"]) == (
        USER,
        USER,
        "password",
    )  # IMAP's user defaults to SMTP's
    mailbox = mailboxes.get_mailbox(session, "U1")
    assert mailboxes.smtp_server(mailbox, key).password == PASSWORD
    assert mailboxes.imap_server(mailbox, key).password == PASSWORD
    assert PASSWORD not in repr(mailbox)


def test_the_stored_mailbox_logs_in_to_the_real_servers(
    session: Session, key: SecretStr, clock: FixedClock, smtp_server: SmtpLogin, imap_server: Dovecot
):
    smtp = parse_smtp_url(f"smtp://pat%40seller.example@127.0.0.1:{smtp_server.port}?starttls=true")
    imap = parse_imap_url(f"imaps://127.0.0.1:{imap_server.tls_port}")
    connect(session, key, clock, smtp=smtp, imap=imap)
    session.commit()
    mailbox = mailboxes.get_mailbox(session, "U1")

    check_smtp(mailboxes.smtp_server(mailbox, key))
    check_imap(mailboxes.imap_server(mailbox, key))
    assert smtp_server.logins == [USER]


def test_without_a_secret_key_nothing_is_stored(session: Session, clock: FixedClock):
    with pytest.raises(CredentialsError, match="SECRET_KEY is not set"):
        connect(session, None, clock)

    assert mailboxes.list_mailboxes(session) == []


def test_setting_again_replaces_the_mailbox_and_connects_it_again(session: Session, key: SecretStr, clock: FixedClock):
    first = connect(session, key, clock, limits=Limits(per_minute=5))
    mailboxes.mark_broken(session, first, "535 5.7.8 Authentication credentials invalid", clock.now())
    created = first.created_at
    clock.advance(hours=1)

    again = connect(session, key, clock, imap=None)
    session.commit()

    assert (again.state, again.last_error, again.imap_host, again.per_minute) == (
        MailboxState.CONNECTED,
        None,
        None,
        None,
    )
    assert (again.created_at, again.updated_at) == (created, clock.now())
    assert len(mailboxes.list_mailboxes(session)) == 1


def test_a_broken_mailbox_keeps_the_servers_words(session: Session, key: SecretStr, clock: FixedClock):
    mailbox = connect(session, key, clock)
    mailboxes.mark_broken(session, mailbox, "535 5.7.8 Authentication credentials invalid", clock.now())
    session.commit()
    session.expire_all()

    stored = mailboxes.get_mailbox(session, "U1")
    assert (stored.state, stored.last_error) == (MailboxState.BROKEN, "535 5.7.8 Authentication credentials invalid")
    assert stored.updated_at.utcoffset().total_seconds() == 0


def test_removing_forgets_the_mailbox(session: Session, key: SecretStr, clock: FixedClock):
    connect(session, key, clock)
    mailboxes.remove_mailbox(session, "U1")

    assert mailboxes.get_mailbox(session, "U1") is None
    with pytest.raises(MailboxError, match="U1 has no mailbox"):
        mailboxes.remove_mailbox(session, "U1")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"smtp": parse_smtp_url("smtps://smtp.seller.example")}, r"names no user: write it as smtp://USER@smtp"),
        ({"password": ""}, "needs a password"),
        ({"limits": Limits(per_minute=0)}, "per minute must be at least 1, not 0"),
    ],
)
def test_a_mailbox_that_cannot_work_is_refused(session: Session, key: SecretStr, clock: FixedClock, options, words):
    with pytest.raises(MailboxError, match=words):
        connect(session, key, clock, **options)
    assert mailboxes.list_mailboxes(session) == []
