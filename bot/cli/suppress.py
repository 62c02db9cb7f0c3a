"""`bot suppress list|add|remove`: the addresses no campaign of the company may email."""

from __future__ import annotations

import argparse

from bot.cli.campaign import database, one_line_errors
from bot.clock import SystemClock
from bot.services import suppression


def register(commands: argparse._SubParsersAction) -> None:
    """Adds `bot suppress list`, `add EMAIL` and `remove EMAIL`."""
    parser = commands.add_parser("suppress", help="addresses no campaign may email (unsubscribed, bounced)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every suppressed address, with why").set_defaults(handler=list_command)
    add = actions.add_parser("add", help="suppress an address: no campaign emails it again")
    add.add_argument("email", metavar="EMAIL")
    add.add_argument("--reason", default="added by an admin", help='why (default: "added by an admin")')
    add.set_defaults(handler=add_command)
    remove = actions.add_parser("remove", help="let campaigns email an address again")
    remove.add_argument("email", metavar="EMAIL")
    remove.set_defaults(handler=remove_command)


@one_line_errors
def list_command(args: argparse.Namespace) -> int:
    with database() as session:
        rows = suppression.all_suppressed(session)
        for row in rows:
            print(f"{row.email}\t{row.created_at:%Y-%m-%d %H:%M} UTC\t{row.reason}")
        if not rows:
            print("no suppressed addresses")
    return 0


@one_line_errors
def add_command(args: argparse.Namespace) -> int:
    with database() as session:
        suppression.suppress(session, args.email, " ".join(args.reason.split()), SystemClock().now())
    print(f"suppressed {args.email}: no campaign emails it again")
    return 0


@one_line_errors
def remove_command(args: argparse.Namespace) -> int:
    with database() as session:
        suppression.lift(session, args.email)
    print(f"{args.email} may be emailed again")
    return 0
