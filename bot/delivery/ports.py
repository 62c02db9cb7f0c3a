"""The delivery side's shapes, and what it needs from the outside world.

One outgoing email has two shapes: an `Email` (composed: its envelope, its bytes,
what is stored of it when it is marked `sending`) and the `Outcome` of handing it
over. A `Route` says which mailbox a rep's emails leave through and within what
limits; a `Connection` is one open connection to that mailbox's server. A Notifier
tells reps in Slack (bot/slack/notifier.py). Tests can pass recording fakes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlmodel import Session


@dataclass(frozen=True)
class Email:
    """An email ready to hand over: composed once, by the scheduler, from its send's draft."""

    send_id: int
    mailbox: str  # the key of the mailbox it leaves through (`Route.key`)
    sender: str
    recipients: list[str]
    data: bytes  # the message as sent: CRLF line ends
    message_id: str
    subject: str
    body: str
    in_reply_to: str | None = None
    references: str | None = None  # space-separated Message-IDs
    notice: str | None = None  # to tell the rep once it is sent (e.g. a thread step went out new)


class DeliveryError(Exception):
    """The mail server did not take the email.

    `retry`: a temporary failure (refused connection, timeout before the body was
    sent, 4xx): try again later. `uncertain`: the body was handed over and the
    server may or may not have accepted it: never re-send automatically.
    `slow_down`: the server asked to send more slowly (421 4.7.0, 45x 4.7.x, 452
    4.5.3): the mailbox waits, the email is tried again without using a retry.
    `refused_login`: the server refused the mailbox's credentials: its emails wait
    until the rep reconnects it.
    """

    def __init__(
        self,
        reason: str,
        *,
        retry: bool = False,
        uncertain: bool = False,
        slow_down: bool = False,
        refused_login: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.uncertain = uncertain
        self.slow_down = slow_down
        self.refused_login = refused_login

    @property
    def holds_mailbox(self) -> bool:
        """The mailbox, not the email, is the problem: it waits and the email is not charged a try."""
        return self.slow_down or self.refused_login


@dataclass(frozen=True)
class Outcome:
    """What became of an email given to a connection: `handed` to the server (then `error`)."""

    email: Email
    at: dt.datetime
    handed: bool = True
    error: DeliveryError | None = None


class Connection(Protocol):
    def open(self) -> None:
        """Connect and log in; raise DeliveryError when the server will not have us."""

    def send(self, email: Email) -> None:
        """Hand one email to the server; raise DeliveryError when it is not taken."""

    def close(self) -> None:
        """Let go of the connection."""


@dataclass(frozen=True)
class Limits:
    """How much a mailbox may send: per minute, per rolling 24 hours (None: no limit), connections."""

    per_minute: int | None = None
    per_day: int | None = None
    connections: int = 1


@dataclass(frozen=True)
class Route:
    """The mailbox a rep's emails leave through: its key, how to connect, its limits."""

    key: str  # "relay", "outbox" or "rep:<slack user id>"
    connect: Callable[[], Connection] = field(compare=False)
    limits: Limits = Limits()
    shared: bool = True  # its connections count against a limit of every worker (a server's, not the outbox's)


class Router(Protocol):
    def route(self, session: Session, rep_id: str) -> Route:
        """The mailbox this rep's emails leave through now."""


class Notifier(Protocol):
    """Tells reps in Slack. Each method takes send ids; it reads what it shows itself."""

    def task_due(self, send_id: int) -> None:
        """Post the task message of a task that became due to its rep."""

    def send_failed(self, send_id: int) -> None:
        """Tell the rep an email failed (the reason is on the send) and the enrollment waits."""

    def send_uncertain(self, send_id: int) -> None:
        """Tell the rep an email may or may not have gone out, with Send again / Mark sent."""

    def send_notice(self, send_id: int, text: str) -> None:
        """Tell the rep something about a send (e.g. a thread step went out as a new email)."""

    def email_sent(self, send_ids: Sequence[int]) -> None:
        """Emails went out: update task messages in place and post to the live feed."""

    def mailbox_broken(self, send_id: int, text: str) -> None:
        """Tell the send's rep their own mailbox refused the login (`text`), with a button to reconnect it."""

    def digest(self, rep_id: str) -> bool:
        """Post the rep's daily digest; False when there was nothing to list."""

    def inbound(self, inbound_id: int) -> None:
        """Tell the rep what came back (a reply, out-of-office, bounce, unsubscribe) and the feed."""


class Deliverer(Protocol):
    def deliver(self, send_ids: Sequence[int]) -> object:
        """Deliver these sends now, whatever their due time; safe to call twice."""
