"""Task messages, their buttons and states, and the Edit and Schedule modals.

One builder draws a send in every state, so a message is updated in place by drawing
it again: a queued task has its buttons; a sent, scheduled or skipped one says so
instead; a failed or uncertain email has "Send again" and "Mark as sent".

Every block of a send carries a block_id starting with `task-<send id>-`, so a list
(the digest, `/tasks`) can redraw one of its items without knowing the others.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Sequence
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DateTimePickerElement,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.core import rules
from bot.core.templates import MAX_SUBJECT
from bot.services.agenda import Entry
from bot.services.drafts import Draft, person_name
from bot.slack.blocks.common import MAX_SECTION_TEXT, Message, context, escape
from bot.store.models import Send, SendStatus

# Action ids (buttons) and callback ids (modals): the listeners register these.
SEND = "task_send"
EDIT = "task_edit"
SCHEDULE = "task_schedule"
SKIP = "task_skip"
SEND_AGAIN = "task_send_again"
MARK_SENT = "task_mark_sent"
OPEN_GMAIL = "task_open_gmail"
OPEN_OUTLOOK = "task_open_outlook"
LINKS = (OPEN_GMAIL, OPEN_OUTLOOK)

EDIT_VIEW = "task_edit_view"
SCHEDULE_VIEW = "task_schedule_view"
SUBJECT_BLOCK, BODY_BLOCK, WHEN_BLOCK = "subject", "body", "when"
INPUT = "value"  # the action_id of every modal input

MAX_URL = 3000  # Block Kit's limit on a button's url
MAX_INPUT = 3000  # a plain_text_input holds at most 3,000 characters

DraftOf = Callable[[Send], Draft]


def block_prefix(send_id: int) -> str:
    return f"task-{send_id}-"


# --- Words -----------------------------------------------------------------------


def day_and_time(at: dt.datetime, zone: ZoneInfo) -> str:
    """"Thu 3 Dec 08:30" in `zone`."""
    local = at.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def clock_time(at: dt.datetime, zone: ZoneInfo, now: dt.datetime) -> str:
    """"15:02" today, "Thu 3 Dec 15:02" another day (both in `zone`)."""
    local = at.astimezone(zone)
    return f"{local:%H:%M}" if local.date() == now.astimezone(zone).date() else day_and_time(at, zone)


def step_words(entry: Entry, *, start: bool = False) -> str:
    """"step 2 of “Q4”" ("Step ..." to start a sentence)."""
    return f"{'Step' if start else 'step'} {entry.send.position} of “{entry.campaign.name}”"


def who(entry: Entry) -> str:
    return person_name(entry.person) or entry.person.email


def person_line(entry: Entry) -> str:
    parts = [f"*{escape(who(entry))}*", escape(entry.person.email)]
    if entry.person.company:
        parts.append(escape(entry.person.company))
    return " · ".join(parts)


def state_words(send: Send, zone: ZoneInfo, now: dt.datetime) -> str | None:
    """What became of a send, or None while it waits for the rep's decision as a task."""
    status = send.status
    if status == SendStatus.QUEUED:
        return None
    if status == SendStatus.PLANNED:
        return "Sending now…" if send.due_at <= now else f"Scheduled for {day_and_time(send.due_at, zone)}"
    if status == SendStatus.SENDING:
        return "Sending now…"
    if status == SendStatus.SENT:
        return f"Sent at {clock_time(send.sent_at or send.done_at or now, zone, now)}"
    if status == SendStatus.SKIPPED:
        return "Skipped"
    if status == SendStatus.FAILED:
        return f"Failed: {send.last_error or send.reason or 'the mail server refused it'}"
    if status == SendStatus.UNCERTAIN:
        return f"May not have gone out: {send.last_error or send.reason or 'the connection was lost'}"
    if status == SendStatus.PAUSED:
        return "Paused (the person is paused in this campaign)"
    if status == SendStatus.CANCELLED:
        return f"Cancelled: {send.reason}" if send.reason else "Cancelled"
    return str(status)


