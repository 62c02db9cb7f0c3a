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
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    DateTimePickerElement,
    InputBlock,
    PlainTextInputElement,
)
from slack_sdk.models.views import View

from bot.core import rules
from bot.services.agenda import Entry
from bot.services.drafts import Draft, person_name
from bot.slack.blocks.common import (
    MAX_INPUT,
    MAX_LABEL,
    MAX_URL,
    Message,
    button,
    context,
    escape,
    fit,
    fitting,
    plain,
    section,
    shown,
    slack_len,
    view,
)
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

# How much of a piece of data a block shows (the email itself is never cut). A list
# item stays under ~5 KB however its data is written, so a list of 30 does under 150 KB.
NAME_CHARS = 100  # a person's name, email or company; a campaign's name in "step 2 of ..."
SUBJECT_CHARS = 1000  # in a task's own message
ITEM_SUBJECT_CHARS = 150  # in a list
REASON_CHARS = 300  # a mail server's reply, a cancel reason
# A list (App Home, `/tasks`, the digest) gives Gmail and Outlook links (up to 6,000
# characters a task) to its first tasks, while they fit in LINK_CHARS: a view must
# stay under 250 KB.
LINK_CHARS = 50_000
BODY_PARTS = 10  # a longer body is edited in parts of MAX_INPUT; more parts do not fit a modal


def block_prefix(send_id: int) -> str:
    return f"task-{send_id}-"


# --- Words -----------------------------------------------------------------------


def day_and_time(at: dt.datetime, zone: ZoneInfo) -> str:
    """ "Thu 3 Dec 08:30" in `zone`."""
    local = at.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def clock_time(at: dt.datetime, zone: ZoneInfo, now: dt.datetime) -> str:
    """ "15:02" today, "Thu 3 Dec 15:02" another day (both in `zone`)."""
    local = at.astimezone(zone)
    return f"{local:%H:%M}" if local.date() == now.astimezone(zone).date() else day_and_time(at, zone)


def step_words(entry: Entry, *, start: bool = False) -> str:
    """ "step 2 of “Q4”" ("Step ..." to start a sentence)."""
    return f"{'Step' if start else 'step'} {entry.send.position} of “{entry.campaign.name}”"


def who(entry: Entry) -> str:
    return person_name(entry.person) or entry.person.email


def person_line(entry: Entry) -> str:
    parts = [f"*{shown(who(entry), NAME_CHARS)}*", shown(entry.person.email, NAME_CHARS)]
    if entry.person.company:
        parts.append(shown(entry.person.company, NAME_CHARS))
    return " · ".join(parts)


def step_shown(entry: Entry, *, start: bool = False) -> str:
    """step_words() for mrkdwn: escaped, and a long campaign name cut."""
    return shown(step_words(entry, start=start), NAME_CHARS + 20)


def reason(text: str) -> str:
    """A server's reply or a cancel reason, cut to a readable length."""
    return fit(text, REASON_CHARS)


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
        return f"Failed: {reason(send.last_error or send.reason or 'the mail server refused it')}"
    if status == SendStatus.UNCERTAIN:
        return f"May not have gone out: {reason(send.last_error or send.reason or 'the connection was lost')}"
    if status == SendStatus.PAUSED:
        return "Paused (the person is paused in this campaign)"
    if status == SendStatus.CANCELLED:
        return f"Cancelled: {reason(send.reason)}" if send.reason else "Cancelled"
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


def _compose_url(base: str, fixed: dict[str, str], body_key: str, body: str) -> str | None:
    """`base` + query, with as much of the body as fits in MAX_URL (cut with "…");
    None when not even the address and subject fit."""

    def url(text: str) -> str:
        return base + urlencode({**fixed, body_key: text}, quote_via=quote)

    if len(body) <= MAX_URL and len(whole := url(body)) <= MAX_URL:
        return whole
    budget = MAX_URL - len(url("…"))
    if budget < 0:
        return None
    # The longest start of the body whose quoted form fits: each character takes at least one.
    low, high = 0, min(len(body), budget)
    while low < high:
        middle = (low + high + 1) // 2
        if len(quote(body[:middle], safe="")) <= budget:
            low = middle
        else:
            high = middle - 1
    return url(body[:low] + "…")


def gmail_url(draft: Draft) -> str | None:
    """Gmail's compose window, filled in (the body cut to fit Block Kit's url limit)."""
    return _compose_url(
        "https://mail.google.com/mail/?",
        {"view": "cm", "fs": "1", "to": draft.to_email, "su": draft.subject},
        "body",
        draft.full_body,
    )


