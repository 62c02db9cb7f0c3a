"""The App Home tab, the rep's command center: tasks, today's emails, active campaigns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock
from slack_sdk.models.views import View

from bot.services.agenda import Agenda
from bot.slack.blocks.common import (
    MAX_URL,
    Message,
    button,
    capped_lines,
    context,
    escape,
    fit,
    header,
    section,
    shown,
    view,
)
from bot.slack.blocks.tasks import NAME_CHARS, email_line, items

# Each task takes two blocks: 30 tasks leave room for everything else under 100.
HOME_TASKS = 30
HOME_EMAILS = 40  # lines of one text block
HOME_CAMPAIGNS = 40


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else many or word + 's'}"


CONNECT = "mailbox_connect"  # the action id prefix of the Connect / Reconnect link buttons (acked, nothing more)
ERROR_CHARS = 300


@dataclass(frozen=True)
class MailboxPanel:
    """The rep's own mailbox as the Home tab shows it: its state, and a Connect link per provider set up."""

    user: str | None = None  # the mailbox's address; None: the rep sends through the relay
    provider: str = ""  # as reps read it: "Google", "Microsoft 365", "other"
    broken: bool = False
    last_error: str | None = None
    connect: list[tuple[str, str, str]] = field(default_factory=list)  # (provider path, its name, link)


def mailbox_blocks(panel: MailboxPanel) -> list[Block]:
    """ "Your mailbox": connected, or broken with the server's words; then the Connect buttons."""
    if panel.user is None and not panel.connect:
        return []
    blocks: list[Block] = [DividerBlock(), header("Your mailbox")]
    if panel.user is None:
        blocks.append(
            context("Your emails go out through the company's mail server. Connect your own mailbox to send from it.")
        )
    elif panel.broken:
        error = shown(panel.last_error or "its login was refused", ERROR_CHARS)
        blocks.append(
            section(
                f":warning: *{shown(panel.user, 100)}* ({escape(panel.provider)}) is *broken*: {error}\n"
                "Your emails wait until it is connected again."
            )
        )
    else:
        blocks.append(
            section(f":white_check_mark: *{shown(panel.user, 100)}* ({escape(panel.provider)}) is connected.")
        )
    again = panel.user is not None
    buttons = [
        button(f"{'Reconnect' if again else 'Connect'} {name}", f"{CONNECT}_{path}", url=url)
        for path, name, url in panel.connect
        if len(url) <= MAX_URL
    ]
    if buttons:
        blocks.append(ActionsBlock(elements=buttons))
    return blocks


def mailbox_broken_message(text: str, about: str, reconnect: tuple[str, str, str] | None) -> Message:
    """The rep's mailbox refused the login: the server's words, and a Reconnect button where OAuth can fix it."""
    blocks: list[Block] = [
        section(f":warning: {shown(text, ERROR_CHARS)}\nYour emails wait until your mailbox is connected again."),
        context(shown(about, ERROR_CHARS)),
    ]
    if reconnect is not None and len(reconnect[2]) <= MAX_URL:
        path, name, url = reconnect
        blocks.append(
            ActionsBlock(elements=[button(f"Reconnect {name}", f"{CONNECT}_{path}", url=url, style="primary")])
        )
    else:
        blocks.append(context("Ask your admin to set it again (`bot mailbox set`)."))
    return Message(text=f"{fit(text, ERROR_CHARS)} ({fit(about, ERROR_CHARS)})", blocks=blocks)


def home_view(agenda: Agenda, zone: ZoneInfo, now: dt.datetime, mailbox: MailboxPanel | None = None) -> View:
    """The Home tab: queued tasks (overdue first) with their buttons, today's emails, campaigns, the mailbox.

    `agenda`: at least HOME_TASKS tasks and HOME_EMAILS emails where there are that many.
    """
    blocks: list[Block] = [header("Your email tasks")]
    if agenda.task_count:
        overdue = f", {agenda.overdue} overdue" if agenda.overdue else ""
        blocks.append(context(f"{plural(agenda.task_count, 'task')} waiting for you{overdue}"))
        blocks += items(agenda.tasks, zone, now, limit=HOME_TASKS, total=agenda.task_count, more="and {n} more tasks")
    else:
        blocks.append(section(":tada: Nothing waiting for you. New tasks show up here and in your messages from me."))

    blocks += [DividerBlock(), header("Going out today")]
    if agenda.scheduled_today:
        lines = [email_line(e, zone) for e in agenda.scheduled_today[:HOME_EMAILS]]
        lines += [f"and {agenda.email_count - len(lines)} more emails"] if agenda.email_count > len(lines) else []
        blocks.append(section(capped_lines(lines, more_text="and {n} more emails")))
    else:
        blocks.append(context("No emails planned for the rest of today."))

    blocks += [DividerBlock(), header("Your active campaigns")]
    if agenda.campaigns:
        lines = [
            f"*“{shown(c.name, NAME_CHARS)}”*: {plural(c.active, 'person', 'people')} active, {plural(c.queued, 'task')} queued"
            for c in agenda.campaigns[:HOME_CAMPAIGNS]
        ]
        if len(agenda.campaigns) > HOME_CAMPAIGNS:
            lines.append(f"and {len(agenda.campaigns) - HOME_CAMPAIGNS} more campaigns")
        blocks.append(section(capped_lines(lines, more_text="and {n} more campaigns")))
    else:
        blocks.append(context("No active campaigns. Add people with `/campaign add NAME PEOPLE`."))
    if mailbox is not None:
        blocks += mailbox_blocks(mailbox)
    blocks.append(context(f"Updated {now.astimezone(zone):%a %d %b %H:%M} ({zone.key})"))
    return view("home", blocks)


LIST_TASKS = 20  # `/tasks`: two blocks each, under a message's 50


def tasks_message(agenda: Agenda, zone: ZoneInfo, now: dt.datetime) -> Message:
    """`/tasks`: the rep's queued tasks, oldest first, each with its buttons (`agenda`: LIST_TASKS of them)."""
    if not agenda.task_count:
        return Message(
            text="No email tasks are waiting for you.", blocks=[section(":tada: No email tasks are waiting for you.")]
        )
    overdue = f", {agenda.overdue} overdue" if agenda.overdue else ""
    title = f"{plural(agenda.task_count, 'task')} waiting for you{overdue}"
    blocks: list[Block] = [section(f"*{title}*")]
    more = "and {n} more tasks: see the Home tab"
    blocks += items(agenda.tasks, zone, now, limit=LIST_TASKS, total=agenda.task_count, more=more)
    return Message(text=f"Your email tasks: {title}", blocks=blocks)
