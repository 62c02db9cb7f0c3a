"""The Home tab's mailbox buttons: Connect (opens the dialog), the OAuth links, Disconnect."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.mail import mailboxes
from bot.services import queue
from bot.slack.blocks import mailbox as blocks
from bot.slack.context import Deps
from bot.slack.notifier import SlackNotifier
from bot.store.db import session_scope


def register(app: App, deps: Deps) -> None:
    @app.action(blocks.CONNECT)
    def connect_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(
            trigger_id=body["trigger_id"], view=blocks.connect_modal(deps.settings.secret_key is not None)
        )

    # Connect Google / Microsoft 365 are links: Slack reports the click too; nothing to do.
    app.action(re.compile(f"^{blocks.LINK}_"))(lambda ack: ack())

    @app.action(blocks.DISCONNECT)
    def disconnect_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        rep_id = body["user"]["id"]
        with session_scope(deps.engine) as session:
            if mailboxes.get_mailbox(session, rep_id) is not None:
                mailboxes.remove_mailbox(session, rep_id)
            queue.lift_hold(session, rep_id)
        SlackNotifier(deps.engine, client, deps.clock, deps.settings).publish_home(rep_id)
