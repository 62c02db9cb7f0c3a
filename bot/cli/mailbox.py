"""`bot mailbox set|list|remove`: connect a rep's own mailbox from a shell."""

from __future__ import annotations

import argparse
import getpass
import sys

from bot.cli import CommandError
from bot.cli.campaign import database, one_line_errors, table
from bot.clock import SystemClock
from bot.mail import credentials, mailboxes
from bot.mail.check import LoginFailed, check_imap, check_smtp
from bot.mail.mailboxes import Limits, Provider
from bot.mail.urls import ServerUrl, parse_imap_url, parse_smtp_url
from bot.settings import load_settings
from bot.store.models import Mailbox


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Adds `bot mailbox` and its three actions."""
    parser = commands.add_parser("mailbox", help="connect, list and remove the reps' own mailboxes")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    command = actions.add_parser(
        "set",
        help="connect (or replace) a rep's mailbox, after logging in to it",
        description="A password left out of the URLs is read from standard input, so that it never shows "
        "in a process list.",
    )
    command.add_argument("rep", metavar="SLACK_USER_ID")
    command.add_argument(
        "--smtp", required=True, metavar="URL", help="smtp://USER@host:587?starttls=true or smtps://USER@host"
    )
    command.add_argument("--imap", metavar="URL", help="imaps://USER@host or imap://USER@host?starttls=true")
    command.add_argument(
        "--provider",
        choices=[p.value for p in Provider],
        help="its limit presets (default: from the SMTP host, else other)",
    )
    command.add_argument("--per-minute", type=int, metavar="N", help="emails per minute (default: the preset)")
    command.add_argument("--per-day", type=int, metavar="N", help="emails per rolling 24 hours (default: the preset)")
    command.add_argument(
        "--max-connections", type=int, metavar="N", help="SMTP connections at once (default: the preset)"
    )
    command.add_argument("--no-check", action="store_true", help="save without logging in first")
    command.set_defaults(handler=set_command)

    command = actions.add_parser("list", help="list the reps' mailboxes (never their passwords)")
    command.set_defaults(handler=list_command)

    command = actions.add_parser("remove", help="forget a rep's mailbox and its password")
    command.add_argument("rep", metavar="SLACK_USER_ID")
    command.set_defaults(handler=remove_command)


@one_line_errors
def set_command(args: argparse.Namespace) -> int:
    key = load_settings().secret_key
    credentials.cipher(key)  # no key: refused before asking for a password
    smtp = server_url(parse_smtp_url, args.smtp, "--smtp")
    imap = server_url(parse_imap_url, args.imap, "--imap") if args.imap else None
    password = password_of(smtp, imap)
    if not args.no_check:
        smtp_login, imap_login = mailboxes.logins(smtp, imap, password)
        try:
            check_smtp(smtp_login)
            if imap_login is not None:
                check_imap(imap_login)
        except LoginFailed as exc:
            raise CommandError(f"{exc}; nothing was stored") from None
    provider = Provider(args.provider) if args.provider else None
    limits = Limits(per_minute=args.per_minute, per_day=args.per_day, max_connections=args.max_connections)
    with database() as session:
        mailbox = mailboxes.set_mailbox(
            session,
            args.rep,
            smtp=smtp,
            imap=imap,
            password=password,
            provider=provider,
            limits=limits,
            key=key,
            now=SystemClock().now(),
        )
        checked = "not checked" if args.no_check else "logged in"
        print(f"{mailbox.slack_user_id}: mailbox {mailbox.smtp_user} set ({checked}), provider {mailbox.provider}")
    return 0


@one_line_errors
def list_command(args: argparse.Namespace) -> int:
    with database() as session:
        rows = mailboxes.list_mailboxes(session)
        if not rows:
            print(
                "no mailboxes yet: reps send through the relay; add one with `bot mailbox set SLACK_USER_ID --smtp URL`"
            )
            return 0
        print(
            table(
                (
                    "rep",
                    "provider",
                    "user",
                    "smtp",
                    "imap",
                    "per minute",
                    "per day",
                    "connections",
                    "state",
                    "last error",
                ),
                [row(mailbox) for mailbox in rows],
            )
        )
    return 0


@one_line_errors
def remove_command(args: argparse.Namespace) -> int:
    with database() as session:
        mailboxes.remove_mailbox(session, args.rep)
        print(f"{args.rep}: mailbox removed; the rep's emails go through the relay")
    return 0


def server_url(parse, url: str, option: str) -> ServerUrl:  # type: ignore[no-untyped-def]
    try:
        return parse(url)
    except ValueError as exc:
        raise CommandError(f"{option} {exc}") from None


def password_of(smtp: ServerUrl, imap: ServerUrl | None) -> str:
    """The one password of the mailbox: from the URLs, else from standard input."""
    given = {url.password for url in (smtp, imap) if url is not None and url.password}
    if len(given) > 1:
        raise CommandError("--smtp and --imap name different passwords: a mailbox has one")
    if given:
        return given.pop()
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {smtp.username or 'the mailbox'}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CommandError("no password: leave it out of the URL and type it, or pipe it on standard input")
    return password


def row(mailbox: Mailbox) -> tuple[str, ...]:
    limits = mailboxes.limits_of(mailbox)
    imap = f"{mailbox.imap_host}:{mailbox.imap_port}" if mailbox.imap_host else "-"
    return (
        mailbox.slack_user_id,
        mailbox.provider,
        mailbox.smtp_user,
        f"{mailbox.smtp_host}:{mailbox.smtp_port}",
        imap,
        limit(mailbox.per_minute, limits.per_minute),
        limit(mailbox.per_day, limits.per_day),
        limit(mailbox.max_connections, limits.max_connections),
        mailbox.state,
        mailbox.last_error or "",
    )


def limit(own: int | None, in_force: int | None) -> str:
    if in_force is None:
        return "none"
    return f"{in_force:,}" if own is not None else f"{in_force:,} (preset)"
