"""Email templates: Jinja2 in a sandbox, with strict undefined names.

A template may use the person's fields, the sending rep's (`sender.first_name`, ...)
and the custom person fields its campaign declares. Names are checked when a
campaign is imported; values are checked before an email goes out, so nothing is
ever sent half-filled.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

PERSON_FIELDS = ("first_name", "last_name", "email", "company", "title")
SENDER_FIELDS = ("first_name", "last_name", "name", "email")

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateProblem(ValueError):
    """A template that cannot be used; the message names the field or the line."""


class MissingFields(ValueError):
    """A template needs values this person (or rep) does not have."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        super().__init__(f"no value for {', '.join(self.names)}")


@lru_cache(maxsize=512)
def _parse(source: str) -> nodes.Template:
    try:
        return _env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error on line {exc.lineno}: {exc.message}") from None


@lru_cache(maxsize=512)
def fields_used(source: str) -> frozenset[str]:
    """The names a template reads: `company`, `sender.email`, ..."""
    tree = _parse(source)
    assigned = {node.name for node in tree.find_all(nodes.Name) if node.ctx in ("store", "param")}
    used: set[str] = set()
    sender_attributes = set()
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "sender":
            sender_attributes.add(id(node.node))
            used.add(f"sender.{node.attr}")
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in assigned and id(node) not in sender_attributes:
            used.add(node.name)
    return frozenset(used)


def allowed_fields(custom_fields: Iterable[str] = ()) -> frozenset[str]:
    return frozenset((*PERSON_FIELDS, *custom_fields, *(f"sender.{name}" for name in SENDER_FIELDS)))


def unknown_fields(source: str, custom_fields: Iterable[str] = ()) -> list[str]:
    """The names a template uses that it may not (raises TemplateProblem on bad syntax)."""
    return sorted(fields_used(source) - allowed_fields(custom_fields))


def render(source: str, values: Mapping[str, str | None]) -> str:
    """Fill a template from flat values (`company`, `sender.email`); refuse empty ones."""
    missing = [name for name in fields_used(source) if not values.get(name)]
    if missing:
        raise MissingFields(missing)
    context: dict[str, object] = {}
    sender: dict[str, str | None] = {}
    for name, value in values.items():
        if name.startswith("sender."):
            sender[name.removeprefix("sender.")] = value
        else:
            context[name] = value
    context["sender"] = sender
    return _env.from_string(source).render(context)
