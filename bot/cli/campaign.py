"""`bot campaign import|export|list|show|preview|add`: campaigns as YAML files, and people, from a shell."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import itertools
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.cli import CommandError, Parser
from bot.cli.people_csv import read_people
from bot.clock import SystemClock
from bot.core.rules import Planned, RuleError
from bot.delivery.routes import smtputf8_refusal
from bot.services import campaigns, enrollments
from bot.services.campaign_file import MAX_FILE_BYTES, CampaignSpec, dump_campaign, parse_campaign
from bot.services.errors import ServiceError, UnknownCampaign
from bot.services.people import Invalid, PersonInput, check_people, parse_people
from bot.settings import load_settings
from bot.store.db import connect, session_scope
from bot.store.models import EnrollmentStatus, Rep

# People from a CSV file are added this many at a time (in one transaction): memory
# stays bounded however long the file is.
CSV_BATCH = 5000

Handler = Callable[[argparse.Namespace], int]


def register(commands: argparse._SubParsersAction) -> None:
    """Adds `bot campaign` and its actions."""
    parser = commands.add_parser("campaign", help="import, export, list, show and preview campaigns; add people")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=IntermixedParser)

    command = actions.add_parser("import", help="create or update a campaign from a YAML file")
    command.add_argument("file", metavar="FILE")
    command.add_argument("--owner", required=True, metavar="SLACK_USER_ID", help="the rep who owns the campaign")
    command.set_defaults(handler=import_command)

    command = actions.add_parser("export", help="print a campaign as YAML")
    command.add_argument("name", metavar="NAME")
    command.set_defaults(handler=export_command)

    command = actions.add_parser("list", help="list the campaigns")
    command.set_defaults(handler=list_command)

    command = actions.add_parser("preview", help="show when each step of a campaign would be due")
    command.add_argument("campaign", metavar="FILE_OR_NAME", help="a campaign file, or the name of a stored campaign")
    command.add_argument("--start", required=True, metavar="ISO8601", help="the launch moment, with its UTC offset")
    command.add_argument("--send-at", metavar="ISO8601", help="the rep's chosen first send-at, with its UTC offset")
    command.add_argument("--tz", metavar="ZONE", help="the person's own time zone (matters with send_in: recipient)")
    command.add_argument("--format", choices=("json", "table"), default="json")
    command.set_defaults(handler=preview_command)

    command = actions.add_parser("show", help="show a campaign's steps and its people per status")
    command.add_argument("name", metavar="NAME")
    command.set_defaults(handler=show_command)

    command = actions.add_parser(
        "add",
        help="add people to a campaign (launch it for them)",
        description='Adds people as /campaign add does in Slack: each given as an email or "Name <email>", '
        "or as the rows of a CSV file with a header row.",
    )
    command.add_argument("name", metavar="NAME")
    command.add_argument("people", nargs="*", metavar="PEOPLE", help='emails or "Name <email>"')
    command.add_argument(
        "--csv",
        metavar="FILE",
        help="a CSV file instead of PEOPLE: columns email, first_name, "
        "last_name, company, title, time_zone and the campaign's fields",
    )
    command.add_argument(
        "--rep", required=True, metavar="SLACK_USER_ID", help="the rep who adds them: emails go out in their name"
    )
    command.add_argument(
        "--send-at", metavar="ISO8601", help="when the first email goes out (required when step 1 is choose)"
    )
    command.set_defaults(handler=add_command)


class IntermixedParser(Parser):
    """Positionals after options too: `add NAME --rep U1 ada@example.com` (argparse alone gives
    a `*` positional only the words before the first option, and refuses the rest)."""

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixing:  # parse_known_intermixed_args parses through here, twice
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def one_line_errors(handler: Handler) -> Handler:
    """Service and rule errors become a CommandError: one line on stderr, exit 1."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (ServiceError, RuleError) as exc:
            raise CommandError(str(exc)) from None
        except SQLAlchemyError as exc:
            cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise CommandError(f"database error: {cause}") from None

    return run


@contextmanager
def database() -> Iterator[Session]:
    """One session (one transaction) on the database the settings name."""
    engine = connect(load_settings().database_url)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def read_campaign_file(path: str) -> CampaignSpec:
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # enough to know it is too large
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except OSError as exc:
        raise CommandError(f"{path}: cannot read it ({exc.strerror})") from None
    return parse_campaign(data, source=path)


@one_line_errors
def import_command(args: argparse.Namespace) -> int:
    spec = read_campaign_file(args.file)  # a bad file is refused before the database is opened
    with database() as session:
        result = campaigns.import_campaign(session, spec, args.owner, SystemClock().now())
        print(result.message)
    return 0


@one_line_errors
def export_command(args: argparse.Namespace) -> int:
    with database() as session:
        spec = campaigns.spec_of(session, campaigns.get_campaign(session, args.name))
        sys.stdout.write(dump_campaign(spec))
    return 0


@one_line_errors
def list_command(args: argparse.Namespace) -> int:
    with database() as session:
        rows = campaigns.list_campaigns(session)
        if not rows:
            print("no campaigns yet: add one with `bot campaign import FILE --owner SLACK_USER_ID`")
            return 0
        print(
            table(
                ("name", "owner", "version", "steps", "active"),
                [(c.name, c.owner_id, str(c.version), str(c.steps), str(c.active)) for c in rows],
            )
        )
    return 0