def outlook_url(draft: Draft) -> str | None:
    """Outlook on the web's compose window, filled in."""
    return _compose_url(
        "https://outlook.office.com/mail/deeplink/compose?",
        {"to": draft.to_email, "subject": draft.subject},
        "body",
        draft.full_body,
    )


# --- Blocks of one send ------------------------------------------------------------


def confirmed(text: str, action_id: str, value: str, question: str, explanation: str, deny: str) -> ButtonElement:
    """A button that asks before it acts (Slack shows the dialog); its words are constants that fit."""
    confirm = ConfirmObject(title=question, text=explanation, confirm=text, deny=deny)
    return button(text, action_id, value=value, confirm=confirm)


Links = list[tuple[str, str, str]]  # words, action id and url of each Open in ... button


def task_buttons(send_id: int, draft: Draft | None, links: Links | None = None) -> list[ButtonElement]:
    """The task's buttons; `links` the Open in Gmail and Outlook ones (None: all that fit).

    Only Skip when the email cannot be built.
    """
    value = str(send_id)
    skip = confirmed(
        "Skip",
        SKIP,
        value,
        "Skip this step?",
        "No email goes out for this step; the campaign goes on with the next one.",
        "Keep it",
    )
    if draft is None:
        return [skip]
    buttons = [
        button("Send", SEND, value=value, style="primary"),
        button("Edit", EDIT, value=value),
        button("Schedule", SCHEDULE, value=value),
        skip,
    ]
    links = link_urls(draft) if links is None else links
    return buttons + [button(text, action_id, url=url) for text, action_id, url in links]


def link_urls(draft: Draft) -> Links:
    """The Open in Gmail and Open in Outlook buttons (those whose url fits)."""
    urls = (("Open in Gmail", OPEN_GMAIL, gmail_url(draft)), ("Open in Outlook", OPEN_OUTLOOK, outlook_url(draft)))
    return [(text, action_id, url) for text, action_id, url in urls if url]


def retry_buttons(send_id: int) -> list[ButtonElement]:
    value = str(send_id)
    return [
        button("Send again", SEND_AGAIN, value=value, style="primary"),
        confirmed(
            "Mark as sent",
            MARK_SENT,
            value,
            "Mark as sent?",
            "Only if you know it arrived (check your Sent folder): the campaign goes on as if it was sent.",
            "Cancel",
        ),
    ]


def controls(entry: Entry, zone: ZoneInfo, now: dt.datetime, *, links: Links | None = None) -> list[Block]:
    """The buttons of a send (see task_buttons() for `links`), or the words saying what became of it."""
    send = entry.send
    assert send.id is not None
    prefix = block_prefix(send.id)
    if send.status == SendStatus.QUEUED:
        buttons = task_buttons(send.id, entry.draft, links)
        return [ActionsBlock(block_id=prefix + "actions", elements=buttons)]
    words = state_words(send, zone, now) or ""
    icon = STATE_ICONS.get(SendStatus(send.status), "")
    state = context(f"{icon} {escape(words)}".strip(), block_id=prefix + "state")
    if send.status in (SendStatus.FAILED, SendStatus.UNCERTAIN):
        return [state, ActionsBlock(block_id=prefix + "actions", elements=retry_buttons(send.id))]
    return [state]


def trouble(entry: Entry, name: str | None = None) -> str | None:
    """ "An email to Ada Lovelace failed" (or may not have gone out); None otherwise."""
    name = who(entry) if name is None else name
    if entry.send.status == SendStatus.FAILED:
        return f"An email to {name} failed"
    if entry.send.status == SendStatus.UNCERTAIN:
        return f"An email to {name} may not have gone out"
    return None


def headline(entry: Entry) -> str:
    problem = trouble(entry, fit(who(entry), NAME_CHARS))
    if problem:
        icon = ":x:" if entry.send.status == SendStatus.FAILED else ":grey_question:"
        return f"{icon} *{escape(problem)}*"
    if entry.send.kind == rules.StepKind.TASK:
        return ":memo: *Email task*: send it yourself, or let me send it"
    return ":email: *Email*"


def quoted(text: str) -> str:
    """A body shown as a quote, escaped; blank lines kept."""
    return "\n".join("> " + line if line else ">" for line in escape(text).splitlines()) or "> "


