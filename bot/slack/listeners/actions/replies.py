"""The button of a reply's message: "Not a reply: go on" resumes what the reply stopped.

Acks first, calls bot/services/replies.go_on, then redraws the message clicked and
the rep's Home tab. Only the rep the reply came to may undo it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services import replies
from bot.services.agenda import entry_for
from bot.services.errors import ServiceError
from bot.slack.blocks import replies as blocks
from bot.slack.context import Deps
from bot.slack.listeners.actions.tasks import refuse
from bot.slack.notifier import SlackNotifier, zone_of
from bot.store.db import session_scope
from bot.store.models import Inbound

Body = dict[str, Any]


def register(app: App, deps: Deps) -> None:
    app.action(blocks.GO_ON)(go_on_listener(deps))
    app.action(blocks.OPEN)(lambda ack: ack())  # a link button: Slack still reports the click


def go_on_listener(deps: Deps) -> Any:
    def inbound_go_on(ack: Ack, body: Body, action: dict[str, Any], client: WebClient) -> None:
        ack()
        user, inbound_id = body["user"]["id"], int(action["value"])
        try:
            with session_scope(deps.engine) as session:
                replies.go_on(session, inbound_id, user, deps.clock.now())
                inbound = session.get(Inbound, inbound_id)
                assert inbound is not None and inbound.send_id is not None
                entry = entry_for(session, inbound.send_id, deps.clock.now(), zone_of(session, user))
        except ServiceError as exc:
            refuse(client, body, str(exc))
            return
        container = body.get("container") or {}
        if entry is not None and container.get("type") == "message":
            # A message that is gone cannot be redrawn; the enrollment goes on all the same.
            with contextlib.suppress(SlackApiError):
                client.chat_update(
                    channel=container["channel_id"], ts=container["message_ts"], **blocks.gone_on(entry).as_kwargs()
                )
        SlackNotifier(deps.engine, client, deps.clock, deps.settings).publish_home(user)

    return inbound_go_on
