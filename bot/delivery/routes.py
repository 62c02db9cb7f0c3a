"""Which mailbox a rep's emails leave through, and within what limits.

A rep who connected a mailbox of their own sends through it, within its limits (its
provider's preset, or what an admin set); one connected over OAuth 2.0 logs in with
XOAUTH2, its access tokens kept in memory by a `Tokens` (bot/mail/oauth.py). It is never silently swapped for the relay:
while it is broken, the rep's emails wait. Every other rep's emails go through the
company relay (`SMTP_URL`, with `SMTP_MAX_CONNECTIONS`, `SMTP_PER_MINUTE`,
`SMTP_PER_DAY`), or into the outbox folder when no relay is set.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session

from bot.clock import Clock, SystemClock
from bot.delivery import transports
from bot.delivery.ports import Connection, Limits, Route
from bot.delivery.transports import OutboxTransport, SmtpTransport
from bot.mail import mailboxes
from bot.mail.oauth import Keeper, Tokens
from bot.mail.urls import parse_smtp_url
from bot.settings import Settings
from bot.store.models import Mailbox

# Connections to a rep's own mailbox of a provider without a preset, unless an admin set them.
OWN_MAILBOX_CONNECTIONS = 3


class Relay:
    """A Router that sends every rep's emails through one mailbox."""

    def __init__(
        self,
        connect: Callable[[], Connection],
        limits: Limits | None = None,
        *,
        key: str = "relay",
        shared: bool = True,
    ) -> None:
        self.relay = Route(key, connect, limits or Limits(), shared)

    def route(self, session: Session, rep_id: str) -> Route:
        return self.relay


class Mailboxes:
    """A Router: each rep's own mailbox when they connected one, else the relay."""

    def __init__(self, relay: Relay, settings: Settings, tokens: Tokens | None = None) -> None:
        self.relay = relay
        self.key = settings.secret_key
        self.tokens = tokens or Tokens(settings, SystemClock())

    def route(self, session: Session, rep_id: str) -> Route:
        mailbox = session.get(Mailbox, rep_id)
        if mailbox is None:
            return self.relay.route(session, rep_id)
        server = mailboxes.smtp_server(mailbox, self.key, self.tokens)
        limits = mailboxes.limits_of(mailbox)
        connections = limits.max_connections or OWN_MAILBOX_CONNECTIONS
        in_force = Limits(limits.per_minute, limits.per_day, connections)
        return Route(mailboxes.mailbox_key(rep_id), lambda: SmtpTransport(server), in_force)


def router_for(settings: Settings, engine: Engine, clock: Clock | None = None) -> Mailboxes:
    """Reps' own mailboxes, and the relay (or the outbox folder) for everyone else."""
    tokens = Tokens(settings, clock or SystemClock(), Keeper(engine, settings.secret_key))
    return Mailboxes(relay_for(settings), settings, tokens)


def relay_for(settings: Settings) -> Relay:
    """The relay of SMTP_URL with its limits, or the outbox folder when it is not set."""
    if not settings.smtp_url:
        folder = settings.outbox_dir
        return Relay(lambda: OutboxTransport(folder), key="outbox", shared=False)  # each worker's own folder
    url = settings.smtp_url
    SmtpTransport(url)  # a malformed SMTP_URL is refused at start-up, not at the first email
    limits = Limits(settings.smtp_per_minute, settings.smtp_per_day, settings.smtp_max_connections)
    return Relay(lambda: SmtpTransport(url), limits)


def smtputf8_refusal(settings: Settings, session: Session, rep_id: str) -> str | None:
    """Why the rep's emails cannot go to an address with non-ASCII before the @, or None when they can.

    Asked of the server they leave through (bot/delivery/transports.py): the rep's own
    mailbox's, else the relay's; the outbox folder takes any address.
    """
    mailbox = session.get(Mailbox, rep_id)
    if mailbox is not None:
        return transports.smtputf8_refusal(mailboxes.smtp_address(mailbox), "your mailbox's server")
    if settings.smtp_url:
        return transports.smtputf8_refusal(parse_smtp_url(settings.smtp_url), "the mail server (SMTP_URL)")
    return None