def email_blocks(entry: Entry, zone: ZoneInfo) -> list[Block]:
    """Who, which step, and the email as it will go out (or why it cannot be built)."""
    prefix = block_prefix(entry.send.id)  # type: ignore[arg-type]
    when = f"due {day_and_time(entry.send.due_at, zone)}"
    if entry.overdue:
        when = f":warning: overdue since {day_and_time(entry.send.due_at, zone)}"
    blocks: list[Block] = [
        section(f"{headline(entry)}\n{person_line(entry)}", block_id=prefix + "head"),
        context(f"{step_shown(entry, start=True)} · {when}", block_id=prefix + "step"),
    ]
    draft = entry.draft
    if draft is None:
        to_do = " Skip this step to go on with the campaign." if entry.send.status == SendStatus.QUEUED else ""
        return blocks + [section(f":warning: {escape(problem_words(entry))}.{to_do}", block_id=prefix + "problem")]
    blocks += [
        section(f"*Subject:* {shown(draft.subject, SUBJECT_CHARS)}", block_id=prefix + "subject"),
        # Cut to fit, visibly: the email itself goes out whole.
        section(quoted(draft.full_body), block_id=prefix + "body"),
    ]
    notes = []
    if draft.missing and entry.send.status == SendStatus.QUEUED:
        missing = shown(", ".join(draft.missing), SUBJECT_CHARS)
        notes.append(f":warning: No value for {missing}: edit the email before sending.")
    if draft.notice:
        notes.append(f":information_source: {shown(draft.notice, SUBJECT_CHARS)}")
    if notes:
        blocks.append(context(*notes, block_id=prefix + "notes"))
    return blocks


def problem_words(entry: Entry) -> str:
    """Why the send's email cannot be built, as a sentence's start."""
    problem = entry.problem or "the email could not be built"
    return problem[:1].upper() + problem[1:]


def task_message(entry: Entry, zone: ZoneInfo, now: dt.datetime) -> Message:
    """The direct message of one send: a task with its buttons, or what became of it."""
    blocks = email_blocks(entry, zone) + controls(entry, zone, now)
    state = state_words(entry.send, zone, now)
    subject = f"“{entry.draft.subject}” " if entry.draft else ""
    if entry.send.status == SendStatus.QUEUED and entry.draft is None:
        text = f"Email task for {who(entry)} ({step_words(entry)}): {entry.problem}"
    elif entry.send.status == SendStatus.QUEUED:
        text = f"Email task: {subject}to {who(entry)} ({step_words(entry)})"
    elif problem := trouble(entry):
        text = f"{problem}: {entry.send.last_error or entry.send.reason or 'no reason given'} ({step_words(entry)})"
    else:
        text = f"Email {subject}to {who(entry)}: {state}"
    return Message(text=text, blocks=blocks)


def about(entry: Entry, limit: int) -> str:
    """The email's subject in a list, or why it cannot be built."""
    if entry.draft is None:
        return f":warning: {shown(problem_words(entry), limit)}"
    return f"_{shown(entry.draft.subject, limit)}_"


def item_blocks(entry: Entry, zone: ZoneInfo, now: dt.datetime, *, links: Links | None = None) -> list[Block]:
    """A send as a short list item (App Home, `/tasks`, the digest): two or three blocks."""
    send = entry.send
    prefix = block_prefix(send.id)  # type: ignore[arg-type]
    overdue = " · :warning: *overdue*" if entry.overdue else ""
    text = f"{person_line(entry)}{overdue}\n{step_shown(entry, start=True)} · {about(entry, ITEM_SUBJECT_CHARS)}"
    return [section(text, block_id=prefix + "head")] + controls(entry, zone, now, links=links)


def items(
    entries: Sequence[Entry], zone: ZoneInfo, now: dt.datetime, *, limit: int, total: int, more: str
) -> list[Block]:
    """The first `limit` entries as items, then one "and N more" line for the rest of `total`.

    The first tasks have their Gmail and Outlook links, while they fit in LINK_CHARS;
    a line after the list says which do not.
    """
    blocks: list[Block] = []
    link_chars = unlinked = 0
    listed = entries[:limit]
    for entry in listed:
        draft = entry.draft
        links = link_urls(draft) if draft is not None and entry.send.status == SendStatus.QUEUED else []
        size = sum(len(url) for _, _, url in links)
        if links and (unlinked or link_chars + size > LINK_CHARS):
            links, size, unlinked = [], 0, unlinked + 1
        link_chars += size
        blocks += item_blocks(entry, zone, now, links=links)
    if total > len(listed):
        blocks.append(context(more.format(n=total - len(listed))))
    if unlinked:
        blocks.append(
            context(
                f":link: Open in Gmail and Outlook are on the first {len(listed) - unlinked} tasks only, to keep this "
                "list within Slack's size limit: each task's own message has them."
            )
        )
    return blocks


def email_line(entry: Entry, zone: ZoneInfo) -> str:
    """One of today's planned emails on one line: time, person, step, subject."""
    local = entry.send.due_at.astimezone(zone)
    return f"`{local:%H:%M}` {shown(who(entry), NAME_CHARS)} · {step_shown(entry)} · {about(entry, 120)}"


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


