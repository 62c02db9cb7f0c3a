"""Which mailbox a rep's emails leave through, and within what limits.

Without a mailbox of their own, every rep's emails go through the company relay
(`SMTP_URL`, with `SMTP_MAX_CONNECTIONS`, `SMTP_PER_MINUTE`, `SMTP_PER_DAY`), or
into the outbox folder when no relay is set.
"""

from __future__ import annotations

from typing import Callable

from bot.delivery.ports import Connection, Limits, Route
from bot.delivery.transports import OutboxTransport, SmtpTransport
from bot.settings import Settings


class Relay:
    """A Router that sends every rep's emails through one mailbox."""

    def __init__(self, connect: Callable[[], Connection], limits: Limits | None = None, *, key: str = "relay") -> None:
        self.relay = Route(key, connect, limits or Limits())

    def route(self, rep_id: str) -> Route:
        return self.relay


def relay_for(settings: Settings) -> Relay:
    """The relay of SMTP_URL with its limits, or the outbox folder when it is not set."""
    if not settings.smtp_url:
        folder = settings.outbox_dir
        return Relay(lambda: OutboxTransport(folder), key="outbox")
    url = settings.smtp_url
    SmtpTransport(url)  # a malformed SMTP_URL is refused at start-up, not at the first email
    limits = Limits(settings.smtp_per_minute, settings.smtp_per_day, settings.smtp_max_connections)
    return Relay(lambda: SmtpTransport(url), limits)
