"""Slack's documented Block Kit limits, checked on the JSON a builder sends.

Written apart from bot/slack/blocks/common.py on purpose: a test that reused the
code's own constants and counting would agree with any mistake in them. Lengths are
counted as Slack's clients count them, in UTF-16 code units (an emoji may count 2).
Sources: docs.slack.dev/reference/block-kit (blocks, block elements, composition
objects, views) and views.publish ("view_too_large": over 250 kb).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
VIEW_BYTES = 250_000
# Slack's own tokens in mrkdwn: a user mention and a date. Anything else in <...>
# (<!channel>, <!here>, <http://...|...>) came from data that was not escaped.
TOKEN = re.compile(r"<@[A-Z0-9]+>|<!date\^\d+\^[^|<>]*\|[^<>]*>")
ENTITY = re.compile(r"&(amp|lt|gt);")
QUOTE = re.compile(r"^>", re.MULTILINE)  # a line quoted, in mrkdwn


def slack_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def message_problems(payload: dict[str, Any]) -> list[str]:
    """Every limit a message (its `blocks`) breaks; empty when it fits."""
    blocks = payload.get("blocks") or []
    problems = [f"{len(blocks)} blocks in a message (at most {MESSAGE_BLOCKS})"] if len(blocks) > MESSAGE_BLOCKS else []
    return problems + _blocks(blocks)


def view_problems(view: dict[str, Any]) -> list[str]:
    """Every limit a modal or Home view breaks; empty when it fits."""
    problems: list[str] = []
    blocks = view.get("blocks") or []
    if not 1 <= len(blocks) <= VIEW_BLOCKS:
        problems.append(f"{len(blocks)} blocks in a view (1 to {VIEW_BLOCKS})")
    size = len(json.dumps(view))
    if size > VIEW_BYTES:
        problems.append(f"view of {size} bytes (at most {VIEW_BYTES})")
    for key in ("title", "submit", "close"):
        if key in view:
            problems += _plain(view[key], f"view {key}", 24)
    problems += _at_most(view.get("private_metadata"), "private_metadata", 3000)
    problems += _at_most(view.get("callback_id"), "callback_id", 255)
    return problems + _blocks(blocks)


def _blocks(blocks: list[dict[str, Any]]) -> list[str]:
    ids = [block["block_id"] for block in blocks if "block_id" in block]
    problems = [f"block_id {i!r} used twice" for i in sorted(set(ids)) if ids.count(i) > 1]
    return problems + [p for block in blocks for p in _block(block)]


def _at_most(text: Any, what: str, limit: int) -> list[str]:
    if text is None:
        return []
    if not isinstance(text, str):
        return [f"{what} is not a string: {text!r}"]
    return [f"{what}: {slack_len(text)} characters (at most {limit})"] if slack_len(text) > limit else []


def _text(obj: Any, what: str, limit: int = 3000) -> list[str]:
    """A text object: 1 to `limit` characters; mrkdwn without unescaped data."""
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        return [f"{what} is not a text object: {obj!r}"]
    text = obj.get("text", "")
    problems = _at_most(text, what, limit)
    if not text:
        problems.append(f"{what} is empty")
    if obj["type"] == "mrkdwn":
        problems += _mrkdwn(text, what)
    return problems


def _plain(obj: Any, what: str, limit: int) -> list[str]:
    problems = _text(obj, what, limit)
    if isinstance(obj, dict) and obj.get("type") != "plain_text":
        problems.append(f"{what} must be plain_text")
    return problems


def _mrkdwn(text: str, what: str) -> list[str]:
    rest = QUOTE.sub("", TOKEN.sub("", text))
    problems = []
    if "<" in rest or ">" in rest:
        problems.append(f"{what} has a raw < or > (unescaped data?): {rest[:200]!r}")
    if "&" in ENTITY.sub("", rest):
        problems.append(f"{what} has a raw & or a broken escape: {rest[:200]!r}")
    return problems


def _block(block: dict[str, Any]) -> Iterator[str]:
    kind = block.get("type")
    where = f"{kind} {block.get('block_id', '')}".strip()
    yield from _at_most(block.get("block_id"), f"{where} block_id", 255)
    if kind == "section":
        if "text" in block:
            yield from _text(block["text"], f"{where} text")
        fields = block.get("fields") or []
        if len(fields) > 10:
            yield f"{where}: {len(fields)} fields (at most 10)"
        for item in fields:
            yield from _text(item, f"{where} field", 2000)
        if "accessory" in block:
            yield from _element(block["accessory"], where)
    elif kind == "header":
        yield from _plain(block.get("text"), f"{where} text", 150)
    elif kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 10:
            yield f"{where}: {len(elements)} elements (1 to 10)"
        for element in elements:
            yield from _text(element, f"{where} element")
    elif kind == "actions":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 25:
            yield f"{where}: {len(elements)} elements (1 to 25)"
        for element in elements:
            yield from _element(element, where)
    elif kind == "input":
        yield from _plain(block.get("label"), f"{where} label", 2000)
        if "hint" in block:
            yield from _plain(block["hint"], f"{where} hint", 2000)
        yield from _element(block.get("element") or {}, where)
    elif kind != "divider":
        yield f"{where}: a block type this checker does not know"


def _element(element: dict[str, Any], where: str) -> Iterator[str]:
    kind = element.get("type")
    where = f"{where} {kind}"
    yield from _at_most(element.get("action_id"), f"{where} action_id", 255)
    if kind == "button":
        yield from _plain(element.get("text"), f"{where} text", 75)
        yield from _at_most(element.get("url"), f"{where} url", 3000)
        yield from _at_most(element.get("value"), f"{where} value", 2000)
        confirm = element.get("confirm")
        if confirm:
            yield from _plain(confirm.get("title"), f"{where} confirm title", 100)
            yield from _text(confirm.get("text"), f"{where} confirm text", 300)
            yield from _plain(confirm.get("confirm"), f"{where} confirm button", 30)
            yield from _plain(confirm.get("deny"), f"{where} deny button", 30)
    elif kind == "plain_text_input":
        max_length = element.get("max_length", 3000)
        if not 1 <= max_length <= 3000:
            yield f"{where}: max_length {max_length} (1 to 3000)"
        yield from _at_most(element.get("initial_value"), f"{where} initial_value", max_length)
        if "placeholder" in element:
            yield from _plain(element["placeholder"], f"{where} placeholder", 150)
    elif kind == "static_select":
        options = element.get("options") or []
        if not 1 <= len(options) <= 100:
            yield f"{where}: {len(options)} options (1 to 100)"
        for option in [*options, *([element["initial_option"]] if element.get("initial_option") else [])]:
            yield from _plain(option.get("text"), f"{where} option text", 75)
            yield from _at_most(option.get("value"), f"{where} option value", 150)
        if "placeholder" in element:
            yield from _plain(element["placeholder"], f"{where} placeholder", 150)
    elif kind not in ("datetimepicker", "datepicker", "timepicker"):
        yield f"{where}: an element type this checker does not know"