STATE_ICONS = {
    SendStatus.SENT: ":white_check_mark:",
    SendStatus.PLANNED: ":alarm_clock:",
    SendStatus.SENDING: ":outbox_tray:",
    SendStatus.SKIPPED: ":fast_forward:",
    SendStatus.FAILED: ":x:",
    SendStatus.UNCERTAIN: ":grey_question:",
    SendStatus.PAUSED: ":double_vertical_bar:",
    SendStatus.CANCELLED: ":no_entry_sign:",
}


# --- Links to mail clients ------------------------------------------------------


def _compose_url(base: str, fixed: dict[str, str], body_key: str, body: str) -> str:
    """`base` + query, with as much of the body as fits in MAX_URL (cut with "…")."""

    def url(text: str) -> str:
        return base + urlencode({**fixed, body_key: text}, quote_via=quote)

    whole = url(body)
    if len(whole) <= MAX_URL:
        return whole
    budget = MAX_URL - len(url("…"))
    kept = 0
    for index, char in enumerate(body):
        kept += len(quote(char, safe=""))
        if kept > budget:
            return url(body[:index] + "…")
    return whole  # pragma: no cover - the loop always cuts when the whole did not fit


def gmail_url(draft: Draft) -> str:
    """Gmail's compose window, filled in (the body cut to fit Block Kit's url limit)."""
    return _compose_url(
        "https://mail.google.com/mail/?",
        {"view": "cm", "fs": "1", "to": draft.to_email, "su": draft.subject},
        "body",
        draft.full_body,
    )


def outlook_url(draft: Draft) -> str:
    """Outlook on the web's compose window, filled in."""
    return _compose_url(
        "https://outlook.office.com/mail/deeplink/compose?",
        {"to": draft.to_email, "subject": draft.subject},
        "body",
        draft.full_body,
    )


# --- Blocks of one send ------------------------------------------------------------


def confirmed(text: str, action_id: str, value: str, question: str, explanation: str, deny: str) -> ButtonElement:
    """A button that asks before it acts (Slack shows the dialog)."""
    confirm = ConfirmObject(title=question, text=explanation, confirm=text, deny=deny)
    return ButtonElement(text=text, action_id=action_id, value=value, confirm=confirm)


def task_buttons(send_id: int, draft: Draft) -> list[ButtonElement]:
    value = str(send_id)
    return [
        ButtonElement(text="Send", action_id=SEND, value=value, style="primary"),
        ButtonElement(text="Edit", action_id=EDIT, value=value),
        ButtonElement(text="Schedule", action_id=SCHEDULE, value=value),
        confirmed(
            "Skip", SKIP, value, "Skip this step?",
            "No email goes out for this step; the campaign goes on with the next one.", "Keep it",
        ),
        ButtonElement(text="Open in Gmail", action_id=OPEN_GMAIL, url=gmail_url(draft)),
        ButtonElement(text="Open in Outlook", action_id=OPEN_OUTLOOK, url=outlook_url(draft)),
    ]


def retry_buttons(send_id: int) -> list[ButtonElement]:
    value = str(send_id)
    return [
        ButtonElement(text="Send again", action_id=SEND_AGAIN, value=value, style="primary"),
        confirmed(
            "Mark as sent", MARK_SENT, value, "Mark as sent?",
            "Only if you know it arrived (check your Sent folder): the campaign goes on as if it was sent.", "Cancel",
        ),
    ]


def controls(entry: Entry, draft_of: DraftOf, zone: ZoneInfo, now: dt.datetime) -> list[Block]:
    """The buttons of a send, or the words saying what became of it."""
    send = entry.send
    assert send.id is not None
    prefix = block_prefix(send.id)
    if send.status == SendStatus.QUEUED:
        return [ActionsBlock(block_id=prefix + "actions", elements=task_buttons(send.id, draft_of(send)))]
    words = state_words(send, zone, now) or ""
    icon = STATE_ICONS.get(SendStatus(send.status), "")
    state = ContextBlock(block_id=prefix + "state", elements=[MarkdownTextObject(text=f"{icon} {escape(words)}".strip())])
    if send.status in (SendStatus.FAILED, SendStatus.UNCERTAIN):
        return [state, ActionsBlock(block_id=prefix + "actions", elements=retry_buttons(send.id))]
    return [state]


