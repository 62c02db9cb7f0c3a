"""Serving the app: HTTP (WSGI on waitress) or Socket Mode."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress import create_server
from waitress import wasyncore
from waitress.server import BaseWSGIServer

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_app(app: App) -> Wsgi:
    """POST /slack/events for Slack (commands, interactivity, events); GET /healthz."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        return slack(environ, start_response)

    return application


class HttpServer:
    """A waitress server for the app; port 0 picks a free port (see `.port`)."""

    def __init__(self, app: App, host: str = "0.0.0.0", port: int = 3000, threads: int = 8) -> None:
        self._server: BaseWSGIServer = create_server(
            wsgi_app(app), host=host, port=port, threads=threads, ident="campaign-bot"
        )
        self.app = app
        self.host = host
        self.port: int = self._server.effective_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}{EVENTS_PATH}"

    def serve_forever(self) -> None:
        logger.info("listening on %s:%s%s", self.host, self.port, EVENTS_PATH)
        try:
            self._server.run()
        finally:
            self.drain()

    def drain(self) -> None:
        """Wait for listeners still working after their ack (their replies included)."""
        self.app.listener_runner.listener_executor.shutdown(wait=True)

    def start(self) -> HttpServer:
        """Serve on a background thread (tests, benchmarks)."""
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        # Request threads pull the loop's trigger when they finish a response: let them
        # all end first, or one may write to the trigger after it is closed (EBADF).
        server.task_dispatcher.shutdown()
        # The asyncore loop owns the sockets: close them from inside it, via its trigger.
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map, ignore_all=True))
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.drain()

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_socket_mode(app: App, app_token: str) -> None:
    """Connect to Slack over Socket Mode (no public URL needed) and block.

    Raises SlackApiError when Slack refuses the app token.
    """
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    handler = SocketModeHandler(app, app_token)
    handler.connect()
    logger.info("connected to Slack over Socket Mode")
    try:
        threading.Event().wait()  # until SIGTERM or Ctrl-C
    finally:
        # Stop taking envelopes, then let listeners already acked finish their replies.
        handler.close()
        app.listener_runner.listener_executor.shutdown(wait=True)