@one_line_errors
def preview_command(args: argparse.Namespace) -> int:
    start = instant(args.start, "--start")
    send_at = instant(args.send_at, "--send-at") if args.send_at is not None else None
    spec = preview_spec(args.campaign)
    planned = campaigns.preview(spec, start, send_at, args.tz)
    zone = campaigns.preview_zone(spec, args.tz)
    if args.format == "table":
        print(
            table(
                ("step", "day", "send", "kind", "due", "thread of"),
                [
                    (
                        str(p.position),
                        str(p.step.day),
                        p.step.send.value,
                        p.step.kind.value,
                        f"{p.due.astimezone(zone):%a %Y-%m-%d %H:%M %Z}",
                        f"step {p.thread_of}" if p.thread_of else "",
                    )
                    for p in planned
                ],
            )
        )
    else:
        print(json.dumps([preview_row(p, zone) for p in planned], indent=2))
    return 0


@one_line_errors
def show_command(args: argparse.Namespace) -> int:
    with database() as session:
        details = campaigns.campaign_details(session, campaigns.get_campaign(session, args.name))
    campaign = details.campaign
    settings = [f"time zone {campaign.timezone}", f"owner {campaign.owner_id}", f"version {campaign.version}"]
    if campaign.skip_weekends:
        settings.append("weekends skipped")
    if campaign.send_in == "recipient":
        settings.append("sent in each person's time zone")
    print(f"{campaign.name}: {', '.join(settings)}")
    print(
        table(
            ("step", "day", "send", "time", "subject"),
            [
                (
                    str(step.position),
                    str(step.day),
                    step.send,
                    f"{step.time:%H:%M}" if step.time else "",
                    step.subject or "(reply in thread)",
                )
                for step in details.steps
            ],
        )
    )
    print("people: " + ", ".join(f"{status.value} {details.counts[status.value]}" for status in EnrollmentStatus))
    for email, why in details.not_in_salesforce:
        print(f"not synced to Salesforce: {email}: {why}")
    return 0


@one_line_errors
def add_command(args: argparse.Namespace) -> int:
    if bool(args.people) == bool(args.csv):
        raise CommandError("give the people to add, or --csv FILE (one of the two)")
    send_at = instant(args.send_at, "--send-at") if args.send_at is not None else None
    now = SystemClock().now()
    with database() as session:
        campaign = campaigns.get_campaign(session, args.name)
        if session.get(Rep, args.rep) is None:
            raise CommandError(
                f"rep {args.rep} is not known: set their email with `bot rep set {args.rep} --email EMAIL --name NAME`"
                " (or they use the bot in Slack once)"
            )
        if args.csv:
            for _ in read_people(args.csv, campaign.fields):
                pass  # the whole file is checked before anyone is added
            batches: Iterable[tuple[list[PersonInput], list[Invalid]]] = (
                check_people(batch) for batch in batched(read_people(args.csv, campaign.fields), CSV_BATCH)
            )
        else:
            batches = [parse_people("\n".join(args.people))]
        counts: Counter[str] = Counter()
        seen: set[str] = set()  # an address given twice counts once, whichever batch it is in
        settings = load_settings()

        def refusal() -> str | None:
            return smtputf8_refusal(settings, session, args.rep)

        for people, invalid in batches:
            fresh = [person for person in people if person.email not in seen]
            seen.update(person.email for person in fresh)
            result = enrollments.add_people(
                session, campaign, args.rep, fresh, now=now, send_at=send_at, invalid=invalid, smtputf8=refusal
            )
            for line in result.lines:
                reason = f": {line.reason}" if line.outcome == "invalid" else ""
                print(f"{line.outcome.replace('_', ' ')}: {line.email_or_text}{reason}")
            counts.update(line.outcome for line in result.lines)
        print(
            f"{campaign.name}: {counts['added']} added, {counts['already_active']} already active, "
            f"{counts['invalid']} invalid."
        )
    return 0


def batched(items: Iterable[PersonInput], size: int) -> Iterator[list[PersonInput]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def preview_spec(file_or_name: str) -> CampaignSpec:
    """A campaign file if there is one at that path, else the stored campaign of that name."""
    if Path(file_or_name).is_file():
        return read_campaign_file(file_or_name)
    with database() as session:
        try:
            return campaigns.spec_of(session, campaigns.get_campaign(session, file_or_name))
        except UnknownCampaign:
            raise CommandError(f'"{file_or_name}" is neither a campaign file nor the name of a campaign') from None


def preview_row(planned: Planned, zone: dt.tzinfo) -> dict[str, object]:
    """One step of a preview as JSON: `due` carries the offset of the zone it is computed in."""
    return {
        "step": planned.position,
        "day": planned.step.day,
        "send": planned.step.send.value,
        "kind": planned.step.kind.value,
        "due": planned.due.astimezone(zone).isoformat(),
        "thread_of": planned.thread_of,
    }


def instant(value: str, option: str) -> dt.datetime:
    """An ISO 8601 date and time with a UTC offset (or Z); a naive one is refused."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f'{option} "{value}" is not an ISO 8601 date and time, like 2026-12-02T15:00:00+01:00'
        ) from None
    if parsed.utcoffset() is None:
        raise CommandError(f'{option} "{value}" has no UTC offset: add one, like +01:00 or Z')
    return parsed


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain columns, left-aligned, for a terminal."""
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (headers, *rows))
    return "\n".join(lines)