def modal(callback_id: str, title: str, submit: str | None, private_metadata: str, blocks: Sequence[Block]) -> View:
    return view(
        "modal",
        blocks,
        callback_id=callback_id,
        title=title,
        submit=submit,
        close="Cancel" if submit else "Close",
        private_metadata=private_metadata,
    )


def to_line(entry: Entry) -> Block:
    address = shown(f"<{entry.person.email}>", NAME_CHARS)
    return context(f"To {shown(who(entry), NAME_CHARS)} {address} · {step_shown(entry)}")


def body_block(part: int) -> str:
    """The block_id of the body's `part` (0-based): "body", then "body-2", "body-3"..."""
    return BODY_BLOCK if part == 0 else f"{BODY_BLOCK}-{part + 1}"


def split_body(body: str, limit: int = MAX_INPUT) -> tuple[list[str], list[str]]:
    """The body in parts that each fit an input, cut at a line break where one is near,
    and the text that joins each part to the one before (join_body() undoes it)."""
    parts: list[str] = []
    joins: list[str] = []
    rest = body
    while slack_len(rest) > limit:
        end = fitting(rest, limit)
        newline = rest.rfind("\n", 1, end + 1)
        cut, join = (newline, "\n") if newline > 0 else (end, "")
        parts.append(rest[:cut])
        joins.append(join)
        rest = rest[cut + len(join) :]
    return parts + [rest], joins


def join_body(parts: Sequence[str], joins: Sequence[str]) -> str:
    return parts[0] + "".join(join + part for join, part in zip(joins, parts[1:]))


def edited_body(view: dict[str, Any]) -> str:
    """The body saved in the Edit modal (Slack's view_submission), its parts joined again."""
    values = view["state"]["values"]
    joins = read_metadata(view["private_metadata"]).get("joins") or []
    parts = [(values.get(body_block(i), {}).get(INPUT) or {}).get("value") or "" for i in range(len(joins) + 1)]
    return join_body(parts, joins)


def edit_modal(entry: Entry, draft: Draft, private_metadata: str) -> View:
    """Subject and body, filled with the email as it will go out now; a long body in parts.

    Text is never cut here (saving would keep the cut): an email too long for the
    modal gets one that says so instead.
    """
    parts, joins = split_body(draft.body)
    if len(parts) > BODY_PARTS or slack_len(draft.subject) > MAX_INPUT:
        return too_long_modal(entry, draft, private_metadata)
    if joins:
        private_metadata = json.dumps({**read_metadata(private_metadata), "joins": joins}, separators=(",", ":"))
    blocks: list[Block] = [
        to_line(entry),
        InputBlock(
            block_id=SUBJECT_BLOCK,
            label="Subject",
            element=PlainTextInputElement(action_id=INPUT, initial_value=draft.subject or None, max_length=MAX_INPUT),
        ),
    ]
    for index, part in enumerate(parts):
        blocks.append(
            InputBlock(
                block_id=body_block(index),
                label=f"Body, part {index + 1} of {len(parts)}" if joins else "Body",
                element=PlainTextInputElement(
                    action_id=INPUT, initial_value=part or None, multiline=True, max_length=MAX_INPUT
                ),
                optional=index > 0,
            )
        )
    if joins:
        blocks.append(
            context(
                f"A field holds {MAX_INPUT:,} characters, so the body is in {len(parts)} parts here: "
                "they are joined again, as one body, when you save."
            )
        )
    if draft.full_body != draft.body:
        blocks.append(context("The previous email is quoted under your text, as before."))
    return modal(EDIT_VIEW, "Edit email", "Save", private_metadata, blocks)


def too_long_modal(entry: Entry, draft: Draft, private_metadata: str) -> View:
    """Why the Edit modal cannot hold this email, and what to do instead."""
    what = (
        f"subject is {len(draft.subject):,} characters"
        if slack_len(draft.subject) > MAX_INPUT
        else f"body is {len(draft.body):,} characters"
    )
    text = (
        f":warning: This email's {what}: more than Slack's editor holds "
        f"({MAX_INPUT:,} for the subject, {BODY_PARTS * MAX_INPUT:,} for the body), so it cannot be edited here. "
        "Nothing is cut: *Send* sends it whole. To change it, edit the campaign's template, "
        "or *Skip* this task and write the email in your mail client."
    )
    return modal(EDIT_VIEW, "Edit email", None, private_metadata, [to_line(entry), section(text)])


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
                hint=plain(f"In your Slack time zone ({zone.key}). The email goes out by itself then.", MAX_LABEL),
            ),
        ],
    )
