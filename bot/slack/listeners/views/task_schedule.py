"""The Schedule modal's submission: the task becomes an email planned for the time picked."""

from __future__ import annotations

import datetime as dt
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.clock import UTC
from bot.services import tasks
from bot.services.errors import ServiceError
from bot.slack.blocks import tasks as blocks
from bot.slack.context import Deps
from bot.slack.listeners.actions.tasks import show
from bot.store.db import session_scope


def picked(view: dict[str, Any]) -> dt.datetime | None:
    """The instant picked; Slack's datetimepicker answers a Unix timestamp."""
    value = view["state"]["values"].get(blocks.WHEN_BLOCK, {}).get(blocks.INPUT, {}).get("selected_date_time")
    return dt.datetime.fromtimestamp(int(value), UTC) if value else None


def register(app: App, deps: Deps) -> None:
    @app.view(blocks.SCHEDULE_VIEW)
    def task_schedule_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        # The service runs before the ack: its refusal is shown on the field, in the modal.
        send_id = int(blocks.read_metadata(view["private_metadata"])["send"])
        at = picked(view)
        if at is None:
            ack(response_action="errors", errors={blocks.WHEN_BLOCK: "Pick the date and the time to send it."})
            return
        try:
            with session_scope(deps.engine) as session:
                send = tasks.schedule(session, send_id, body["user"]["id"], at, deps.clock.now())
        except ServiceError as exc:
            ack(response_action="errors", errors={blocks.WHEN_BLOCK: str(exc)})
            return
        ack()
        show(deps, client, send_id, send.rep_id)
