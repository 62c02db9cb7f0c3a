"""What `/campaign` shows: usage, the campaign list, one campaign, add results, the launch modal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from slack_sdk.models.blocks import Block, DateTimePickerElement, DividerBlock, InputBlock
from slack_sdk.models.views import View

from bot.core.rules import SendIn, SendOption
from bot.services.campaigns import CampaignDetails, CampaignSummary
from bot.services.enrollments import AddResult
from bot.slack.blocks.common import (
    MAX_LABEL,
    Message,
    capped_lines,
    context,
    escape,
    header,
    plain,
    section,
    shown,
    view,
)
from bot.store.models import Step

LAUNCH_CALLBACK = "campaign_launch"
SEND_AT_BLOCK = "send_at"
SEND_AT_ACTION = "send_at"
# Counts `/campaign show` always lists; the rarer ones only when not zero.
SHOWN_COUNTS = ("active", "finished", "replied", "removed")
# How much of a piece of data a line shows.
NAME_CHARS = 200  # a campaign's name, a person as typed
LINE_CHARS = 300  # a step's subject, why an entry was not added

USAGE = "\n".join(
    [
        "*/campaign*: run email campaigns from Slack.",
        "• `/campaign list`: every campaign.",
        "• `/campaign show NAME`: its steps, and how many people are active, finished, replied, removed.",
        "• `/campaign add NAME PEOPLE`: add people, each an email or `Name &lt;email&gt;`, separated by spaces, "
        "commas or new lines. You own the people you add: emails go out in your name and their tasks come to you.",
        "• `/campaign remove NAME EMAIL`: take a person out of a campaign.",
        "• `/campaign pause NAME EMAIL` and `/campaign resume NAME EMAIL`.",
        '• A campaign name with spaces goes in double quotes: `/campaign add "Q4 outreach" '
        "Ada Lovelace &lt;ada@example.com&gt;, bob@example.com`",
        "• `/tasks`: your email tasks waiting to be sent.",
    ]
)


def usage(problem: str | None = None) -> Message:
    """How to use /campaign, after the `problem` with what was typed, if any."""
    blocks: list[Block] = [section(f":warning: {escape(problem)}")] if problem else []
    text = f"{problem} Type /campaign help for usage." if problem else "How to use /campaign"
    return Message(text=text, blocks=blocks + [section(USAGE)])


def campaign_list(summaries: Sequence[CampaignSummary]) -> Message:
    """Every campaign with its steps and active people."""
    if not summaries:
        text = "There are no campaigns yet. Import one with `bot campaign import FILE`."
        return Message(text=text, blocks=[section(text)])
    lines = [
        f"• *{shown(s.name, NAME_CHARS)}*: {_count(s.steps, 'step')}, {s.active} active (owner <@{s.owner_id}>)"
        for s in summaries
    ]
    text = f"{_count(len(summaries), 'campaign')}"
    return Message(text=text, blocks=[section(f"*Campaigns* ({len(summaries)})"), section(capped_lines(lines))])


def campaign_details(details: CampaignDetails) -> Message:
    """One campaign: its settings, its steps and its people counted by status."""
    campaign = details.campaign
    settings = [
        f"time zone {shown(campaign.timezone, NAME_CHARS)}",
        f"owner <@{campaign.owner_id}>",
        f"version {campaign.version}",
    ]
    if campaign.skip_weekends:
        settings.append("weekends skipped")
    if campaign.send_in == SendIn.RECIPIENT:
        settings.append("sent in each person's time zone")
    steps = [_step_line(step) for step in details.steps] or ["No steps."]
    counts = [f"{status} {details.counts.get(status, 0)}" for status in SHOWN_COUNTS]
    counts += [f"{status} {n}" for status, n in details.counts.items() if n and status not in SHOWN_COUNTS]
    text = f"{campaign.name}: {_count(len(details.steps), 'step')}; " + ", ".join(counts)
    return Message(
        text=text,
        blocks=[
            header(campaign.name),
            context(" · ".join(settings)),
            section(capped_lines(steps)),
            DividerBlock(),
            section("*People:* " + ", ".join(counts)),
        ],
    )


def _step_line(step: Step) -> str:
    when = f"{step.send} {step.time:%H:%M}" if step.time else step.send
    if step.subject:
        what = f"“{shown(step.subject, LINE_CHARS)}”"
    else:
        what = "reply in thread" if step.send == SendOption.THREAD else "no subject"
    return f"{step.position}. Day {step.day} · {when} · {what}"


def add_result(campaign_name: str, result: AddResult, send_at: dt.datetime | None = None) -> Message:
    """Who was added, who was already active, who was invalid and why."""
    name = shown(campaign_name, NAME_CHARS)
    added, active, invalid = result.added, result.already_active, result.invalid
    text = f"{campaign_name}: {len(added)} added, {len(active)} already active, {len(invalid)} invalid."
    blocks: list[Block] = []
    if added:
        lines = [shown(line.email_or_text, NAME_CHARS) for line in added]
        blocks.append(section(capped_lines(lines, head=f":white_check_mark: *Added to {name}* ({len(added)})")))
        if send_at is not None:
            blocks.append(context(f"First email {slack_date(send_at)}."))
    if active:
        lines = [shown(line.email_or_text, NAME_CHARS) for line in active]
        blocks.append(
            section(capped_lines(lines, head=f":information_source: *Already active in {name}* ({len(active)})"))
        )
    if invalid:
        lines = [f"`{shown(line.email_or_text, NAME_CHARS)}`: {shown(line.reason, LINE_CHARS)}" for line in invalid]
        blocks.append(section(capped_lines(lines, head=f":x: *Not added* ({len(invalid)})")))
    if not blocks:
        blocks.append(section(f"No one to add to {name}: give people as emails or `Name &lt;email&gt;`."))
        text = f"No one to add to {campaign_name}."
    return Message(text=text, blocks=blocks)


def done(text: str) -> Message:
    """A short confirmation."""
    return Message(text=text, blocks=[section(f":white_check_mark: {escape(text)}")])


def launch_modal(
    campaign_name: str,
    people: Sequence[str],
    *,
    metadata: str,
    preset: dt.datetime | None,
    hint: str,
) -> View:
    """The modal asking when the first email goes out (`preset` is the step's own time)."""
    head = f"Add {_count(len(people), 'person', 'people')} to *{shown(campaign_name, NAME_CHARS)}*:"
    listed = capped_lines([shown(person, NAME_CHARS) for person in people], head=head)
    picker = DateTimePickerElement(
        action_id=SEND_AT_ACTION,
        initial_date_time=int(preset.timestamp()) if preset else None,
    )
    return view(
        "modal",
        [
            section(listed),
            InputBlock(
                block_id=SEND_AT_BLOCK,
                label=plain("Send the first email at", MAX_LABEL),
                element=picker,
                hint=plain(hint, MAX_LABEL),
            ),
        ],
        callback_id=LAUNCH_CALLBACK,
        title="Add people",
        submit="Add",
        close="Cancel",
        private_metadata=metadata,
    )


def slack_date(at: dt.datetime) -> str:
    """A time each reader sees in their own time zone (the fallback in UTC)."""
    fallback = at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"
