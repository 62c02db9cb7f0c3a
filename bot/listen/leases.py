"""One worker at a time watches a mailbox: a lease row per mailbox, renewed as a heartbeat.

A worker that dies stops renewing; once `lease_until` has passed another takes it.
Functions take a Session and `now`, and never commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import CursorResult, or_, update
from sqlmodel import Session

from bot.store import bulk
from bot.store.models import MailboxLease

LEASE = MailboxLease.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models at runtime; its type doesn't declare it


def take(session: Session, mailbox: str, worker_id: str, now: dt.datetime, lease: dt.timedelta) -> bool:
    """Take (or renew) the lease on `mailbox`; False while another worker's lease runs."""
    row = {"mailbox": mailbox, "worker_id": worker_id, "lease_until": now + lease}
    if bulk.insert_unless_exists(session, LEASE, row, key=["mailbox"]):
        return True
    taken = session.execute(
        update(LEASE)
        .where(LEASE.c.mailbox == mailbox, or_(LEASE.c.worker_id == worker_id, LEASE.c.lease_until < now))
        .values(worker_id=worker_id, lease_until=now + lease)
    )
    return (
        cast(CursorResult[Any], taken).rowcount == 1
    )  # Session.execute is typed Result; an UPDATE's is a CursorResult


def release(session: Session, mailbox: str, worker_id: str, now: dt.datetime) -> None:
    """Let go of the lease: another worker may take the mailbox at once."""
    session.execute(
        update(LEASE)
        .where(LEASE.c.mailbox == mailbox, LEASE.c.worker_id == worker_id)
        .values(lease_until=now - dt.timedelta(seconds=1))
    )
