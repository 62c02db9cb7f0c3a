"""A rep's own mailbox: set, get, list, remove, and the provider presets of its limits.

Services: they take a Session and `now`, flush, and never commit. Logging in to
check a mailbox is the edge's job (bot/mail/check.py), before `set_mailbox`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlmodel import Session, select

from bot.mail import credentials
from bot.mail.urls import IMAP, SMTP, Security, ServerUrl
from bot.services import queue
from bot.services.errors import ServiceError
from bot.store.models import Mailbox, MailboxAuth, MailboxState

if TYPE_CHECKING:
    from bot.mail.oauth import Tokens


class Provider(StrEnum):
    MICROSOFT365 = "microsoft365"
    GOOGLE = "google"
    OTHER = "other"


@dataclass(frozen=True)
class Limits:
    """How much a mailbox may send; None: not limited."""

    per_minute: int | None = None
    per_day: int | None = None  # per rolling 24 hours
    max_connections: int | None = None


# mail.md, "Limits": the one table of provider presets. "other" limits nothing unless set.
PRESETS: dict[Provider, Limits] = {
    Provider.MICROSOFT365: Limits(per_minute=30, per_day=10_000, max_connections=3),
    Provider.GOOGLE: Limits(per_minute=60, per_day=2_000, max_connections=3),
    Provider.OTHER: Limits(),
}

# Providers whose servers file what is sent through SMTP in the Sent folder themselves
# (Gmail and Google Workspace do). Microsoft 365 does not for SMTP AUTH submissions, nor
# do most others: for those the bot appends a copy over IMAP (bot/mail/sent_copies.py).
KEEPS_SENT_COPIES = frozenset({Provider.GOOGLE})

# The providers' own submission servers, to pick the preset when none is named.
PROVIDER_OF_HOST: dict[str, Provider] = {
    "smtp.office365.com": Provider.MICROSOFT365,
    "smtp-mail.outlook.com": Provider.MICROSOFT365,
    "smtp.gmail.com": Provider.GOOGLE,
    "smtp-relay.gmail.com": Provider.GOOGLE,
}


def mailbox_key(rep_id: str) -> str:
    """The key a rep's own mailbox is counted under (Send.mailbox; the relay's is "relay")."""
    return f"rep:{rep_id}"


@dataclass(frozen=True)
class Status:
    """A rep's own mailbox as the Home tab shows it (never its password)."""

    provider: Provider
    address: str  # the login, usually the rep's address
    smtp: str  # host:port
    imap: str | None
    connected: bool
    last_error: str | None
    sent_today: int  # handed over in the last 24 hours
    per_day: int | None  # its limit per rolling 24 hours
    oauth: bool = False  # connected with OAuth 2.0 (reconnected through its provider's consent page)


def status(session: Session, rep_id: str, now: dt.datetime) -> Status | None:
    """The rep's own mailbox, its state and what it sent in the last 24 hours; None without one."""
    mailbox = session.get(Mailbox, rep_id)
    if mailbox is None:
        return None
    return Status(
        provider=Provider(mailbox.provider),
        address=mailbox.smtp_user,
        smtp=f"{mailbox.smtp_host}:{mailbox.smtp_port}",
        imap=f"{mailbox.imap_host}:{mailbox.imap_port}" if mailbox.imap_host else None,
        connected=mailbox.state == MailboxState.CONNECTED,
        last_error=mailbox.last_error,
        sent_today=queue.handed_since(session, mailbox_key(rep_id), now - queue.DAY),
        per_day=limits_of(mailbox).per_day,
        oauth=mailbox.auth == MailboxAuth.OAUTH,
    )


class MailboxError(ServiceError):
    """A mailbox cannot be set or found as asked."""


def provider_for(smtp_host: str) -> Provider:
    """The provider whose SMTP server this is, else `other`."""
    return PROVIDER_OF_HOST.get(smtp_host.lower(), Provider.OTHER)


def keeps_sent_copies(mailbox: Mailbox) -> bool:
    """Whether the mailbox's server files what is sent through SMTP in its Sent folder itself."""
    return Provider(mailbox.provider) in KEEPS_SENT_COPIES


def logins(smtp: ServerUrl, imap: ServerUrl | None, password: str) -> tuple[ServerUrl, ServerUrl | None]:
    """The URLs as the mailbox logs in with them: its one password; IMAP's user defaults to SMTP's."""
    if imap is not None:
        imap = dataclasses.replace(imap, username=imap.username or smtp.username, password=password)
    return smtp.with_password(password), imap


def limits_of(mailbox: Mailbox) -> Limits:
    """The limits in force: each value set on the mailbox, else its provider's preset."""
    preset = PRESETS[Provider(mailbox.provider)]
    return Limits(
        per_minute=preset.per_minute if mailbox.per_minute is None else mailbox.per_minute,
        per_day=preset.per_day if mailbox.per_day is None else mailbox.per_day,
        max_connections=preset.max_connections if mailbox.max_connections is None else mailbox.max_connections,
    )


def set_mailbox(
    session: Session,
    rep_id: str,
    *,
    smtp: ServerUrl,
    imap: ServerUrl | None,
    password: str,
    provider: Provider | None,
    limits: Limits,
    key: SecretStr | None,
    now: dt.datetime,
) -> Mailbox:
    """Connect (or replace) the rep's mailbox, its password encrypted under `key`.

    `limits` holds only what was set explicitly; the rest follows the provider's preset.
    The URLs' own passwords are ignored: `password` is the mailbox's one password.
    """
    if not smtp.username:
        raise MailboxError(f"the SMTP URL names no user: write it as {smtp.protocol.name}://USER@{smtp.address}")
    if not password:
        raise MailboxError("the mailbox needs a password (or app password)")
    for name, value in dataclasses.asdict(limits).items():
        if value is not None and value < 1:
            raise MailboxError(f"{name.replace('_', ' ')} must be at least 1, not {value}")
    smtp, imap = logins(smtp, imap, password)
    values = {
        "provider": provider or provider_for(smtp.host),
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_security": smtp.security,
        "smtp_user": smtp.username,
        "imap_host": imap.host if imap else None,
        "imap_port": imap.port if imap else None,
        "imap_security": imap.security if imap else None,
        "imap_user": imap.username if imap else None,
        "auth": MailboxAuth.PASSWORD,
        "secret": credentials.encrypt(password, key),
        **dataclasses.asdict(limits),
    }
    return _store(session, rep_id, values, now)


