"""Telling reps in Slack: task messages, failures, the digest, App Home and the live feed.

`SlackNotifier` implements the Notifier port (bot/delivery/ports.py) for the notice
poster, which posts what the scheduler queued (bot/slack/notices.py); the task
listeners use it too, to redraw a send's message and the rep's Home tab after an
action. Logs name sends and channels, never bodies or tokens.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from sqlalchemy import Engine, update
from sqlmodel import Session, col

from bot.clock import Clock
from bot.mail import mailboxes, oauth
from bot.services.agenda import Entry, agenda_for, entries_for
from bot.services.digest import rep_zone
from bot.services.drafts import rep_name
from bot.settings import Settings
from bot.slack.blocks.common import Message, capped_lines, context, escape
from bot.slack.blocks.digest import DIGEST_EMAILS, DIGEST_TASKS, digest_message
from bot.slack.blocks.home import HOME_EMAILS, HOME_REPLIES, HOME_TASKS, home_view
from bot.slack.blocks.mailbox import Panel, mailbox_broken_message
from bot.slack.blocks.replies import feed_line, inbound_message
from bot.slack.blocks.tasks import item_blocks, step_words, task_message, who
from bot.slack.client import busy
from bot.store.db import session_scope
from bot.store.models import Inbound, Mailbox, Rep, Send

logger = logging.getLogger(__name__)

FEED_LINES = 40  # one feed message per batch of sent emails, at most this many lines


class SlackNotifier:
    """Posts and updates the messages reps see; implements bot.delivery.ports.Notifier."""

    def __init__(self, engine: Engine, client: WebClient, clock: Clock, settings: Settings) -> None:
        self.engine = engine
        self.client = client
        self.clock = clock
        self.settings = settings

    # --- the Notifier port ----------------------------------------------------------

    def task_due(self, send_id: int) -> None:
        """DM the task to its rep (or redraw the message it already has) and tell the feed."""
        entry = self._show(send_id, again=False)
        if entry is None:
            return
        with self._session() as session:
            rep = self._rep_name(session, entry.send.rep_id)
        self._feed([f"Task queued: {step_words(entry)} for {who(entry)} ({rep})"])

    def email_sent(self, send_ids: Sequence[int]) -> None:
        """Redraw the messages of sent emails in place, and one feed message for the batch."""
        if not send_ids:
            return
        updates: list[tuple[str, str, Message]] = []
        lines = []
        with self._session() as session:
            now = self.clock.now()
            for entry in entries_for(session, send_ids, now, ZoneInfo("UTC")).values():
                send = entry.send
                if send.slack_channel and send.slack_ts:
                    message = task_message(entry, self._zone(session, send.rep_id), now)
                    updates.append((send.slack_channel, send.slack_ts, message))
                lines.append(
                    f"Email sent: {step_words(entry)} to {who(entry)} ({self._rep_name(session, send.rep_id)})"
                )
        for channel, ts, message in updates:
            self._update(channel, ts, message, quiet=True)
        self._feed(lines)

    def send_failed(self, send_id: int) -> None:
        """Tell the rep an email failed, with the server's reason and its buttons."""
        self._show(send_id, again=True)

    def send_uncertain(self, send_id: int) -> None:
        """Tell the rep an email may not have gone out, with Send again and Mark as sent."""
        self._show(send_id, again=True)

    def send_notice(self, send_id: int, text: str) -> None:
        """A short note about a send, by DM to its rep."""
        with self._session() as session:
            entry = self._entry(session, send_id)
        if entry is None:
            return
        about = f"{who(entry)} · {step_words(entry)}"
        message = Message(
            text=f"{text} ({about})",
            blocks=[context(f":information_source: {escape(text)}"), context(escape(about))],
        )
        self.client.chat_postMessage(channel=entry.send.rep_id, **message.as_kwargs())

    def mailbox_broken(self, send_id: int, text: str) -> None:
        """The rep's own mailbox refused the login: by DM, with a Reconnect button when OAuth can fix it."""
        with self._session() as session:
            entry = self._entry(session, send_id)
            if entry is None:
                return
            rep_id = entry.send.rep_id
            panel = mailbox_panel(session, self.settings, rep_id, self.clock.now())
        # Its own provider's link: a Google or Microsoft 365 mailbox is reconnected by consenting again.
        status = panel.status
        endpoints = oauth.ENDPOINTS.get(status.provider) if status is not None and status.oauth else None
        reconnect = next((link for link in panel.links if endpoints and link[0] == endpoints.path), None)
        message = mailbox_broken_message(text, f"{who(entry)} · {step_words(entry)}", reconnect)
        self.client.chat_postMessage(channel=rep_id, **message.as_kwargs())

    def digest(self, rep_id: str) -> bool:
        """Post the rep's digest; False, and nothing posted, when there is nothing to list."""
        with self._session() as session:
            now = self.clock.now()
            zone = self._zone(session, rep_id)
            agenda = agenda_for(session, rep_id, now, zone, tasks=DIGEST_TASKS, emails=DIGEST_EMAILS)
            if agenda.empty:
                return False
            message = digest_message(agenda, zone, now)
        self.client.chat_postMessage(channel=rep_id, **message.as_kwargs())
        logger.info("digest posted to %s: %s tasks, %s emails today", rep_id, agenda.task_count, agenda.email_count)
        return True

    def inbound(self, inbound_id: int) -> None:
        """DM the rep what came back (bot/slack/blocks/replies.py); a line in the feed for replies and bounces."""
        with self._session() as session:
            inbound = session.get(Inbound, inbound_id)
            if inbound is None or inbound.send_id is None:
                return
            entry = self._entry(session, inbound.send_id)
            if entry is None:
                return
            zone = self._zone(session, entry.send.rep_id)
            mailbox = session.get(Mailbox, entry.send.rep_id)
            message = inbound_message(inbound, entry, zone, mailbox.provider if mailbox else None)
            line = feed_line(inbound, entry, self._rep_name(session, entry.send.rep_id))
        self.client.chat_postMessage(channel=entry.send.rep_id, unfurl_links=False, **message.as_kwargs())
        if line:
            self._feed([line])

    # --- what the task listeners use ----------------------------------------------------

    def redraw(self, send_id: int) -> Send | None:
        """Update the send's own message in place to show where it stands now."""
        with self._session() as session:
            shown = self._task_message(session, send_id)
        if shown is None:
            return None
        entry, message = shown
        if entry.send.slack_channel and entry.send.slack_ts:
            self._update(entry.send.slack_channel, entry.send.slack_ts, message, quiet=True)
        return entry.send

    def item(self, send_id: int) -> list[Block]:
        """The send as a list item (the digest, `/tasks`), to replace it in place."""
        with self._session() as session:
            zone = self._zone_of_send(session, send_id)
            entry = self._entry(session, send_id, zone)
            if entry is None:
                return []
            return item_blocks(entry, zone, self.clock.now())

    def publish_home(self, rep_id: str) -> None:
        """Draw the rep's Home tab from their agenda now."""
        with self._session() as session:
            now = self.clock.now()
            zone = self._zone(session, rep_id)
            agenda = agenda_for(session, rep_id, now, zone, tasks=HOME_TASKS, emails=HOME_EMAILS, replies=HOME_REPLIES)
            view = home_view(agenda, zone, now, mailbox_panel(session, self.settings, rep_id, now))
        self.client.views_publish(user_id=rep_id, view=view)

    # --- inside -----------------------------------------------------------------------

    def _session(self) -> Session:
        """For reading only; closed before any Slack call (on SQLite a transaction locks writers out)."""
        return Session(self.engine, expire_on_commit=False)

    def _zone(self, session: Session, rep_id: str) -> ZoneInfo:
        return zone_of(session, rep_id)

    def _zone_of_send(self, session: Session, send_id: int) -> ZoneInfo:
        send = session.get(Send, send_id)
        return self._zone(session, send.rep_id) if send is not None else ZoneInfo("UTC")

    def _rep_name(self, session: Session, rep_id: str) -> str:
        return rep_name(session.get(Rep, rep_id)) or rep_id

    def _entry(self, session: Session, send_id: int, zone: ZoneInfo | None = None) -> Entry | None:
        zone = zone or self._zone_of_send(session, send_id)
        return entries_for(session, [send_id], self.clock.now(), zone).get(send_id)

    def _task_message(self, session: Session, send_id: int) -> tuple[Entry, Message] | None:
        zone = self._zone_of_send(session, send_id)
        entry = self._entry(session, send_id, zone)
        if entry is None:
            logger.warning("send %s is gone; nothing to show", send_id)
            return None
        return entry, task_message(entry, zone, self.clock.now())

    def _post_own(self, send: Send, message: Message) -> None:
        """DM the rep and remember the message on the send, to update it in place later."""
        answer = self.client.chat_postMessage(channel=send.rep_id, **message.as_kwargs())
        channel, ts = answer["channel"], answer["ts"]
        with session_scope(self.engine) as session:
            session.execute(update(Send).where(col(Send.id) == send.id).values(slack_channel=channel, slack_ts=ts))
        logger.info("send %s shown to %s in %s", send.id, send.rep_id, channel)

    def _show(self, send_id: int, *, again: bool) -> Entry | None:
        """Draw a send's own message: updated where it is, posted when it has none.

        `again`: the news deserves a notification (a failure), so it is posted anew
        as well, and the old message is updated so its buttons show the same state.
        """
        with self._session() as session:
            shown = self._task_message(session, send_id)
        if shown is None:
            return None
        entry, message = shown
        send = entry.send
        if send.slack_channel and send.slack_ts:
            # quiet when posting anew: a deleted old message does not matter then
            self._update(send.slack_channel, send.slack_ts, message, quiet=again)
            if not again:
                return entry
        self._post_own(send, message)
        return entry

    def _update(self, channel: str, ts: str, message: Message, *, quiet: bool = False) -> None:
        try:
            self.client.chat_update(channel=channel, ts=ts, **message.as_kwargs())
        except SlackApiError as exc:
            # A deleted message must not stop a send from being recorded; a busy Slack
            # is told to the caller, who may come back later (bot/slack/notices.py).
            if not quiet or busy(exc):
                raise
            logger.warning("could not update message %s in %s: %s", ts, channel, exc.response.get("error"))

    def _feed(self, lines: list[str]) -> None:
        """The live feed: a channel Slack refuses is logged, never holds up tasks or emails."""
        channel = self.settings.feed_channel
        if not channel or not lines:
            return
        text = capped_lines([escape(line) for line in lines[:FEED_LINES]] + more(lines, FEED_LINES))
        try:
            self.client.chat_postMessage(channel=channel, text=text, unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            if busy(exc):
                raise
            logger.warning("could not post to the feed channel %s: %s", channel, exc.response.get("error"))


def mailbox_panel(session: Session, settings: Settings, rep_id: str, now: dt.datetime) -> Panel:
    """The rep's mailbox for the Home tab: its state, and fresh Connect links of the OAuth providers set up."""
    links = [(e.path, e.name, oauth.start_url(settings, e, rep_id, now)) for e in oauth.configured(settings)]
    via = "through the company relay" if settings.smtp_url else "into the outbox folder (no mail server is set up)"
    return Panel(mailboxes.status(session, rep_id, now), via, links)


def zone_of(session: Session, rep_id: str) -> ZoneInfo:
    """The rep's Slack time zone (as cached in the rep table), for times shown to them."""
    rep = session.get(Rep, rep_id)
    return rep_zone(session, rep) if rep is not None else ZoneInfo("UTC")


def more(lines: list[Any], limit: int) -> list[str]:
    return [f"and {len(lines) - limit} more"] if len(lines) > limit else []
