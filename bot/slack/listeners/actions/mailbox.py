"""The Connect / Reconnect buttons of a mailbox: links, which Slack reports too; acked, nothing more."""

from __future__ import annotations

import re

from slack_bolt import App

from bot.slack.blocks.home import CONNECT
from bot.slack.context import Deps


def register(app: App, deps: Deps) -> None:
    app.action(re.compile(f"^{CONNECT}_"))(lambda ack: ack())