def set_oauth_mailbox(
    session: Session,
    rep_id: str,
    *,
    provider: Provider,
    user: str,
    refresh_token: str,
    smtp: tuple[str, int, Security],
    imap: tuple[str, int, Security],
    key: SecretStr | None,
    now: dt.datetime,
) -> Mailbox:
    """Connect (or replace) the rep's mailbox with an OAuth 2.0 refresh token, encrypted under `key`.

    Its limits follow its provider's preset; limits an admin set on it before are kept.
    """
    values = {
        "provider": provider,
        "smtp_host": smtp[0],
        "smtp_port": smtp[1],
        "smtp_security": smtp[2],
        "smtp_user": user,
        "imap_host": imap[0],
        "imap_port": imap[1],
        "imap_security": imap[2],
        "imap_user": user,
        "auth": MailboxAuth.OAUTH,
        "secret": credentials.encrypt(refresh_token, key),
    }
    return _store(session, rep_id, values, now)


def _store(session: Session, rep_id: str, values: dict[str, Any], now: dt.datetime) -> Mailbox:
    # values: Mailbox columns by name, each of its column's type
    values = {**values, "state": MailboxState.CONNECTED, "last_error": None, "updated_at": now}
    mailbox = session.get(Mailbox, rep_id)
    if mailbox is None:
        mailbox = Mailbox(slack_user_id=rep_id, created_at=now, **values)
    else:
        mailbox.sqlmodel_update(values)
    session.add(mailbox)
    session.flush()
    queue.lift_hold(session, rep_id)  # a broken mailbox set again: the rep's emails go on
    return mailbox


def get_mailbox(session: Session, rep_id: str) -> Mailbox | None:
    """The rep's own mailbox, or None when the rep uses the relay."""
    return session.get(Mailbox, rep_id)


def list_mailboxes(session: Session) -> list[Mailbox]:
    """Every rep's mailbox, by Slack user id."""
    return list(session.exec(select(Mailbox).order_by(Mailbox.slack_user_id)))


def remove_mailbox(session: Session, rep_id: str) -> None:
    """Forget the rep's mailbox and its credentials: the rep's emails go through the relay again."""
    mailbox = session.get(Mailbox, rep_id)
    if mailbox is None:
        raise MailboxError(f"{rep_id} has no mailbox")
    session.delete(mailbox)
    queue.lift_hold(session, rep_id)  # its emails go through the relay now
    session.flush()


def mark_broken(session: Session, mailbox: Mailbox, error: str, now: dt.datetime) -> None:
    """The mailbox's login was refused: its emails wait until it is set again."""
    mailbox.state, mailbox.last_error, mailbox.updated_at = MailboxState.BROKEN, error, now
    session.add(mailbox)
    session.flush()


def keep_rotated(session: Session, rep_id: str, old: str, new: str, key: SecretStr | None) -> None:
    """Store `new`, the refresh token the provider handed in place of `old`, while the rep's mailbox holds `old`.

    A mailbox reconnected or removed since is left as it is.
    """
    mailbox = session.get(Mailbox, rep_id, with_for_update=True)
    if mailbox is None or mailbox.auth != MailboxAuth.OAUTH or credentials.decrypt(mailbox.secret, key) != old:
        return
    mailbox.secret = credentials.encrypt(new, key)
    session.add(mailbox)
    session.flush()


def smtp_server(mailbox: Mailbox, key: SecretStr | None, tokens: Tokens | None = None) -> ServerUrl:
    """Where and how to log in to send: the decrypted password, or (OAuth) a bearer from `tokens`."""
    return _with_login(smtp_address(mailbox), mailbox, key, tokens)


def smtp_address(mailbox: Mailbox) -> ServerUrl:
    """Where the mailbox sends, without its login."""
    return ServerUrl(SMTP, mailbox.smtp_host, mailbox.smtp_port, Security(mailbox.smtp_security), mailbox.smtp_user)


def imap_server(mailbox: Mailbox, key: SecretStr | None, tokens: Tokens | None = None) -> ServerUrl | None:
    """Where and how to log in to read, as smtp_server; None without IMAP."""
    if mailbox.imap_host is None or mailbox.imap_port is None or mailbox.imap_security is None:
        return None
    server = ServerUrl(IMAP, mailbox.imap_host, mailbox.imap_port, Security(mailbox.imap_security), mailbox.imap_user)
    return _with_login(server, mailbox, key, tokens)


def _with_login(server: ServerUrl, mailbox: Mailbox, key: SecretStr | None, tokens: Tokens | None) -> ServerUrl:
    secret = credentials.decrypt(mailbox.secret, key)
    if mailbox.auth != MailboxAuth.OAUTH:
        return server.with_password(secret)
    if tokens is None:
        raise MailboxError(
            f"{mailbox.slack_user_id}'s mailbox logs in with OAuth 2.0: it needs the access tokens of bot/mail/oauth.py"
        )
    return dataclasses.replace(server, bearer=tokens.bearer(Provider(mailbox.provider), secret, mailbox.slack_user_id))
