"""The App Home tab, the rep's command center: tasks, today's emails, active campaigns."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block, DividerBlock
from slack_sdk.models.views import View

from bot.services.agenda import Agenda
from bot.slack.blocks.common import Message, capped_lines, context, header, section, shown, view
from bot.slack.blocks.mailbox import Panel, mailbox_section
from bot.slack.blocks.replies import REPLIES_SHOWN, week_lines
from bot.slack.blocks.tasks import NAME_CHARS, email_line, items

# Each task takes two blocks: 30 tasks leave room for everything else under 100.
HOME_TASKS = 10  # the next ones: Home is redrawn after every click; /tasks lists more
HOME_EMAILS = 40  # lines of one text block
HOME_CAMPAIGNS = 40
HOME_REPLIES = REPLIES_SHOWN


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else many or word + 's'}"


def home_view(agenda: Agenda, zone: ZoneInfo, now: dt.datetime, mailbox: Panel | None = None) -> View:
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

    blocks += [DividerBlock(), header("Replies this week")]
    if agenda.replies:
        blocks.append(section(week_lines(agenda.replies, zone)))
    else:
        blocks.append(
            context(
                "No replies in the last 7 days. Replies stop their campaign and reach you here and in your messages."
            )
        )

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
    blocks += [DividerBlock(), *mailbox_section(mailbox or Panel())]
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
