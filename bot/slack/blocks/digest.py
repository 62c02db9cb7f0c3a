"""The daily digest: one direct message with the rep's tasks and today's emails."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block, DividerBlock

from bot.services.agenda import Agenda
from bot.slack.blocks.common import Message, capped_lines, header, section
from bot.slack.blocks.home import plural
from bot.slack.blocks.tasks import email_line, items

DIGEST_TASKS = 15  # two blocks each: well under a message's 50
DIGEST_EMAILS = 30


def summary(agenda: Agenda) -> str:
    overdue = f" ({agenda.overdue} overdue)" if agenda.overdue else ""
    return (
        f"{plural(agenda.task_count, 'task')} waiting{overdue}, {plural(agenda.email_count, 'email')} going out today"
    )


def digest_message(agenda: Agenda, zone: ZoneInfo, now: dt.datetime) -> Message:
    """Queued and overdue tasks with their buttons, then today's planned emails (`agenda`: DIGEST_TASKS and DIGEST_EMAILS)."""
    day = now.astimezone(zone)
    blocks: list[Block] = [
        header(f"Your day, {day:%A} {day.day} {day:%B}"),
        section(summary(agenda)),
    ]
    if agenda.tasks:
        blocks.append(DividerBlock())
        more = "and {n} more tasks: see the Home tab"
        blocks += items(agenda.tasks, zone, now, limit=DIGEST_TASKS, total=agenda.task_count, more=more)
    if agenda.scheduled_today:
        lines = [email_line(e, zone) for e in agenda.scheduled_today[:DIGEST_EMAILS]]
        if agenda.email_count > len(lines):
            lines.append(f"and {agenda.email_count - len(lines)} more emails")
        blocks += [
            DividerBlock(),
            section(capped_lines(lines, more_text="and {n} more emails", head="*Going out today*")),
        ]
    return Message(text=f"Your day: {summary(agenda)}", blocks=blocks)
