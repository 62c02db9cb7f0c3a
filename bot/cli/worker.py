"""`bot worker` and `bot tick`."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Adds the subcommand(s)."""
