"""A real SMTP server for tests and benchmarks (aiosmtpd on 127.0.0.1, a free port).

It keeps every message it accepts (envelope and raw bytes), and can be told to
answer a chosen recipient with a 4xx or 5xx reply, or to hang up right after the
body of a chosen recipient's email arrived (before its final reply).

It can also behave as real servers do: take `latency` seconds to accept each
message (without holding up other connections), allow `max_connections` at once
(answering `421` past the cap, as Microsoft 365 and Gmail do), refuse a login,
and answer "slow down" to the next few emails.
 It offers
SMTPUTF8 (addresses with non-ASCII before the @) only when made with smtputf8=True.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult


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

    def __init__(
        self, *, keep: bool = True, latency: float = 0.0, max_connections: int | None = None, smtputf8: bool = False
    ) -> None:
        self.keep = keep  # benchmarks only count
        self.latency = latency  # seconds to accept a message, as a real server takes
        self.max_connections = max_connections
        self.open_connections = 0
        self.most_connections = 0  # the most open at once
        self.refused_connections = 0  # answered 421 for being past the cap
        self.slow_downs: list[str] = []  # replies for the next emails' MAIL FROM
        self.by_sender: Counter[str] = Counter()  # accepted emails per envelope sender
        self.refusing_logins = False
        self.accepted_at: list[float] = []  # wall-clock time of each accepted email (benchmarks)
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

    def slow_down(self, times: int, reply: str = "451 4.7.0 Temporary rate limit, slow down") -> None:
        """Answer the next `times` emails' MAIL FROM with a "slow down" reply."""
        self.slow_downs.extend([reply] * times)

    def refuse_logins(self) -> None:
        """Answer every AUTH with 535, as a server does for a wrong or revoked password."""
        self.refusing_logins = True

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
    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]) -> str:
        with self._lock:
            reply = self.slow_downs.pop(0) if self.slow_downs else None
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.latency:
            await asyncio.sleep(self.latency)  # other connections go on meanwhile
        content = bytes(envelope.original_content or envelope.content)
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), content, tuple(envelope.mail_options))
        if self.drop_after_data.intersection(envelope.rcpt_tos):
            with self._lock:
                self.dropped.append(received)
            server.transport.close()
            return "250 OK"  # never reaches the client: the connection is gone
        with self._arrived:
            self.count += 1
            self.accepted_at.append(time.time())
            self.by_sender[received.mail_from] += 1
            if self.keep:
                self.messages.append(received)
            self._arrived.notify_all()
        return "250 OK"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        return AuthResult(success=not self.refusing_logins, handled=False)

    # --- lifecycle ------------------------------------------------------------------
    def __enter__(self) -> SmtpSink:
        server = {
            "data_size_limit": 0,
            "enable_SMTPUTF8": self.smtputf8,
            "authenticator": self._authenticate,
            "auth_require_tls": False,
        }
        self._controller = _AnyPortController(self, hostname="127.0.0.1", port=0, server_kwargs=server)
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._controller is not None:
            self._controller.stop()


class _CappedSmtp(SMTP):
    """aiosmtpd's server, counting open connections and refusing those past the sink's cap."""

    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(sink, **kwargs)
        self.sink = sink
        self.counted = False

    async def _handle_client(self) -> None:
        sink = self.sink
        with sink._lock:
            full = sink.max_connections is not None and sink.open_connections >= sink.max_connections
            if full:
                sink.refused_connections += 1
            else:
                sink.open_connections += 1
                sink.most_connections = max(sink.most_connections, sink.open_connections)
                self.counted = True
        if full:
            await self.push("421 4.7.0 Too many concurrent connections, try again later")
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()

    def connection_lost(self, error: Exception | None) -> None:
        if self.counted:
            self.counted = False
            with self.sink._lock:
                self.sink.open_connections -= 1
        super().connection_lost(error)


class _AnyPortController(Controller):
    """Binds port 0 and learns the port the system picked before its readiness check."""

    def factory(self) -> SMTP:
        return _CappedSmtp(self.handler, **self.SMTP_kwargs)

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
