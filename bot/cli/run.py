"""`bot serve`, `bot worker`, `bot tick`: running the bot and its scheduler."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Filled in by the Slack app (serve) and the scheduler (worker, tick)."""
