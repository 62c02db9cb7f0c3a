"""Campaign files: a campaign written as YAML, read into a CampaignSpec and back.

Reading checks everything before anything is stored: the YAML itself (errors name the
line), the keys (unknown ones are refused), each value, the send-option rules
(`bot.core.rules.step_problems`) and the templates' field names. A bad file raises
CampaignFileError naming its *first* problem, so a command prints one line; fix it and
the next run names the next one.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bot.core import rules
from bot.core.inbound import OnReply
from bot.core.rules import DEFAULT_TASK_TIME, SendIn, SendOption
from bot.core.templates import BUILT_IN_FIELDS, MAX_SUBJECT, PERSON_FIELDS, TemplateProblem, fields_used, unknown_fields
from bot.services.errors import ServiceError

CAMPAIGN_KEYS = ("name", "timezone", "skip_weekends", "send_in", "task_time", "on_reply", "fields", "footer", "steps")
STEP_KEYS = ("day", "send", "time", "subject", "body")
HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


class CampaignFileError(ServiceError):
    """A campaign file that cannot be imported; str() names the file and the problem."""

    def __init__(
        self, problem: str, *, source: str = "<file>", line: int | None = None, step: int | None = None
    ) -> None:
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {problem}")
        self.problem = problem
        self.line = line
        self.step = step


@dataclass(frozen=True)
class StepSpec:
    """One step as the file writes it."""

    day: int
    send: SendOption
    time: dt.time | None = None
    subject: str | None = None
    body: str = ""

    def rule_step(self) -> rules.Step:
        return rules.Step(day=self.day, send=self.send, time=self.time)


@dataclass(frozen=True)
class CampaignSpec:
    """A whole campaign as the file writes it; `timezone` None means "the owner's"."""

    name: str
    timezone: str | None = None
    skip_weekends: bool = False
    send_in: SendIn = SendIn.CAMPAIGN
    task_time: dt.time = DEFAULT_TASK_TIME
    on_reply: OnReply = OnReply.STOP_PERSON
    fields: tuple[str, ...] = ()
    steps: tuple[StepSpec, ...] = field(default_factory=tuple)
    footer: str | None = None  # a template appended to every email's body (a postal address, the unsubscribe link)

    def rule_steps(self) -> list[rules.Step]:
        return [step.rule_step() for step in self.steps]


# --- reading ---------------------------------------------------------------------


# Limits that keep any file, however built, to bounded memory and time: a real
# campaign file is a few KB, nests four levels (steps, a step, its values) and holds
# a few hundred values.
MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 10
MAX_VALUES = 5_000


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that campaign files do not take (anchors, aliases, too much)."""


class _Loader(yaml.SafeLoader):
    """A SafeLoader that refuses repeated keys and keeps times like 10:30 as written.

    (YAML 1.1 reads an unquoted 10:30 as the base-60 number 630, but 09:30 as text.)
    Anchors and aliases are refused (nested aliases expand to billions of values), and
    so is nesting deeper than MAX_DEPTH or more than MAX_VALUES values.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._values = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if event.anchor is not None:  # an anchor (&name) or an alias (*name)
            self._refuse(
                "anchors and aliases (&name, *name) are not allowed in a campaign file; write the value out", event
            )
        self._values += 1
        if self._values > MAX_VALUES:
            self._refuse(f"more than {MAX_VALUES:,} values; a campaign file has far fewer", event)
        if self._depth == MAX_DEPTH:
            self._refuse(f"nested more than {MAX_DEPTH} levels deep; a campaign file needs 4", event)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    @staticmethod
    def _refuse(problem: str, event: Any) -> None:
        raise _Refused(None, None, problem, event.start_mark)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # 2026-02-30, a 5,000-digit number ...
            kind = node.tag.rpartition(":")[2]
            reason = str(exc).split(";")[0]
            raise _Refused(
                None, None, f"cannot read this {kind} ({reason}); put it in quotes if it is text", node.start_mark
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f'the key "{_clipped(key_node.value)}" appears twice', key_node.start_mark
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _number_or_clock(constructor: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def construct(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        if ":" in node.value:
            return node.value
        return constructor(loader, node)

    return construct


_Loader.add_constructor("tag:yaml.org,2002:int", _number_or_clock(yaml.SafeLoader.construct_yaml_int))
_Loader.add_constructor("tag:yaml.org,2002:float", _number_or_clock(yaml.SafeLoader.construct_yaml_float))


class _Problem(Exception):
    """One problem found while reading; turned into a CampaignFileError with the source."""

    def __init__(self, where: str, message: str, step: int | None = None) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.step = step


def parse_campaign(text: str | bytes, source: str = "<file>") -> CampaignSpec:
    """Read a campaign file (bytes must be UTF-8), or raise CampaignFileError naming its first problem."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise CampaignFileError(
            f"larger than {MAX_FILE_BYTES // 1024} KB, the most a campaign file may be", source=source
        )
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise CampaignFileError("not UTF-8 text; save the file as UTF-8", source=source, line=line) from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        if exc.context_mark is not None and (mark is None or mark.index >= len(text.rstrip())):
            mark = exc.context_mark  # "at the end of the file" helps less than where the open bracket was
        mark_line = mark.line + 1 if mark is not None else None
        problem = str(exc.problem or exc.context)  # as the f-string below would; _Refused always has a problem
        if not isinstance(exc, _Refused):
            problem = f"not valid YAML: {problem}"
        raise CampaignFileError(problem, source=source, line=mark_line) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        # For text, PyYAML gives the character as its code point.
        problem = f"not valid YAML: the character U+{exc.character:04X} is not allowed"
        raise CampaignFileError(problem, source=source, line=line) from None
    except yaml.YAMLError as exc:
        raise CampaignFileError(f"not valid YAML: {str(exc).splitlines()[0]}", source=source) from None
    try:
        return _campaign(data)
    except _Problem as problem:
        raise CampaignFileError(str(problem), source=source, step=problem.step) from None


