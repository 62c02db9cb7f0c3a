"""What the scheduler needs from the outside world, as protocols.

The scheduler (bot/delivery/scheduler.py) claims sends through the services and hands
them to these: a MailTransport that speaks SMTP (or writes .eml files), and a Notifier
that tells reps in Slack (bot/slack/notifier.py). Tests can pass recording fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True)
class Outbound:
    """An email as it goes on the wire: its envelope and CRLF bytes.

    Serialized once, by whoever prepares the email, so whoever talks to the mail
    server (a thread, or the sender process) spends its time on the server.
    """

    sender: str
    recipients: list[str]
    data: bytes
    message_id: str


class DeliveryError(Exception):
    """The mail server did not take the email.

    `retry`: a temporary failure (refused connection, timeout before the body was
    sent, 4xx): try again later. `uncertain`: the body was handed over and the
    server may or may not have accepted it: never re-send automatically.
    """

    def __init__(self, reason: str, *, retry: bool = False, uncertain: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.uncertain = uncertain


class MailTransport(Protocol):
    def send(self, email: Outbound) -> None:
        """Hand one email to the server; raise DeliveryError when it is not taken."""

    def close(self) -> None:
        """Let go of any open connection."""


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

    def digest(self, rep_id: str) -> bool:
        """Post the rep's daily digest; False when there was nothing to list."""


class Deliverer(Protocol):
    def deliver(self, send_ids: Sequence[int]) -> None:
        """Deliver these sends now, whatever their due time; safe to call twice."""
