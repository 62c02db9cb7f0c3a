"""Email templates: Jinja2 in a sandbox, with strict undefined names.

A template may use the person's fields, the sending rep's (`sender.first_name`, ...)
and the custom person fields its campaign declares. Names are checked when a
campaign is imported; values are checked before an email goes out, so nothing is
ever sent half-filled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

PERSON_FIELDS = ("first_name", "last_name", "email", "company", "title")
SENDER_FIELDS = ("first_name", "last_name", "name", "email")
# The longest subject a campaign or a rep may write: what Slack's Edit dialog holds,
# and far from the 998 characters a header line may have.
MAX_SUBJECT = 250

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateProblem(ValueError):
    """A template that cannot be used; the message names the field or the line."""


class MissingFields(ValueError):
    """A template needs values this person (or rep) does not have."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        super().__init__(f"no value for {', '.join(self.names)}")


TOO_DEEP = "the template is nested too deeply"


@lru_cache(maxsize=512)
def _parse(source: str) -> nodes.Template:
    try:
        return _env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    except RecursionError:  # Jinja's parser recurses once per level of nesting
        raise TemplateProblem(TOO_DEEP) from None


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    _parse(source)  # a syntax error names its line
    try:
        return _env.from_string(source)
    except (RecursionError, SyntaxError):  # Python's own limits on the code Jinja generates
        raise TemplateProblem(TOO_DEEP) from None


@lru_cache(maxsize=512)
def fields_used(source: str) -> frozenset[str]:
    """The names a template reads from its person and rep: `company`, `sender.email`, ...

    Jinja's own analysis decides what a name is, so loop and `set` variables, macro
    parameters and Jinja's globals (`range`, `loop`, ...) are not fields.
    """
    tree = _parse(source)
    used = set(meta.find_undeclared_variables(tree))
    if "sender" in used:
        used.discard("sender")
        used.update(_sender_fields(tree))
    return frozenset(used)


def _sender_fields(tree: nodes.Template) -> set[str]:
    """`sender.email` or `sender["email"]` for each read of the rep; bare `sender` otherwise."""
    fields: set[str] = set()
    read_by_name: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if not (isinstance(target, nodes.Name) and target.name == "sender" and target.ctx == "load"):
            continue
        if isinstance(node, nodes.Getattr):
            fields.add(f"sender.{node.attr}")
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            fields.add(f"sender.{node.arg.value}")
        else:
            continue
        read_by_name.add(id(target))
    if any(n.name == "sender" and n.ctx == "load" and id(n) not in read_by_name for n in tree.find_all(nodes.Name)):
        fields.add("sender")  # the rep as a whole is not a field
    return fields


def allowed_fields(custom_fields: Iterable[str] = ()) -> frozenset[str]:
    return frozenset((*PERSON_FIELDS, *custom_fields, *(f"sender.{name}" for name in SENDER_FIELDS)))


def unknown_fields(source: str, custom_fields: Iterable[str] = ()) -> list[str]:
    """The names a template uses that it may not (raises TemplateProblem on bad syntax)."""
    _compiled(source)  # what cannot be compiled is refused now, not when an email is due
    return sorted(fields_used(source) - allowed_fields(custom_fields))


def _blank(value: object) -> bool:
    return value is None or not str(value).strip()


def render(source: str, values: Mapping[str, object]) -> str:
    """Fill a template from flat values (`company`, `sender.email`).

    A field without a value (missing, empty or only spaces) raises MissingFields
    naming every such field, so nothing goes out half-filled.
    """
    missing = [name for name in fields_used(source) if _blank(values.get(name))]
    if missing:
        raise MissingFields(missing)
    context: dict[str, object] = {}
    sender: dict[str, object] = {}
    for name, value in values.items():
        if name.startswith("sender."):
            sender[name.removeprefix("sender.")] = value
        else:
            context[name] = value
    context["sender"] = sender
    return _compiled(source).render(context)