def _campaign(data: Any) -> CampaignSpec:
    if not isinstance(data, dict):
        raise _Problem("", "a campaign file is a mapping of keys (name, timezone, steps, ...)")
    _refuse_unknown(data, CAMPAIGN_KEYS, "a campaign file")
    fields = _fields(data.get("fields"))
    spec = CampaignSpec(
        name=_name(data.get("name")),
        timezone=_timezone(data.get("timezone")),
        skip_weekends=_flag(data.get("skip_weekends", False), "skip_weekends"),
        send_in=_choice(data.get("send_in", SendIn.CAMPAIGN.value), SendIn, "send_in", "send_in"),
        task_time=_clock(data.get("task_time", "09:00"), "task_time"),
        on_reply=_choice(data.get("on_reply", OnReply.STOP_PERSON.value), OnReply, "on_reply", "on_reply"),
        fields=fields,
        steps=_steps(data.get("steps")),
        footer=_footer(data.get("footer"), fields),
    )
    for problem in rules.step_problems(spec.rule_steps()):
        raise _Problem(f"step {problem.position}, {problem.field}", problem.message, problem.position)
    for position, step in enumerate(spec.steps, start=1):
        for key, source in (("subject", step.subject), ("body", step.body)):
            if source is not None:
                _check_template(source, fields, position, key)
    return spec


def _refuse_unknown(data: dict[Any, Any], known: tuple[str, ...], what: str, step: int | None = None) -> None:
    for key in data:
        if key not in known:
            where = f"step {step}, {_clipped(key)}" if step is not None else _clipped(key)
            guess = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {guess[0]}? " if guess else ""
            raise _Problem(where, f"unknown key; {hint}{what} has only {', '.join(known)}", step)


def _shown(value: Any) -> str:
    """A value as the file would write it: "25:00", true, 540 (a long one cut, to keep one line)."""
    return _clipped(json.dumps(value, default=str, ensure_ascii=False))


def _clipped(value: Any, limit: int = 60) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _name(value: Any) -> str:
    if value is None:
        raise _Problem("name", "missing; every campaign needs a name")
    if not isinstance(value, str) or len(value.strip().splitlines()) != 1:
        raise _Problem("name", "must be one line of text, the campaign's name")
    return value.strip()


