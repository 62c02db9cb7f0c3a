"""`bot serve`: answer Slack (HTTP or Socket Mode) and run the scheduler in the same process."""

from __future__ import annotations

import argparse
import logging
import signal
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.cli import CommandError
from bot.cli.worker import watcher_for
from bot.clock import SystemClock
from bot.delivery.scheduler import build_scheduler
from bot.mail import oauth
from bot.mail.sent_copies import SentCopier
from bot.salesforce.sync import syncer_for
from bot.settings import Settings, load_settings
from bot.slack.app import build_app
from bot.slack.client import make_client
from bot.slack.context import Deps
from bot.slack.http import HttpServer, serve_socket_mode
from bot.slack.notices import queued_slack
from bot.slack.notifier import SlackNotifier
from bot.slack.oauth_pages import OAuthPages
from bot.store.db import connect
from bot.web.unsubscribe import unsubscribe_app

logger = logging.getLogger(__name__)
QUIET = logging.getLogger(f"{__name__}.quiet")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


def register(commands: argparse._SubParsersAction) -> None:
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
    scheduler = poster = copier = watcher = None
    if not args.no_scheduler:
        # The scheduler only queues what reps are told; the poster's thread posts it.
        queued, poster = queued_slack(engine, settings, clock)
        scheduler = build_scheduler(settings, engine, queued, clock)
        copier = SentCopier(engine, clock, settings.secret_key)
        watcher = watcher_for(scheduler, poster)  # the mailboxes: replies, out-of-office, bounces
    syncer = syncer_for(settings, engine, clock)  # Salesforce (SALESFORCE_URL): records sync work here too
    deps = Deps(engine=engine, clock=clock, settings=settings, deliverer=scheduler)
    app = build_app(deps, client)
    _stop_on_sigterm()
    if poster is not None:
        poster.start()
    if scheduler is not None:
        scheduler.start()
    if copier is not None:
        copier.start()
    if syncer is not None and not args.no_scheduler:
        syncer.start()
    if watcher is not None:
        watcher.start()
    try:
        if args.socket:
            logger.info("connecting to Slack over Socket Mode")
            _serve_socket_mode(app, str(settings.slack_app_token))
        else:
            home = SlackNotifier(engine, client, clock, settings).publish_home  # redrawn once a mailbox is connected
            pages = OAuthPages(engine, clock, settings, home) if oauth.configured(settings) else None
            _serve_http(app, settings, args, pages, unsubscribe_app(engine, clock, settings.secret_key))
    finally:
        deps.drain()
        if watcher is not None:
            watcher.stop(10)
        if scheduler is not None:
            scheduler.stop()
        if copier is not None:
            copier.stop()
        if syncer is not None and not args.no_scheduler:
            syncer.stop()
        if poster is not None:
            poster.stop()
        engine.dispose()
    return 0


def _serve_http(
    app: Any, settings: Settings, args: argparse.Namespace, pages: OAuthPages | None, unsubscribe: Any
) -> None:
    host, port = args.host or settings.host, settings.port if args.port is None else args.port
    try:
        server = HttpServer(
            app,
            str(settings.slack_signing_secret),
            host=host,
            port=port,
            threads=args.threads,
            oauth=pages,
            unsubscribe=unsubscribe,
        )
    except OSError as exc:  # the port is taken, or not ours to take
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    # One line a script (or a test that asked for port 0) can read the port from.
    print(f"bot: listening on http://{server.host}:{server.port}/slack/events", flush=True)
    server.serve_forever()


def _serve_socket_mode(app: Any, app_token: str) -> None:
    try:
        serve_socket_mode(app, app_token)
    except SlackApiError as exc:
        raise CommandError(f"SLACK_APP_TOKEN was refused by Slack: {exc.response.get('error')}") from None


def _check_token(client: WebClient) -> None:
    """Refuse to start with a token Slack does not accept, or a Slack out of reach, in one line."""
    # The same call with a quiet logger: slack_sdk logs every failed try, which would bury the line.
    probe = WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        retry_handlers=client.retry_handlers,
        logger=QUIET,
    )
    try:
        probe.auth_test()
    except SlackApiError as exc:
        raise CommandError(f"SLACK_BOT_TOKEN was refused by Slack: {exc.response.get('error')}") from None
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc  # urllib's URLError wraps the socket's error
        reason = getattr(reason, "strerror", None) or reason
        raise CommandError(f"cannot reach Slack at SLACK_API_URL ({client.base_url}): {reason}") from None


def _stop_on_sigterm() -> None:
    # `docker stop` and systemd send SIGTERM: leave like Ctrl-C, stopping the scheduler cleanly.
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
