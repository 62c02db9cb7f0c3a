"""A real SMTP server for tests and benchmarks (aiosmtpd on 127.0.0.1, a free port).

It keeps every message it accepts (envelope and raw bytes), and can be told to
answer a chosen recipient with a 4xx or 5xx reply, or to hang up right after the
body of a chosen recipient's email arrived (before its final reply). It offers
SMTPUTF8 (addresses with non-ASCII before the @) only when made with smtputf8=True.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # exactly as it arrived, after the server undid dot-stuffing
    mail_options: tuple[str, ...] = ()  # MAIL FROM's parameters, e.g. SMTPUTF8

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


class SmtpSink:
    """Use as a context manager: `with SmtpSink() as sink: ... sink.url ... sink.messages`."""

    def __init__(self, *, keep: bool = True, smtputf8: bool = False) -> None:
        self.keep = keep  # benchmarks only count
        self.smtputf8 = smtputf8
        self.messages: list[Received] = []
        self.dropped: list[Received] = []  # bodies received on connections hung up before the reply
        self.count = 0
        self.rcpt_replies: dict[str, str] = {}
        self.drop_after_data: set[str] = set()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._controller: Controller | None = None

    # --- what the tests configure -------------------------------------------------
    def reply_to(self, recipient: str, reply: str) -> None:
        """Answer RCPT TO:<recipient> with `reply`, e.g. "451 4.2.1 Mailbox busy"."""
        self.rcpt_replies[recipient] = reply

    def hang_up_after_data(self, recipient: str) -> None:
        """Take the body of emails to `recipient`, then close the connection without replying."""
        self.drop_after_data.add(recipient)

    # --- what the tests read --------------------------------------------------------
    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        assert self._controller is not None
        return self._controller.port

    def to(self, recipient: str) -> list[Received]:
        return [received for received in self.messages if recipient in received.rcpt_tos]

    def counts(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        return Counter(str(received.message["Message-ID"]) for received in self.messages)

    def wait_for(self, count: int, timeout: float = 120.0) -> bool:
        """Wait until `count` emails have arrived (an event, bounded by a generous timeout)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self.count >= count, timeout)

    # --- aiosmtpd handler hooks -----------------------------------------------------
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = bytes(envelope.original_content or envelope.content)
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), content, tuple(envelope.mail_options))
        if self.drop_after_data.intersection(envelope.rcpt_tos):
            with self._lock:
                self.dropped.append(received)
            server.transport.close()
            return "250 OK"  # never reaches the client: the connection is gone
        with self._arrived:
            self.count += 1
            if self.keep:
                self.messages.append(received)
            self._arrived.notify_all()
        return "250 OK"

    # --- lifecycle ------------------------------------------------------------------
    def __enter__(self) -> SmtpSink:
        self._controller = _AnyPortController(
            self, hostname="127.0.0.1", port=0, server_kwargs={"data_size_limit": 0, "enable_SMTPUTF8": self.smtputf8}
        )
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._controller is not None:
            self._controller.stop()


class _AnyPortController(Controller):
    """Binds port 0 and learns the port the system picked before its readiness check."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SilentServer:
    """Accepts TCP connections and never says a word (a client's timeout fires)."""

    def __enter__(self) -> SilentServer:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.socket.close()
