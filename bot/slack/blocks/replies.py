"""What a rep sees when something comes back: a reply, an out-of-office, a bounce, an unsubscribe.

Safe for any data by construction: every value is escaped and cut (common.py), the
link and the button's value are the builder's own.
"""

from __future__ import annotations

from urllib.parse import quote
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import ActionsBlock

from bot.core.inbound import InboundKind
from bot.mail.mailboxes import Provider
from bot.services.agenda import Entry
from bot.slack.blocks.common import MAX_TEXT, Message, button, capped_lines, context, section, shown
from bot.slack.blocks.tasks import NAME_CHARS, step_shown, step_words, who
from bot.store.models import Inbound

GO_ON = "inbound_go_on"  # "Not a reply: go on"
OPEN = "inbound_open"  # the link to the message in the rep's mail client
EXCERPT_CHARS = 1200
REPLIES_SHOWN = 10  # the Home tab's replies of the week


def mail_link(provider: str | None, message_id: str | None) -> str | None:
    """A link that finds the message in the rep's mail client, where the client has one."""
    if not message_id:
        return None
    bare = message_id.strip("<>")
    if provider == Provider.GOOGLE:
        return f"https://mail.google.com/mail/u/0/#search/rfc822msgid%3A{quote(bare, safe='')}"
    if provider == Provider.MICROSOFT365:
        return f"https://outlook.office.com/mail/search?q={quote(bare, safe='')}"
    return None


def inbound_message(inbound: Inbound, entry: Entry, zone: ZoneInfo, provider: str | None) -> Message:
    """The direct message about one inbound message, by its kind."""
    kind = InboundKind(inbound.kind)
    about = f"{shown(who(entry), NAME_CHARS)} · {step_shown(entry)}"
    when = inbound.received_at.astimezone(zone).strftime("%a %d %b %H:%M")
    if kind is InboundKind.REPLY:
        stopped = len(inbound.ended)
        also = f" and {stopped - 1} colleague{'s' if stopped > 2 else ''} at the same company" if stopped > 1 else ""
        text = f"{who(entry)} replied to {step_words(entry)}"
        blocks = [
            section(
                f":incoming_envelope: *{shown(who(entry), NAME_CHARS)}* replied ({when}). Their campaign stopped{also}."
            ),
            context(about),
            section(_quoted(inbound.excerpt) or "_(no text)_"),
        ]
        buttons = [button("Not a reply: go on", GO_ON, value=str(inbound.id))]
        link = mail_link(provider, inbound.message_id)
        if link:
            buttons.insert(0, button("Open in your mail", OPEN, url=link))
        blocks.append(ActionsBlock(elements=buttons))
        return Message(text=text, blocks=blocks)
    if kind is InboundKind.AUTO_REPLY:
        if inbound.resume_at is not None:
            back = inbound.resume_at.astimezone(zone).strftime("%a %d %b %H:%M")
            head = f":palm_tree: *{shown(who(entry), NAME_CHARS)}* is out of office: their campaign is paused and goes on {back}."
            text = f"{who(entry)} is out of office: paused until {back}"
        else:
            head = f":palm_tree: *{shown(who(entry), NAME_CHARS)}* sent an automatic reply: their campaign goes on."
            text = f"{who(entry)} sent an automatic reply"
        return Message(
            text=text, blocks=[section(head), context(about), section(_quoted(inbound.excerpt) or "_(no text)_")]
        )
    if kind is InboundKind.BOUNCE:
        status = shown(inbound.status or "", 500)
        head = f":no_entry: An email to *{shown(entry.person.email, NAME_CHARS)}* bounced: the address is suppressed and the campaign stopped."
        return Message(
            text=f"An email to {entry.person.email} bounced",
            blocks=[section(head), context(about), context(status or "no status")],
        )
    head = f":wave: *{shown(who(entry), NAME_CHARS)}* asked to unsubscribe: the address is suppressed and the campaign stopped."
    return Message(text=f"{who(entry)} unsubscribed", blocks=[section(head), context(about)])


def gone_on(entry: Entry) -> Message:
    """The reply's message after "Not a reply: go on"."""
    text = f"Going on: {who(entry)} is back in {step_words(entry)}"
    return Message(
        text=text,
        blocks=[
            section(f":arrow_forward: Not a reply: *{shown(who(entry), NAME_CHARS)}*'s campaign goes on."),
            context(step_shown(entry)),
        ],
    )


def feed_line(inbound: Inbound, entry: Entry, rep: str) -> str | None:
    """The live feed's line (plain text) for a reply or a bounce; None for the rest."""
    if inbound.kind == InboundKind.REPLY:
        return f"Reply: {who(entry)} replied to {step_words(entry)} ({rep})"
    if inbound.kind == InboundKind.BOUNCE:
        return f"Bounce: {entry.person.email}, {step_words(entry)} ({rep}): {inbound.status or ''}".rstrip(": ")
    return None


def week_lines(replies: list[tuple[Inbound, str]], zone: ZoneInfo) -> str:
    """The Home tab's replies of the week: who, when, the first line."""
    lines = []
    for inbound, name in replies[:REPLIES_SHOWN]:
        first = next((line for line in inbound.excerpt.splitlines() if line.strip()), "")
        when = inbound.received_at.astimezone(zone).strftime("%a %d %b %H:%M")
        lines.append(f"*{shown(name, NAME_CHARS)}* · {when}: {shown(first, 120)}")
    return capped_lines(lines, more_text="and {n} more replies")


def _quoted(excerpt: str) -> str:
    lines = [f"> {shown(line, 300)}" if line.strip() else ">" for line in excerpt.splitlines()]
    return capped_lines(lines, min(MAX_TEXT, EXCERPT_CHARS)) if lines else ""
