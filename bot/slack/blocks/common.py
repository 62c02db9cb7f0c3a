"""Slack's limits and the helpers every Block Kit builder uses to keep to them.

Every builder goes through these, so each message, modal and Home view stays within
Slack's documented limits whatever the data: text is cut visibly ("…"), lists end
with "and N more", and nothing raises. slack_sdk's models check some limits too,
but only by raising: the cuts happen here, before.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

# Slack's documented limits (docs.slack.dev/reference/block-kit, views.publish),
# in characters as slack_len() counts them.
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 3000  # a text object: a section's text, a context element
MAX_HEADER = 150
MAX_TITLE = 24  # a modal's title, submit and close
MAX_LABEL = 2000  # an input's label and hint
MAX_BUTTON = 75
MAX_URL = 3000
MAX_VALUE = 2000
MAX_INPUT = 3000  # what a plain_text_input holds (its largest max_length)
MAX_METADATA = 3000  # a view's private_metadata
MAX_CONTEXT_ELEMENTS = 10
MAX_VIEW_BYTES = 250_000  # views.open/publish answer view_too_large above "250kb" (JSON as sent)

ELLIPSIS = "…"
MORE = "and {n} more"
# Characters that belong to the one before them: a cut never separates them.
JOINERS = frozenset("\u200d\ufe0e\ufe0f")


@dataclass
class Message:
    """A message: fallback `text` (notifications, screen readers) and its blocks.

    `text` is plain: it is escaped when sent, so data in it never mentions anyone.
    """

    text: str
    blocks: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.text:
            raise ValueError("every message needs fallback text")
        self.blocks = capped(self.blocks, MAX_MESSAGE_BLOCKS)

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for chat.postMessage, chat.update, respond()."""
        return {"text": escape(self.text), "blocks": [block.to_dict() for block in self.blocks]}


# --- Text -----------------------------------------------------------------------------


def slack_len(text: str) -> int:
    """Length as Slack's limits count it, in UTF-16 code units (an emoji may count 2).

    Never less than the number of characters, so what fits holds however Slack counts.
    """
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Text shown as is in mrkdwn: Slack's three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    """`text`, or as much of it as fits in `limit` followed by "…".

    The cut never splits an escape (`&amp;`), a `<...>` token (a mention, a date), or
    a letter from its accents: Slack would show the pieces.
    """
    if slack_len(text) <= limit:
        return text
    end = fitting(text, limit - slack_len(ELLIPSIS))
    while end > 0 and _belongs_to_previous(text[end]):
        end -= 1
    head = text[:end]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:] and len(head) - amp < len("&amp;"):
        head = head[:amp]
    opened = head.rfind("<")
    if opened != -1 and ">" not in head[opened:]:
        head = head[:opened]
    return head + ELLIPSIS


def fitting(text: str, limit: int) -> int:
    """How many characters of `text`, from its start, fit in `limit`."""
    used = 0
    for count, char in enumerate(text):
        used += 1 if ord(char) < 0x10000 else 2
        if used > limit:
            return count
    return len(text)


def _belongs_to_previous(char: str) -> bool:
    return bool(unicodedata.combining(char)) or char in JOINERS or 0x1F3FB <= ord(char) <= 0x1F3FF


def shown(text: str, limit: int) -> str:
    """Data shown in mrkdwn: escaped, then cut to `limit`."""
    return fit(escape(text), limit)


def capped_lines(
    lines: Sequence[str], limit_chars: int = MAX_TEXT, more_text: str = MORE, *, head: str | None = None
) -> str:
    """`head` (cut to half the room) and the lines, one per line, ending with "and N more" where they do not fit."""
    kept = [fit(head, limit_chars // 2)] if head is not None else []
    used = sum(slack_len(line) + 1 for line in kept)
    for index, line in enumerate(lines):
        rest = len(lines) - index
        tail = slack_len(more_text.format(n=rest)) + 1 if rest > 1 else 0
        if used + slack_len(line) + 1 + tail > limit_chars:
            return "\n".join(kept + [more_text.format(n=rest)])
        kept.append(line)
        used += slack_len(line) + 1
    return "\n".join(kept)


# --- Blocks and elements -----------------------------------------------------------------


def capped(blocks: Sequence[Block], limit: int, more_text: str = MORE) -> list[Block]:
    """At most `limit` blocks: a long list ends with one "and N more" line."""
    if len(blocks) <= limit:
        return list(blocks)
    kept = list(blocks[: limit - 1])
    return kept + [context(more_text.format(n=len(blocks) - len(kept)))]


def section(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(block_id=block_id, text=MarkdownTextObject(text=fit(text, MAX_TEXT)))


def context(*texts: str, block_id: str | None = None) -> ContextBlock:
    elements = [MarkdownTextObject(text=fit(text, MAX_TEXT)) for text in texts[:MAX_CONTEXT_ELEMENTS]]
    return ContextBlock(block_id=block_id, elements=elements)


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=fit(text, MAX_HEADER)))


def plain(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=fit(text, limit))


def button(
    text: str,
    action_id: str,
    *,
    value: str | None = None,
    url: str | None = None,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    """A button; its `value` and `url` are the builder's own and must fit (MAX_VALUE, MAX_URL)."""
    return ButtonElement(
        text=plain(text, MAX_BUTTON), action_id=action_id, value=value, url=url, style=style, confirm=confirm
    )


def view(
    type: str,
    blocks: Sequence[Block],
    *,
    callback_id: str | None = None,
    title: str | None = None,
    submit: str | None = None,
    close: str | None = None,
    private_metadata: str | None = None,
) -> View:
    """A modal or the Home tab: titles cut, at most 100 blocks.

    Its size (MAX_VIEW_BYTES) is the builder's to keep: each bounds what it shows
    (tests/unit/slack/test_blocks.py checks the worst case).
    """
    return View(
        type=type,
        callback_id=callback_id,
        title=plain(title, MAX_TITLE) if title else None,
        submit=plain(submit, MAX_TITLE) if submit else None,
        close=plain(close, MAX_TITLE) if close else None,
        private_metadata=private_metadata,
        blocks=capped(blocks, MAX_VIEW_BLOCKS),
    )


def error_message(text: str) -> Message:
    """One clear sentence, shown privately."""
    return Message(text=text, blocks=[section(f":warning: {escape(text)}")])
