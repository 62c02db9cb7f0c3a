"""The `bot` command: run the bot, run the scheduler, manage campaigns and mailboxes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from bot.settings import SettingsError
from bot.store.db import DatabaseUnavailable


class CommandError(Exception):
    """A failure to report as one line on stderr, never a traceback."""


class Parser(argparse.ArgumentParser):
    """Usage mistakes are one line on stderr too (subcommands inherit the class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from bot.cli import campaign, mailbox, rep, serve, suppress, worker

    parser = Parser(prog="bot", description="campaign-bot: sales email campaigns in Slack")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(commands)
    worker.register(commands)
    campaign.register(commands)
    rep.register(commands)
    mailbox.register(commands)
    suppress.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic's per-run chatter would bury a command's one-line error on stderr.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (CommandError, SettingsError, DatabaseUnavailable) as exc:
        print(f"bot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
