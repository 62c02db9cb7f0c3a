"""The buttons of a task: Send, Edit, Schedule, Skip, and Send again / Mark as sent.

Each listener acks first, calls one service in bot/services/tasks.py, and then
redraws: the message clicked (in place), the send's own message and the rep's Home
tab. Only the send's rep may act; anyone else is told privately.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from sqlmodel import Session

from bot.core.rules import StepKind
from bot.services import tasks
from bot.services.agenda import entry_for
from bot.services.errors import NotYourSend, ServiceError
from bot.slack.blocks import tasks as blocks
from bot.slack.blocks.common import Message, error_message
from bot.slack.context import Deps
from bot.slack.notifier import SlackNotifier, zone_of
from bot.slack.replies import ReplyError, respond, tell
from bot.store.db import session_scope
from bot.store.models import Send, SendStatus

logger = logging.getLogger(__name__)

Body = dict[str, Any]
Action = Callable[[Session, int, str, dt.datetime], Send]


def register(app: App, deps: Deps) -> None:
    for action_id, service in (
        (blocks.SEND, tasks.send_now),
        (blocks.SKIP, tasks.skip),
        (blocks.SEND_AGAIN, tasks.send_again),
        (blocks.MARK_SENT, tasks.mark_sent),
    ):
        app.action(action_id)(button(deps, service))
    app.action(blocks.EDIT)(open_modal(deps, edit=True))
    app.action(blocks.SCHEDULE)(open_modal(deps, edit=False))
    for link in blocks.LINKS:
        # Link buttons open the mail client; Slack still reports the click.
        app.action(link)(lambda ack: ack())


def button(deps: Deps, service: Action) -> Callable[..., None]:
    def listener(ack: Ack, body: Body, action: dict[str, Any], client: WebClient) -> None:
        ack()
        user, send_id = body["user"]["id"], int(action["value"])
        try:
            with session_scope(deps.engine) as session:
                send = service(session, send_id, user, deps.clock.now())
        except ServiceError as exc:
            refuse(client, body, str(exc))
            return
        if send.status == SendStatus.PLANNED and send.kind == StepKind.EMAIL and send.due_at <= deps.clock.now():
            # Sent now, or sent again: deliver at once when a deliverer runs in this
            # process (it is safe to ask twice); else the scheduler's next pass takes it.
            if deps.deliverer is not None:
                deps.deliverer.deliver([send_id])
        show(deps, client, send_id, send.rep_id, body)

    listener.__name__ = f"task_{service.__name__}"
    return listener


def open_modal(deps: Deps, *, edit: bool) -> Callable[..., None]:
    def listener(ack: Ack, body: Body, action: dict[str, Any], client: WebClient) -> None:
        ack()
        user, send_id = body["user"]["id"], int(action["value"])
        now = deps.clock.now()
        with Session(deps.engine) as session:
            send = session.get(Send, send_id)
            if send is None or send.rep_id != user:
                refuse(client, body, str(NotYourSend()) if send else "This task no longer exists.")
                return
            zone = zone_of(session, user)
            entry = entry_for(session, send_id, now, zone)
            assert entry is not None
            if send.status != SendStatus.QUEUED:
                # A stale button: show where the task stands instead of a modal.
                show(deps, client, send_id, user, body)
                return
            private = blocks.metadata(send_id, **origin(body))
            if edit and entry.draft is None:
                refuse(
                    client, body, f"{blocks.problem_words(entry)}. It cannot be edited here: skip this step to go on."
                )
                return
            if edit:
                assert entry.draft is not None
                view = blocks.edit_modal(entry, entry.draft, private)
            else:
                view = blocks.schedule_modal(entry, private, now, zone)
        client.views_open(trigger_id=body["trigger_id"], view=view)

    listener.__name__ = "task_open_edit" if edit else "task_open_schedule"
    return listener


def origin(body: Body) -> dict[str, Any]:
    """Where a click came from: a message's channel and ts (for redrawing it later)."""
    container = body.get("container") or {}
    if container.get("type") != "message" or container.get("is_ephemeral"):
        return {}
    return {"channel": container.get("channel_id"), "ts": container.get("message_ts")}


def show(deps: Deps, client: WebClient, send_id: int, rep_id: str, body: Body | None = None) -> None:
    """Redraw after an action: the send's own message, the message clicked, the Home tab."""
    notifier = SlackNotifier(deps.engine, client, deps.clock, deps.settings)
    send = notifier.redraw(send_id)
    if body is not None and send is not None:
        redraw_clicked(notifier, client, send, body)
    notifier.publish_home(rep_id)


def redraw_clicked(notifier: SlackNotifier, client: WebClient, send: Send, body: Body) -> None:
    """Replace the send's item in the message clicked (a digest, `/tasks`), if not its own."""
    container = body.get("container") or {}
    message = body.get("message")
    if container.get("type") != "message" or not message:
        return
    channel, ts = container.get("channel_id"), container.get("message_ts")
    if (channel, ts) == (send.slack_channel, send.slack_ts):
        return  # its own message: redrawn already
    assert send.id is not None
    patched = blocks.replace_items(message.get("blocks") or [], send.id, notifier.item(send.id))
    # Slack gives the text back escaped; Message escapes it again when sent.
    redrawn = Message(text=html.unescape(message.get("text") or "Your tasks"), blocks=Block.parse_all(patched))
    try:
        if container.get("is_ephemeral"):
            respond(client, body["response_url"], redrawn, replace_original=True)
        else:
            client.chat_update(channel=channel, ts=ts, **redrawn.as_kwargs())
    except (SlackApiError, ReplyError, KeyError):
        logger.warning("could not redraw the message clicked for send %s", send.id, exc_info=True)


def refuse(client: WebClient, body: Body, text: str) -> None:
    """Tell only the person who clicked: ephemeral in the conversation, else privately."""
    user = body["user"]["id"]
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
    if channel:
        try:
            client.chat_postEphemeral(channel=channel, user=user, **error_message(text).as_kwargs())
            return
        except SlackApiError:
            logger.warning("could not post an ephemeral refusal in %s", channel)
    tell(client, body, error_message(text))
