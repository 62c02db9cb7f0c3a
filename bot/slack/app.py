"""The Bolt app factory: everything it talks to is passed in, so tests run it offline."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_sdk import WebClient

from bot.slack import listeners
from bot.slack.context import Deps
from bot.slack.replies import report_failure

logger = logging.getLogger(__name__)

# Bolt runs listeners here after acking; they ack at once, heavy work goes to Deps.work.
LISTENER_THREADS = 16


def build_app(deps: Deps, client: WebClient) -> App:
    """A Bolt app answering commands, actions, views and events with `client`.

    The token is not checked while building (no auth.test call), so building is
    free of side effects; `bot serve` checks it once at start-up instead, and Bolt
    asks auth.test for the bot's identity on the first request.
    """
    app = App(
        client=client,
        token_verification_enabled=False,
        # bot/slack/http.py verifies each HTTP request before Bolt parses it; Socket Mode needs none.
        request_verification_enabled=False,
        # Answer Slack as soon as a listener acks; the rest runs on Bolt's threads.
        process_before_response=False,
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="slack-listener"),
        logger=logging.getLogger("slack_bolt"),
    )
    app.error(report_failure)
    listeners.register(app, deps)
    return app
