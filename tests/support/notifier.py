"""A Notifier that records what reps would have been told, for scheduler tests."""

from __future__ import annotations

from collections.abc import Sequence


class RecordingNotifier:
    """Implements bot.delivery.ports.Notifier; `calls` is a list of (method, argument)."""

    def __init__(self, *, digest_shows: bool = True) -> None:
        self.calls: list[tuple[str, object]] = []
        self.digest_shows = digest_shows

    def task_due(self, send_id: int) -> None:
        self.calls.append(("task_due", send_id))

    def send_failed(self, send_id: int) -> None:
        self.calls.append(("send_failed", send_id))

    def send_uncertain(self, send_id: int) -> None:
        self.calls.append(("send_uncertain", send_id))

    def send_notice(self, send_id: int, text: str) -> None:
        self.calls.append(("send_notice", (send_id, text)))

    def mailbox_broken(self, send_id: int, text: str) -> None:
        self.calls.append(("mailbox_broken", (send_id, text)))

    def email_sent(self, send_ids: Sequence[int]) -> None:
        self.calls.append(("email_sent", list(send_ids)))

    def digest(self, rep_id: str) -> bool:
        self.calls.append(("digest", rep_id))
        return self.digest_shows

    def inbound(self, inbound_id: int) -> None:
        self.calls.append(("inbound", inbound_id))

    def told(self, method: str) -> list[object]:
        """The arguments of every call of `method`."""
        return [argument for name, argument in self.calls if name == method]