def _timezone(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_zone(value.strip()):
        raise _Problem("timezone", f"unknown time zone {_shown(value)}; use an IANA name like Europe/Stockholm")
    return value.strip()


def is_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder: OSError
        return False
    return True


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Problem(where, f"must be true or false, not {_shown(value)}")
    return value


def _choice(
    value: Any, kind: type[SendIn] | type[SendOption] | type[OnReply], where: str, what: str, step: int | None = None
) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise _Problem(where, f"{_shown(value)} is not a {what} option; use one of {allowed}", step) from None


def _clock(value: Any, where: str, step: int | None = None) -> dt.time:
    if isinstance(value, str) and HHMM.fullmatch(value.strip()):
        return dt.time.fromisoformat(value.strip())
    raise _Problem(where, f"{_shown(value)} is not a time of day; write HH:MM, from 00:00 to 23:59", step)


def _fields(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Problem("fields", "must be a list of custom person field names")
    names: list[str] = []
    for name in value:
        if not isinstance(name, str) or not name.isidentifier() or not _readable_name(name):
            raise _Problem(
                "fields", f"{_shown(name)} cannot be a field name; use letters, digits and _ (like deal_size)"
            )
        if name in PERSON_FIELDS or name in BUILT_IN_FIELDS or name == "sender":
            what = "a field the bot fills" if name in BUILT_IN_FIELDS else "a person field"
            raise _Problem("fields", f"{_shown(name)} is already {what}; custom fields need names of their own")
        if name in names:
            raise _Problem("fields", f"{_shown(name)} is listed twice")
        names.append(name)
    return tuple(names)


def _readable_name(name: str) -> bool:
    # Jinja reads some identifiers (true, none, and, ...) as something else than a name.
    try:
        return fields_used("{{ " + name + " }}") == {name}
    except TemplateProblem:
        return False


def _steps(value: Any) -> tuple[StepSpec, ...]:
    if value is None:
        raise _Problem("steps", "missing; a campaign needs at least one step")
    if not isinstance(value, list) or not value:
        raise _Problem("steps", "must be a list of at least one step (day, send, time, subject, body)")
    return tuple(_step(item, position) for position, item in enumerate(value, start=1))


def _step(data: Any, position: int) -> StepSpec:
    where = f"step {position}"
    if not isinstance(data, dict):
        raise _Problem(where, "must be a mapping of day, send, time, subject, body", position)
    _refuse_unknown(data, STEP_KEYS, "a step", position)
    for key in ("day", "send", "body"):
        if key not in data:
            raise _Problem(f"{where}, {key}", "missing", position)
    day = data["day"]
    if not isinstance(day, int) or isinstance(day, bool):
        raise _Problem(f"{where}, day", f"must be a whole number (1 for day 1), not {_shown(day)}", position)
    send = _choice(data["send"], SendOption, f"{where}, send", "send", position)
    time = data.get("time")
    subject = data.get("subject")
    if send is SendOption.THREAD and subject is not None:
        raise _Problem(
            f"{where}, subject", "a thread step replies with Re: and the previous subject; remove it", position
        )
    if send is not SendOption.THREAD:
        if subject is None:
            raise _Problem(f"{where}, subject", "missing; every step but a thread step needs one", position)
        if not isinstance(subject, str) or len(subject.strip().splitlines()) != 1:
            raise _Problem(f"{where}, subject", "must be one line of text", position)
        if len(subject.strip()) > MAX_SUBJECT:
            raise _Problem(
                f"{where}, subject",
                f"{len(subject.strip()):,} characters; a subject is at most {MAX_SUBJECT} (what Slack's Edit dialog holds)",
                position,
            )
    body = data["body"]
    if not isinstance(body, str) or not body.strip():
        raise _Problem(f"{where}, body", "must be the email's text", position)
    return StepSpec(
        day=day,
        send=send,
        time=None if time is None else _clock(time, f"{where}, time", position),
        subject=subject.strip() if isinstance(subject, str) else None,
        body=body,
    )


def _footer(value: Any, fields: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Problem("footer", "must be text (a template), like your postal address and {{ unsubscribe_url }}")
    _check_template(value, fields, None, "footer")
    return value


def _check_template(source: str, fields: tuple[str, ...], position: int | None, key: str) -> None:
    where = f"step {position}, {key}" if position is not None else key
    try:
        unknown = unknown_fields(source, fields)
    except TemplateProblem as exc:
        raise _Problem(where, str(exc), position) from None
    if unknown:
        names = ", ".join(f'"{name}"' for name in unknown)
        raise _Problem(
            where,
            f"unknown field {names}; use {', '.join(PERSON_FIELDS)}, sender.first_name (...), "
            "unsubscribe_url or a custom field declared under fields:",
            position,
        )


# --- writing ---------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


class _Quoted(str):
    """A string written in double quotes, so that a time reads back as text."""


_UNBLOCKABLE = re.compile(r"[\x85\u2028\u2029\r]|[ \t]\n|[ \t]$")


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # A literal block keeps a body readable, but it cannot carry the other characters
    # YAML reads as line breaks, nor a line that ends in white space: those are
    # written double-quoted, where YAML escapes them.
    if _UNBLOCKABLE.search(value):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)
_Dumper.add_representer(
    _Quoted, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')
)


def _hhmm(time: dt.time) -> _Quoted:
    return _Quoted(time.strftime("%H:%M"))


def dump_campaign(spec: CampaignSpec) -> str:
    """The campaign as a YAML file that parses back to the same spec."""
    data: dict[str, Any] = {"name": spec.name}
    if spec.timezone is not None:
        data["timezone"] = spec.timezone
    data.update(skip_weekends=spec.skip_weekends, send_in=spec.send_in.value, task_time=_hhmm(spec.task_time))
    data["on_reply"] = spec.on_reply.value
    if spec.fields:
        data["fields"] = list(spec.fields)
    if spec.footer is not None:
        data["footer"] = spec.footer
    steps = []
    for step in spec.steps:
        item: dict[str, Any] = {"day": step.day, "send": step.send.value}
        if step.time is not None:
            item["time"] = _hhmm(step.time)
        if step.subject is not None:
            item["subject"] = step.subject
        item["body"] = step.body
        steps.append(item)
    data["steps"] = steps
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000, default_flow_style=False)
