"""Helpers every Block Kit builder uses: messages with fallback text, capped lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
# A section's text may hold 3,000 characters; leave room for the "and N more" line.
MAX_SECTION_TEXT = 2900


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
        if len(self.blocks) > MAX_MESSAGE_BLOCKS:
            raise ValueError(f"a message has at most {MAX_MESSAGE_BLOCKS} blocks, not {len(self.blocks)}")

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for chat.postMessage, chat.update, respond()."""
        return {"text": escape(self.text), "blocks": [block.to_dict() for block in self.blocks]}


def capped(blocks: Sequence[Block], limit: int, more_text: str = "and {n} more") -> list[Block]:
    """At most `limit` blocks: a long list ends with one "and N more" line."""
    if len(blocks) <= limit:
        return list(blocks)
    kept = list(blocks[: limit - 1])
    return kept + [context(more_text.format(n=len(blocks) - len(kept)))]


def capped_lines(lines: Sequence[str], limit_chars: int = MAX_SECTION_TEXT, more_text: str = "and {n} more") -> str:
    """Lines joined for one text field, cut with "and N more" before Slack's size limit."""
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        rest = len(lines) - index
        tail = len(more_text.format(n=rest)) + 1 if rest > 1 else 0
        if used + len(line) + 1 + tail > limit_chars:
            return "\n".join(kept + [more_text.format(n=rest)])
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept)


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def escape(text: str) -> str:
    """Text shown as is in mrkdwn: Slack's three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def error_message(text: str) -> Message:
    """One clear sentence, shown privately."""
    return Message(text=text, blocks=[section(f":warning: {escape(text)}")])
