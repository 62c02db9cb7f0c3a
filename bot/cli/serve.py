"""`bot serve`: answer Slack (HTTP or Socket Mode) and run the scheduler in the same process."""

from __future__ import annotations

import argparse
import logging
import signal
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.cli import CommandError
from bot.clock import SystemClock
from bot.delivery.scheduler import build_scheduler
from bot.settings import Settings, load_settings
from bot.slack.app import build_app
from bot.slack.client import make_client
from bot.slack.context import Deps
from bot.slack.http import HttpServer, serve_socket_mode
from bot.slack.notifier import SlackNotifier
from bot.store.db import connect

logger = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Adds `bot serve`."""
    parser = commands.add_parser("serve", help="answer Slack and run the scheduler")
    parser.add_argument("--socket", action="store_true", help="use Socket Mode (SLACK_APP_TOKEN) instead of HTTP")
    parser.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler in this process")
    parser.add_argument("--port", type=int, help="HTTP port (default: PORT, 3000)")
    parser.add_argument("--host", help="HTTP address to listen on (default: HOST, 0.0.0.0)")
    parser.add_argument("--threads", type=int, default=32, help="HTTP worker threads (default: 32)")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    settings.require("slack_bot_token", "slack_app_token" if args.socket else "slack_signing_secret")
    engine = connect(settings.database_url)
    clock = SystemClock()
    client = make_client(settings)
    _check_token(client)
    notifier = SlackNotifier(engine, client, clock, settings)
    scheduler = None if args.no_scheduler else build_scheduler(settings, engine, notifier, clock)
    deps = Deps(engine=engine, clock=clock, settings=settings, deliverer=scheduler)
    app = build_app(deps, client)
    _stop_on_sigterm()
    if scheduler is not None:
        scheduler.start()
    try:
        if args.socket:
            logger.info("connecting to Slack over Socket Mode")
            _serve_socket_mode(app, str(settings.slack_app_token))
        else:
            _serve_http(app, settings, args)
    finally:
        deps.drain()
        if scheduler is not None:
            scheduler.stop()
        engine.dispose()
    return 0


def _serve_http(app: Any, settings: Settings, args: argparse.Namespace) -> None:
    port = settings.port if args.port is None else args.port
    server = HttpServer(app, host=args.host or settings.host, port=port, threads=args.threads)
    # One line a script (or a test that asked for port 0) can read the port from.
    print(f"bot: listening on http://{server.host}:{server.port}/slack/events", flush=True)
    server.serve_forever()


def _serve_socket_mode(app: Any, app_token: str) -> None:
    try:
        serve_socket_mode(app, app_token)
    except SlackApiError as exc:
        raise CommandError(f"SLACK_APP_TOKEN was refused by Slack: {exc.response.get('error')}") from None


def _check_token(client: Any) -> None:
    """Refuse to start with a token Slack does not accept, in one line."""
    try:
        client.auth_test()
    except SlackApiError as exc:
        raise CommandError(f"SLACK_BOT_TOKEN was refused by Slack: {exc.response.get('error')}") from None
    except OSError as exc:
        raise CommandError(f"cannot reach Slack at SLACK_API_URL: {exc}") from None


def _stop_on_sigterm() -> None:
    # `docker stop` and systemd send SIGTERM: leave like Ctrl-C, stopping the scheduler cleanly.
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
