"""Locks that hold across workers until the transaction ends (PostgreSQL's advisory locks).

SQLite needs none: the bot begins every SQLite transaction with BEGIN IMMEDIATE
(bot/store/db.py), so writers already take turns.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session


def row_locks(session: Session) -> bool:
    """Whether writers hold rows, not the whole database (PostgreSQL): then the order they take them in matters."""
    return session.get_bind().dialect.name == "postgresql"


def lock(session: Session, name: str) -> None:
    """Hold the lock called `name` until the session's transaction ends."""
    if row_locks(session):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
