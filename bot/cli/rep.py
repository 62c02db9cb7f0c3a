"""`bot rep set`: a rep known without Slack, to try the bot (or send as them) from a shell."""

from __future__ import annotations

import argparse
import datetime as dt

from email_validator import EmailNotValidError

from bot.cli import CommandError
from bot.cli.campaign import database, one_line_errors
from bot.clock import UTC
from bot.services.campaign_file import is_zone
from bot.services.campaigns import SLACK_USER_ID
from bot.services.people import normalize_email
from bot.store.models import Rep

# slack/profiles.py refreshes a rep's row from Slack when it is older than a day: a row
# set here is dated long ago, so the rep's Slack profile replaces it at their first use.
NOT_FROM_SLACK = dt.datetime(1970, 1, 1, tzinfo=UTC)


def register(commands: argparse._SubParsersAction) -> None:
    """Adds `bot rep set`."""
    parser = commands.add_parser("rep", help="set a rep's name, email and time zone without Slack")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    command = actions.add_parser(
        "set",
        help="create or update a rep",
        description="Emails go out in the rep's name from this address. Once the rep uses the bot in Slack, "
        "their Slack profile replaces what is set here.",
    )
    command.add_argument("rep", metavar="SLACK_USER_ID")
    command.add_argument("--email", required=True, metavar="EMAIL", help="the address emails are sent from")
    command.add_argument("--name", metavar="NAME", help='the full name, e.g. "Rita Rep" (kept when not given)')
    command.add_argument("--tz", metavar="ZONE", help="an IANA time zone, e.g. Europe/Stockholm (kept when not given)")
    command.set_defaults(handler=set_command)


@one_line_errors
def set_command(args: argparse.Namespace) -> int:
    if not SLACK_USER_ID.fullmatch(args.rep):
        raise CommandError(f'"{args.rep}" is not a Slack user ID like U0123ABCD')
    try:
        email = normalize_email(args.email)
    except EmailNotValidError as exc:
        raise CommandError(f'--email "{args.email}": {exc}') from None
    if args.tz is not None and not is_zone(args.tz):
        raise CommandError(f'--tz "{args.tz}" is not a known time zone: use an IANA name like Europe/Stockholm')
    with database() as session:
        rep = session.get(Rep, args.rep) or Rep(slack_user_id=args.rep)
        rep.email = email
        if args.name is not None:
            rep.name = " ".join(args.name.split())
            rep.first_name, _, rep.last_name = rep.name.partition(" ")
        if args.tz is not None:
            rep.timezone = args.tz
        rep.updated_at = NOT_FROM_SLACK
        session.add(rep)
        print(f"rep {rep.slack_user_id}: {rep.name or '(no name)'} <{rep.email}>, time zone {rep.timezone or '(none)'}")
    return 0
