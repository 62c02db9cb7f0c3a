"""A mailbox's connection limit, counted across every worker.

Each worker delivering through a mailbox keeps one row for it: the connections it
holds open (or was granted and is about to open) and how many it would use. A worker
is granted connections only under the mailbox's lock and only from what the other
workers' rows leave free, so together they never hold more than the limit. When
several want more than there is, each is granted a fair share (the limit divided
among them, rounded up) and a worker over its share closes connections as its emails
finish. A dead worker's row stops counting when its lease runs out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from bot.store import locks
from bot.store.models import ConnectionShare

SHARE = ConnectionShare.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models but does not declare it


def share(
    session: Session,
    mailbox: str,
    worker_id: str,
    *,
    limit: int,
    wanted: int,
    open_now: int,
    now: dt.datetime,
    lease: dt.timedelta,
) -> int:
    """How many connections `worker_id` may hold to `mailbox` now, out of `limit` for every worker.

    `open_now` are those it holds: they stay counted until it closes them, even past
    its share. The grant is stored for the other workers in the caller's transaction
    (the mailbox's lock is held until it commits).
    """
    locks.lock(session, f"mailbox:{mailbox}")
    session.execute(delete(SHARE).where(SHARE.c.mailbox == mailbox, SHARE.c.lease_until <= now))
    others = session.exec(
        select(ConnectionShare).where(ConnectionShare.mailbox == mailbox, ConnectionShare.worker_id != worker_id)
    ).all()
    free = limit - sum(row.connections for row in others)
    asking = [row for row in others if row.wanted > 0]
    fair = -(-limit // (len(asking) + 1))
    unasked = limit - sum(row.wanted for row in asking)  # what the others would leave even if they had all they want
    granted = max(0, min(wanted, free, max(fair, unasked)))
    mine = session.get(ConnectionShare, (mailbox, worker_id)) or ConnectionShare(mailbox=mailbox, worker_id=worker_id)
    mine.connections, mine.wanted, mine.lease_until = max(granted, open_now), wanted, now + lease
    session.add(mine)
    session.flush()
    return granted


def renew(session: Session, worker_id: str, now: dt.datetime, lease: dt.timedelta) -> None:
    """The worker is alive: its rows count for another lease."""
    session.execute(update(SHARE).where(SHARE.c.worker_id == worker_id).values(lease_until=now + lease))


def release(session: Session, worker_id: str, *, still_wanted: Collection[str] = ()) -> None:
    """The worker closed its connections (its pass ended).

    For the mailboxes in `still_wanted` (where it was granted none) its row stays, with
    no connections, so that the others leave it a share at its next pass.
    """
    session.execute(
        delete(SHARE).where(SHARE.c.worker_id == worker_id, col(SHARE.c.mailbox).not_in(list(still_wanted)))
    )
    if still_wanted:
        session.execute(
            update(SHARE)
            .where(SHARE.c.worker_id == worker_id, col(SHARE.c.mailbox).in_(list(still_wanted)))
            .values(connections=0)
        )
