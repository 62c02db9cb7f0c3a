"""The Edit modal's submission: keep the rep's subject and body for the task."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.services import tasks
from bot.services.errors import ServiceError
from bot.slack.blocks import tasks as blocks
from bot.slack.context import Deps
from bot.slack.listeners.actions.tasks import show
from bot.store.db import session_scope


def register(app: App, deps: Deps) -> None:
    @app.view(blocks.EDIT_VIEW)
    def task_edit_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        # The service runs before the ack: its refusal is shown on the field, in the modal.
        send_id = int(blocks.read_metadata(view["private_metadata"])["send"])
        values = view["state"]["values"]
        subject = values[blocks.SUBJECT_BLOCK][blocks.INPUT].get("value") or ""
        text = blocks.edited_body(view)
        user = body["user"]["id"]
        try:
            with session_scope(deps.engine) as session:
                send = tasks.save_edit(session, send_id, user, subject, text, deps.clock.now())
        except ServiceError as exc:
            ack(response_action="errors", errors={blocks.SUBJECT_BLOCK: str(exc)})
            return
        ack()
        show(deps, client, send_id, send.rep_id)
