"""Locks that hold across workers until the transaction ends (PostgreSQL's advisory locks).

SQLite needs none: the bot begins every SQLite transaction with BEGIN IMMEDIATE
(bot/store/db.py), so writers already take turns.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session


def lock(session: Session, name: str) -> None:
    """Hold the lock called `name` until the session's transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
