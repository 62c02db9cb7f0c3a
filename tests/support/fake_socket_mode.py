"""A fake Slack Socket Mode endpoint on loopback, for offline end-to-end tests.

FakeSlack answers `apps.connections.open` with `.url`; the app's real Socket Mode
client connects there. Like Slack, the server greets each connection with a
`hello`, sends envelopes (`{"envelope_id", "type", "payload", ...}`) and expects
the app to ack each one with `{"envelope_id": ...}` (plus a payload if it has one).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from tests.support.fake_slack import FakeSlack

APP_ID = "A0APP0001"


class FakeSocketMode:
    """Socket Mode on ws://127.0.0.1:0; use as a context manager.

    `.acks` holds what the app sent back, `.connections` how many times it connected.
    """

    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []
        self.connections = 0
        self._socket: ServerConnection | None = None
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self._server = serve(self._serve_connection, "127.0.0.1", 0)
        self.port: int = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True)

    @property
    def url(self) -> str:
        """What apps.connections.open answers: a one-time link, as Slack's are."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket=fake-ticket-{next(self._ids)}&app_id={APP_ID}"

    # --- life cycle -------------------------------------------------------------

    def __enter__(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)

    def serve_for(self, fake: FakeSlack) -> FakeSocketMode:
        """Have `fake` hand out this server's URL from apps.connections.open."""
        fake.socket_mode_url = lambda: self.url
        return self

    # --- the protocol -----------------------------------------------------------

    def _serve_connection(self, socket: ServerConnection) -> None:
        with self._changed:
            self._socket = socket
            self.connections += 1
        socket.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake-socket-mode", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        with self._changed:
            self._changed.notify_all()
        try:
            for message in socket:
                with self._changed:
                    self.acks.append(json.loads(message))
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                if self._socket is socket:
                    self._socket = None
                self._changed.notify_all()

    def send(self, kind: str, payload: dict[str, Any], accepts_response_payload: bool = True) -> str:
        """Push an envelope of `kind` (slash_commands, interactive, events_api); returns its id."""
        envelope_id = f"fake-envelope-{next(self._ids)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
            "payload": payload,
        }
        with self._changed:
            socket = self._socket
        assert socket is not None, "the app is not connected"
        socket.send(json.dumps(envelope))
        return envelope_id

    # --- waiting ----------------------------------------------------------------

    def notify(self) -> None:
        """Wake whoever waits (e.g. when the app's process has ended)."""
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `condition()` is truthy, at most `timeout` seconds; return it."""
        with self._changed:
            return self._changed.wait_for(condition, timeout=timeout)

    def is_connected(self) -> bool:
        return self._socket is not None

    def ack_for(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The app's ack of `envelope_id`, once it has come."""
        ack = self.wait_for(lambda: next((a for a in self.acks if a.get("envelope_id") == envelope_id), None), timeout)
        assert ack, f"the app never acked {envelope_id}"
        return ack
