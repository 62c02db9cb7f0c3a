"""Opening the Home tab draws the rep's command center."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.slack.context import Deps
from bot.slack.notifier import SlackNotifier


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def app_home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab
        SlackNotifier(deps.engine, client, deps.clock, deps.settings).publish_home(event["user"])
