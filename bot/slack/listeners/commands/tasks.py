"""`/tasks`: the rep's queued email tasks, privately, each with its buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.services.agenda import agenda_for
from bot.services.digest import rep_zone
from bot.slack.blocks.home import LIST_TASKS, tasks_message
from bot.slack.context import Deps
from bot.slack.profiles import ensure_rep
from bot.slack.replies import tell
from bot.store.db import session_scope


def register(app: App, deps: Deps) -> None:
    @app.command("/tasks")
    def tasks_command(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        ack()
        rep_id, now = command["user_id"], deps.clock.now()
        with session_scope(deps.engine) as session:
            zone = rep_zone(session, ensure_rep(session, client, rep_id, now))
            agenda = agenda_for(session, rep_id, now, zone, tasks=LIST_TASKS, emails=0)
            message = tasks_message(agenda, zone, now)
        tell(client, command, message)