def trouble(entry: Entry) -> str | None:
    """"An email to Ada Lovelace failed" (or may not have gone out); None otherwise."""
    if entry.send.status == SendStatus.FAILED:
        return f"An email to {who(entry)} failed"
    if entry.send.status == SendStatus.UNCERTAIN:
        return f"An email to {who(entry)} may not have gone out"
    return None


def headline(entry: Entry) -> str:
    problem = trouble(entry)
    if problem:
        icon = ":x:" if entry.send.status == SendStatus.FAILED else ":grey_question:"
        return f"{icon} *{escape(problem)}*"
    if entry.send.kind == rules.StepKind.TASK:
        return ":memo: *Email task*: send it yourself, or let me send it"
    return ":email: *Email*"


def clip(text: str, limit: int = MAX_SECTION_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(text: str) -> str:
    """A body shown as a quote, escaped; blank lines kept."""
    return "\n".join("> " + line if line else ">" for line in escape(text).splitlines()) or "> "


def email_blocks(entry: Entry, draft: Draft, zone: ZoneInfo) -> list[Block]:
    """Who, which step, and the email as it will go out."""
    prefix = block_prefix(entry.send.id)  # type: ignore[arg-type]
    when = f"due {day_and_time(entry.send.due_at, zone)}"
    if entry.overdue:
        when = f":warning: overdue since {day_and_time(entry.send.due_at, zone)}"
    blocks: list[Block] = [
        SectionBlock(block_id=prefix + "head", text=MarkdownTextObject(text=f"{headline(entry)}\n{person_line(entry)}")),
        ContextBlock(
            block_id=prefix + "step",
            elements=[MarkdownTextObject(text=f"{escape(step_words(entry, start=True))} · {when}")],
        ),
        SectionBlock(block_id=prefix + "subject", text=MarkdownTextObject(text=f"*Subject:* {escape(draft.subject)}")),
        SectionBlock(block_id=prefix + "body", text=MarkdownTextObject(text=clip(quoted(draft.full_body)))),
    ]
    notes = []
    if draft.missing and entry.send.status == SendStatus.QUEUED:
        notes.append(f":warning: No value for {escape(', '.join(draft.missing))}: edit the email before sending.")
    if draft.notice:
        notes.append(f":information_source: {escape(draft.notice)}")
    if notes:
        blocks.append(ContextBlock(block_id=prefix + "notes", elements=[MarkdownTextObject(text=n) for n in notes]))
    return blocks


def task_message(entry: Entry, draft: Draft, zone: ZoneInfo, now: dt.datetime) -> Message:
    """The direct message of one send: a task with its buttons, or what became of it."""
    blocks = email_blocks(entry, draft, zone) + controls(entry, lambda _: draft, zone, now)
    state = state_words(entry.send, zone, now)
    if entry.send.status == SendStatus.QUEUED:
        text = f"Email task: “{draft.subject}” to {who(entry)} ({step_words(entry)})"
    elif problem := trouble(entry):
        text = f"{problem}: {entry.send.last_error or entry.send.reason or 'no reason given'} ({step_words(entry)})"
    else:
        text = f"Email “{draft.subject}” to {who(entry)}: {state}"
    return Message(text=text, blocks=blocks)


def item_blocks(entry: Entry, draft_of: DraftOf, zone: ZoneInfo, now: dt.datetime) -> list[Block]:
    """A send as a short list item (App Home, `/tasks`, the digest): two or three blocks."""
    send = entry.send
    prefix = block_prefix(send.id)  # type: ignore[arg-type]
    draft = draft_of(send)
    overdue = " · :warning: *overdue*" if entry.overdue else ""
    text = (
        f"{person_line(entry)}{overdue}\n"
        f"{escape(step_words(entry, start=True))} · _{escape(clip(draft.subject, 200))}_"
    )
    return [SectionBlock(block_id=prefix + "head", text=MarkdownTextObject(text=text))] + controls(
        entry, lambda _: draft, zone, now
    )


def items(
    entries: Sequence[Entry], draft_of: DraftOf, zone: ZoneInfo, now: dt.datetime, *, limit: int, more: str
) -> list[Block]:
    """The first `limit` entries as items, then one "and N more" line."""
    blocks: list[Block] = []
    for entry in entries[:limit]:
        blocks += item_blocks(entry, draft_of, zone, now)
    if len(entries) > limit:
        blocks.append(context(more.format(n=len(entries) - limit)))
    return blocks


def email_line(entry: Entry, draft_of: DraftOf, zone: ZoneInfo) -> str:
    """One of today's planned emails on one line: time, person, step, subject."""
    subject = clip(draft_of(entry.send).subject, 120)
    local = entry.send.due_at.astimezone(zone)
    return f"`{local:%H:%M}` {escape(who(entry))} · {escape(step_words(entry))} · _{escape(subject)}_"


def replace_items(blocks: Sequence[dict[str, Any]], send_id: int, new: Sequence[Block]) -> list[dict[str, Any]]:
    """`blocks` (as Slack sent them back) with the send's item replaced by `new`, in place."""
    prefix = block_prefix(send_id)
    out: list[dict[str, Any]] = []
    placed = False
    for block in blocks:
        if str(block.get("block_id", "")).startswith(prefix):
            if not placed:
                out += [b.to_dict() for b in new]
                placed = True
            continue
        out.append(block)
    return out


# --- Modals ----------------------------------------------------------------------------


def metadata(send_id: int, **origin: Any) -> str:
    """What a modal remembers: its send and where it was opened from."""
    return json.dumps({"send": send_id, **{k: v for k, v in origin.items() if v}}, separators=(",", ":"))


def read_metadata(text: str) -> dict[str, Any]:
    data = json.loads(text or "{}")
    return data if isinstance(data, dict) else {}


def modal(callback_id: str, title: str, submit: str, private_metadata: str, blocks: Sequence[Block]) -> View:
    return View(
        type="modal",
        callback_id=callback_id,
        title=title,
        submit=submit,
        close="Cancel",
        private_metadata=private_metadata,
        blocks=list(blocks),
    )


def to_line(entry: Entry) -> ContextBlock:
    return context(f"To {escape(who(entry))} <{escape(entry.person.email)}> · {escape(step_words(entry))}")


def edit_modal(entry: Entry, draft: Draft, private_metadata: str) -> View:
    """Subject and body, filled with the email as it will go out now."""
    blocks: list[Block] = [
        to_line(entry),
        InputBlock(
            block_id=SUBJECT_BLOCK,
            label="Subject",
            element=PlainTextInputElement(action_id=INPUT, initial_value=draft.subject[:MAX_SUBJECT] or None, max_length=MAX_SUBJECT),
        ),
        InputBlock(
            block_id=BODY_BLOCK,
            label="Body",
            element=PlainTextInputElement(
                action_id=INPUT, initial_value=draft.body[:MAX_INPUT] or None, multiline=True, max_length=MAX_INPUT
            ),
        ),
    ]
    if draft.full_body != draft.body:
        blocks.append(context("The previous email is quoted under your text, as before."))
    return modal(EDIT_VIEW, "Edit email", "Save", private_metadata, blocks)


def default_schedule_time(now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Tomorrow at 09:00 in the rep's zone: a sensible first guess in the picker."""
    tomorrow = now.astimezone(zone).date() + dt.timedelta(days=1)
    return rules.wall_time(tomorrow, dt.time(9, 0), zone)


def schedule_modal(entry: Entry, private_metadata: str, now: dt.datetime, zone: ZoneInfo) -> View:
    """A date-time picker; Slack shows it in the rep's own Slack time zone."""
    initial = default_schedule_time(now, zone)
    return modal(
        SCHEDULE_VIEW,
        "Schedule email",
        "Schedule",
        private_metadata,
        [
            to_line(entry),
            InputBlock(
                block_id=WHEN_BLOCK,
                label="Send at",
                element=DateTimePickerElement(action_id=INPUT, initial_date_time=int(initial.timestamp())),
                hint=PlainTextObject(text=f"In your Slack time zone ({zone.key}). The email goes out by itself then."),
            ),
        ],
    )
