"""Serving the app: HTTP (WSGI on waitress) or Socket Mode."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_sdk.signature import SignatureVerifier
from waitress import create_server, wasyncore
from waitress.server import BaseWSGIServer

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
OAUTH_PATH = "/oauth/"  # a mailbox's consent pages (bot/slack/oauth_pages.py)
UNSUBSCRIBE_PATH = "/unsubscribe/"  # bot/web/unsubscribe.py
# Slack's largest bodies are view submissions: a 100-block view, form-encoded. Waitress
# answers 413 to anything longer before the app reads a byte of it.
MAX_BODY_BYTES = 4 * 1024 * 1024

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class VerifyingHandler(SlackRequestHandler):
    """Bolt's WSGI handler, checking Slack's signature before Bolt reads the body.

    Bolt parses a body before it verifies it, and hands its errors (a timestamp that
    is not a number, JSON that does not parse) to the app's error handler with the
    unverified body, which would post to the response_url in it. Here nothing of a
    request is read until its signature holds: otherwise 401, and nothing is called.
    Slack's SSL check, which comes unsigned, is answered and goes no further.
    """

    def __init__(self, app: App, signing_secret: str) -> None:
        super().__init__(app, path=EVENTS_PATH)
        self.verifier = SignatureVerifier(signing_secret)

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        raw = request.environ["wsgi.input"].read(int(request.environ.get("CONTENT_LENGTH") or 0))
        headers = request.get_headers()
        if parse_qs(raw.decode(errors="replace")).get("ssl_check") == ["1"]:
            return BoltResponse(status=200, body="")
        if not self.verified(raw, headers):
            return BoltResponse(status=401, body={"error": "invalid request"})
        try:
            bolt_request = BoltRequest(body=raw.decode(), query=request.query_string, headers=headers)
        except ValueError:  # signed, yet not UTF-8 or not JSON: nothing Slack sends
            return BoltResponse(status=400, body={"error": "malformed request"})
        return self.app.dispatch(bolt_request)

    def verified(self, raw: bytes, headers: dict[str, Any]) -> bool:
        timestamp = str(headers.get("x-slack-request-timestamp", ""))
        signature = str(headers.get("x-slack-signature", ""))
        try:
            return self.verifier.is_valid(raw, timestamp, signature)
        except (ValueError, TypeError):  # a timestamp not a number, a body not UTF-8, a signature not ASCII
            return False


def wsgi_app(app: App, signing_secret: str, oauth: Wsgi | None = None, unsubscribe: Wsgi | None = None) -> Wsgi:
    """POST /slack/events for Slack; GET /healthz; /oauth/... to `oauth`; /unsubscribe/<token> to `unsubscribe`."""
    slack = VerifyingHandler(app, signing_secret)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or ""
        if path == HEALTH_PATH:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if oauth is not None and path.startswith(OAUTH_PATH):
            return oauth(environ, start_response)  # browsers, not Slack: no signature to check
        if unsubscribe is not None and path.startswith(UNSUBSCRIBE_PATH):
            return unsubscribe(environ, start_response)
        return slack(environ, start_response)

    return application


class HttpServer:
    """A waitress server for the app, verifying requests with `signing_secret`; port 0 picks a free port.

    `unsubscribe` answers /unsubscribe/<token> (bot/web/unsubscribe.py).
    """

    def __init__(
        self,
        app: App,
        signing_secret: str,
        host: str = "0.0.0.0",
        port: int = 3000,
        threads: int = 8,
        oauth: Wsgi | None = None,
        unsubscribe: Wsgi | None = None,
    ) -> None:
        self._server: BaseWSGIServer = create_server(
            wsgi_app(app, signing_secret, oauth, unsubscribe),
            host=host,
            port=port,
            threads=threads,
            ident="campaign-bot",
            max_request_body_size=MAX_BODY_BYTES,
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
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map, ignore_all=True))
        except OSError:
            # The trigger itself is closed already (the loop let go of its sockets, as it does
            # when a channel fails): nothing can wake the loop, so close what is left here.
            wasyncore.close_all(server._map, ignore_all=True)
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
