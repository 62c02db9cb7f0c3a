"""`bot campaign import|export|list|preview`."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Filled in by the campaign-file work."""
