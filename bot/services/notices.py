"""The durable queue of Slack notices: the `notice` table, posted by a poster under a lease.

A notice's way through the queue:

    waiting (next_at) --claim (lease)--> posting --Slack took it--> done
        --> Slack is busy or unreachable (429, 5xx, no connection) --> waiting again,
            at Retry-After or after a growing delay, never given up
        --> Slack refused it (channel_not_found, invalid_blocks...) --> waiting again,
            then done with its error after GIVE_UP_AFTER tries (a task message: at
            once, as the scheduler posts it again later)

Only the oldest waiting notice of each rep is due, so a rep's notices are posted in
the order they were queued, whatever the number of posters. These functions take a
Session and `now` and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, update
from sqlmodel import Session, col, select

from bot.store import bulk
from bot.store.models import Notice, NoticeKind, Send

NOTICE = Notice.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models but does not declare it
# Slack busy or down: try again after these (the last one over and over), or at its Retry-After.
RETRY_DELAYS = (
    dt.timedelta(seconds=10),
    dt.timedelta(seconds=30),
    dt.timedelta(minutes=2),
    dt.timedelta(minutes=10),
    dt.timedelta(hours=1),
)
GIVE_UP_AFTER = 3  # tries of a notice Slack refuses for what it is (it will not get better)
DEFAULT_LEASE = dt.timedelta(minutes=5)
KEEP_DONE = dt.timedelta(days=7)  # done notices are kept this long, to read what Slack said


def enqueue(
    session: Session, kind: NoticeKind, send_ids: Sequence[int], now: dt.datetime, *, text: str | None = None
) -> None:
    """Queue a notice about these sends, one per rep (the feed message of a batch is still one)."""
    rep_of = dict(session.exec(select(Send.id, Send.rep_id).where(col(Send.id).in_(list(send_ids)))).all())
    reps: dict[str, list[int]] = {}
    for send_id in send_ids:
        if send_id in rep_of:  # a send that is gone has nothing to show
            reps.setdefault(rep_of[send_id], []).append(send_id)
    for rep_id, ids in reps.items():
        enqueue_for(session, kind, rep_id, ids, now, text=text)


def enqueue_for(
    session: Session,
    kind: NoticeKind,
    rep_id: str,
    send_ids: list[int],
    now: dt.datetime,
    *,
    text: str | None = None,
    inbound_id: int | None = None,
) -> None:
    """Queue a notice for the rep, unless the same one already waits.

    A notice is drawn when it is posted, so a second one just like a waiting one
    would show the same thing (the scheduler asks again for a task Slack has not
    shown after 15 minutes, which during an outage it has not).
    """
    waiting = session.exec(
        select(Notice).where(
            col(Notice.rep_id) == rep_id,
            col(Notice.kind) == kind.value,
            col(Notice.done_at).is_(None),
            or_(col(Notice.lease_until).is_(None), col(Notice.lease_until) < now),
        )
    )
    if any(
        notice.send_ids == send_ids and notice.text == text and notice.inbound_id == inbound_id for notice in waiting
    ):
        return
    notice = Notice(
        kind=kind.value, rep_id=rep_id, send_ids=send_ids, text=text, inbound_id=inbound_id, next_at=now, created_at=now
    )
    session.add(notice)
    session.flush()


def claim_due(
    session: Session, now: dt.datetime, worker_id: str, *, limit: int, lease: dt.timedelta = DEFAULT_LEASE
) -> list[Notice]:
    """Lease up to `limit` due notices to this poster, oldest first: at most one per rep, its oldest."""
    ids = bulk.claim_oldest(session, NOTICE, "rep_id", now=now, worker_id=worker_id, limit=limit, lease=lease)
    if not ids:
        return []
    query = select(Notice).where(col(Notice.id).in_(ids)).order_by(col(Notice.id))
    return list(session.exec(query.execution_options(populate_existing=True)))


def posted(session: Session, notices: Sequence[Notice], now: dt.datetime) -> None:
    """Slack took these notices."""
    _set(session, notices, done_at=now, lease_until=None, last_error=None)


def release(session: Session, notices: Sequence[Notice]) -> None:
    """Give back claimed notices this poster will not get to (it stops its pass)."""
    _set(session, notices, lease_until=None, claimed_by=None)


def not_posted(
    session: Session, notice: Notice, now: dt.datetime, error: str, *, busy: bool, retry_after: float | None = None
) -> bool:
    """Slack did not take the notice: wait and try again, or give up on it; True when given up.

    `busy`: Slack was busy or unreachable, which passes; such a notice is never given up.
    """
    attempts = notice.attempts + 1
    # A task message is posted again by the scheduler, later (queue.REPOST_AFTER): not here too.
    if not busy and (attempts >= GIVE_UP_AFTER or notice.kind == NoticeKind.TASK_DUE):
        _set(session, [notice], attempts=attempts, done_at=now, lease_until=None, last_error=error)
        return True
    delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    if retry_after is not None:
        delay = dt.timedelta(seconds=retry_after)
    _set(session, [notice], attempts=attempts, next_at=now + delay, lease_until=None, last_error=error)
    return False


def prune(session: Session, now: dt.datetime) -> int:
    """Forget notices done more than KEEP_DONE ago; how many."""
    pruned = session.execute(delete(NOTICE).where(NOTICE.c.done_at < now - KEEP_DONE))
    # Session.execute is typed as returning Result; a DELETE's is a CursorResult
    return cast(CursorResult[Any], pruned).rowcount


def _set(session: Session, notices: Sequence[Notice], **values: object) -> None:
    if notices:
        session.execute(update(NOTICE).where(NOTICE.c.id.in_([notice.id for notice in notices])).values(**values))
