"""The durable send queue: the `send` table, claimed by workers under a lease.

A send's way through the queue:

    planned --claim (lease)--> planned, leased --> sending (Message-ID stored, committed)
        --> the mail server's 250 --> sent (and the next step planned, one transaction)
        --> a temporary failure   --> planned again, later (growing delays), then failed
        --> a permanent failure   --> failed
        --> no answer to the body --> uncertain (never re-sent by itself)

A worker that dies leaves its rows behind: planned rows become claimable again when
the lease runs out; `sending` rows become `uncertain`, because the server may have
the email. Every transition checks that the row is still this worker's and in the
state expected, so two workers never hand the same email to a server.

These functions take a Session and `now` and never commit: the caller decides
what goes into one transaction (one commit per email on the hot path).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import bindparam, literal_column, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from bot.core.rules import StepKind
from bot.services import progress
from bot.store import bulk
from bot.store.models import Send, SendStatus

SEND = Send.__table__  # type: ignore[attr-defined]
# Temporary failures wait longer each time; one more failure after the last delay fails the send.
RETRY_DELAYS = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=15),
    dt.timedelta(minutes=60),
)
DEFAULT_LEASE = dt.timedelta(minutes=5)
LOST_WORKER = "the worker sending it stopped before the mail server answered: it may or may not have gone out"


def _status_is(status: SendStatus) -> Any:
    # A literal, not a bound parameter: both databases only match the partial
    # indexes ix_send_due / ix_send_lease against the same constant.
    return SEND.c.status == literal_column(f"'{status.value}'")


def claim_due(session: Session, now: dt.datetime, worker_id: str, *, limit: int, lease: dt.timedelta = DEFAULT_LEASE) -> list[int]:
    """Lease up to `limit` due sends to this worker; their ids. One indexed statement."""
    due = (
        select(SEND.c.id)
        .where(_status_is(SendStatus.PLANNED), SEND.c.due_at <= now, or_(SEND.c.lease_until.is_(None), SEND.c.lease_until < now))
        .order_by(SEND.c.due_at)
        .limit(limit)
    )
    return _lease(session, SEND.c.id.in_(bulk.skipping_locked(session, due).scalar_subquery()), now, worker_id, lease)


def claim(session: Session, send_ids: Sequence[int], now: dt.datetime, worker_id: str, *, lease: dt.timedelta = DEFAULT_LEASE) -> list[int]:
    """Lease these planned sends whatever their due time (a rep's Send now); the ones taken."""
    if not send_ids:
        return []
    query = select(SEND.c.id).where(
        SEND.c.id.in_(list(send_ids)),
        _status_is(SendStatus.PLANNED),
        or_(SEND.c.lease_until.is_(None), SEND.c.lease_until < now),
    )
    return _lease(session, SEND.c.id.in_(bulk.skipping_locked(session, query).scalar_subquery()), now, worker_id, lease)


def _lease(session: Session, which: Any, now: dt.datetime, worker_id: str, lease: dt.timedelta) -> list[int]:
    statement = (
        update(SEND).where(which).values(lease_until=now + lease, claimed_by=worker_id, updated_at=now).returning(SEND.c.id)
    )
    return list(session.execute(statement).scalars())


def release(session: Session, send_ids: Sequence[int], worker_id: str) -> None:
    """Give back claimed sends this worker will not get to (it is stopping)."""
    if send_ids:
        session.execute(
            update(SEND)
            .where(SEND.c.id.in_(list(send_ids)), SEND.c.claimed_by == worker_id, _status_is(SendStatus.PLANNED))
            .values(lease_until=None, claimed_by=None)
        )


def _move(session: Session, send: Send, worker_id: str, expected: Sequence[SendStatus], **values: Any) -> bool:
    """Change this worker's send if it is still in an expected state; False if it is not."""
    statement = _move_statement(tuple(expected), tuple(values))
    params = {"send_id": send.id, "worker_id": worker_id, **{f"new_{name}": value for name, value in values.items()}}
    moved = session.connection().execute(statement, params).rowcount == 1
    if moved:
        for name, value in values.items():
            # The row was written directly: tell the session so it does not write it again.
            set_committed_value(send, name, value)
    return moved


@functools.cache
def _move_statement(expected: tuple[SendStatus, ...], names: tuple[str, ...]) -> Any:
    # Built once per kind of move: on the hot path SQLAlchemy then skips compiling.
    return (
        update(SEND)
        .where(
            SEND.c.id == bindparam("send_id"),
            SEND.c.claimed_by == bindparam("worker_id"),
            SEND.c.status.in_([literal_column(f"'{status.value}'") for status in expected]),
        )
        .values({name: bindparam(f"new_{name}") for name in names})
    )


@dataclass(frozen=True)
class Handing:
    """What is stored of an email just before it is handed to the server."""

    send_id: int
    message_id: str
    subject: str
    body: str
    in_reply_to: str | None
    references: str | None  # space-separated Message-IDs


def mark_sending(
    session: Session, emails: Sequence[Handing], worker_id: str, now: dt.datetime, *, lease: dt.timedelta = DEFAULT_LEASE
) -> set[int]:
    """Record that these emails are about to be handed to the server, with their Message-IDs.

    Returns the ids that are still this worker's to send; the others had their lease
    run out and were taken by another worker, or their enrollment ended: skip them.
    """
    if not emails:
        return set()
    lease_until = now + lease
    rows = [
        {
            "send_id": email.send_id,
            "worker_id": worker_id,
            "lease_until": lease_until,
            "now": now,
            "new_message_id": email.message_id,
            "new_subject": email.subject,
            "new_body": email.body,
            "new_in_reply_to": email.in_reply_to,
            "new_references": email.references,
        }
        for email in emails
    ]
    connection = session.connection()
    # Usually every one is still this worker's: one statement for the lot.
    if connection.execute(_SENDING, rows).rowcount == len(rows):
        return {email.send_id for email in emails}
    # Some were not: the ones that moved are now in flight for this worker, with their Message-IDs.
    message_ids = {email.send_id: email.message_id for email in emails}
    in_flight = connection.execute(_IN_FLIGHT, {"send_ids": list(message_ids), "worker_id": worker_id})
    return {send_id for send_id, message_id in in_flight if message_ids[send_id] == message_id}


# Prebuilt, as the other statements of the hot path: building the expression and its
# cache key on every chunk costs more than SQLite's work.
_SENDING = (
    update(SEND)
    .where(SEND.c.id == bindparam("send_id"), SEND.c.claimed_by == bindparam("worker_id"), _status_is(SendStatus.PLANNED))
    .values(
        status=SendStatus.SENDING.value,
        lease_until=bindparam("lease_until"),
        attempts=SEND.c.attempts + 1,
        updated_at=bindparam("now"),
        **{name: bindparam(f"new_{name}") for name in ("message_id", "subject", "body", "in_reply_to", "references")},
    )
)
_IN_FLIGHT = select(SEND.c.id, SEND.c.message_id).where(
    SEND.c.id.in_(bindparam("send_ids", expanding=True)), SEND.c.claimed_by == bindparam("worker_id"), _status_is(SendStatus.SENDING)
)


def handed(send: Send, email: Handing, now: dt.datetime, lease: dt.timedelta = DEFAULT_LEASE) -> None:
    """Bring a session's copy of a send up to date after `mark_sending` (run elsewhere) moved it."""
    for name, value in dict(
        status=SendStatus.SENDING.value,
        lease_until=now + lease,
        attempts=send.attempts + 1,
        message_id=email.message_id,
        subject=email.subject,
        body=email.body,
        in_reply_to=email.in_reply_to,
        references=email.references,
        updated_at=now,
    ).items():
        set_committed_value(send, name, value)


def not_handed(session: Session, send: Send, worker_id: str, now: dt.datetime) -> bool:
    """A send marked `sending` that was never handed over (the worker is stopping): planned again."""
    return _move(
        session,
        send,
        worker_id,
        [SendStatus.SENDING],
        status=SendStatus.PLANNED.value,
        attempts=max(send.attempts - 1, 0),
        lease_until=None,
        claimed_by=None,
        updated_at=now,
    )


def mark_sent(session: Session, delivered: Sequence[tuple[Send, dt.datetime]], worker_id: str) -> list[Send]:
    """The server took these emails (each at its time): sent, and each enrollment's next step planned.

    Returns the sends recorded as sent. A send this worker's lease no longer covers
    but that is still in flight or uncertain is recorded as sent all the same: the
    server's 250 is the best evidence there is. The caller commits.

    The rows are written directly and the session's copies of the sends are left as
    they were (refreshing them costs more than the UPDATE on the hot path): a caller
    that reads them again must expire them first.
    """
    if not delivered:
        return []
    # One statement per instant: the scheduler records a chunk's emails at one.
    by_time: dict[dt.datetime, list[Send]] = {}
    for send, at in delivered:
        by_time.setdefault(at, []).append(send)
    connection = session.connection()
    kept: set[int] = set()
    for at, sends in by_time.items():
        params = {"send_ids": [send.id for send in sends], "worker_id": worker_id, "at": at}
        if connection.execute(_SENT, params).rowcount == len(sends):
            kept.update(send.id for send in sends)  # type: ignore[misc]
        else:  # some were taken over: find out which, one by one (those already updated match too)
            kept.update(send.id for send in sends if _sent_one(session, send, worker_id, at))  # type: ignore[misc]
    recorded = [(send, at) for send, at in delivered if send.id in kept]
    progress.complete_many(session, [progress.Completion(send, at) for send, at in recorded])
    return [send for send, _ in recorded]


_SENT_STATUSES = [literal_column(f"'{status.value}'") for status in (SendStatus.SENDING, SendStatus.UNCERTAIN)]
_SENT = (
    update(SEND)
    .where(
        SEND.c.id.in_(bindparam("send_ids", expanding=True)),
        SEND.c.claimed_by == bindparam("worker_id"),
        SEND.c.status.in_(_SENT_STATUSES),
    )
    .values(
        status=SendStatus.SENT.value,
        sent_at=bindparam("at"),
        done_at=bindparam("at"),
        lease_until=None,
        reason=None,
        last_error=None,
        updated_at=bindparam("at"),
    )
)


def _sent_one(session: Session, send: Send, worker_id: str, at: dt.datetime) -> bool:
    return _move(
        session,
        send,
        worker_id,
        [SendStatus.SENDING, SendStatus.SENT, SendStatus.UNCERTAIN],
        status=SendStatus.SENT.value,
        sent_at=at,
        done_at=at,
        lease_until=None,
        reason=None,
        last_error=None,
        updated_at=at,
    )


def retry_later(session: Session, send: Send, worker_id: str, now: dt.datetime, reason: str) -> bool:
    """A temporary failure: planned again after a growing delay, or failed when retries ran out.

    Returns True when the send has now failed for good (its rep must be told).
    """
    failures = send.attempts  # mark_sending counted this attempt
    if failures > len(RETRY_DELAYS):
        return mark_failed(session, send, worker_id, now, f"{reason} (gave up after {failures} attempts)")
    _move(
        session,
        send,
        worker_id,
        [SendStatus.SENDING, SendStatus.PLANNED],
        status=SendStatus.PLANNED.value,
        due_at=now + RETRY_DELAYS[failures - 1],
        lease_until=None,
        claimed_by=None,
        last_error=reason,
        updated_at=now,
    )
    return False


def mark_failed(session: Session, send: Send, worker_id: str, now: dt.datetime, reason: str) -> bool:
    """Failed for good; the enrollment waits for its rep. True if this worker moved it."""
    return _move(
        session,
        send,
        worker_id,
        [SendStatus.SENDING, SendStatus.PLANNED],
        status=SendStatus.FAILED.value,
        reason=reason,
        last_error=reason,
        lease_until=None,
        done_at=now,
        updated_at=now,
    )


def mark_uncertain(session: Session, send: Send, worker_id: str, now: dt.datetime, reason: str) -> bool:
    """The server may or may not have the email: never re-sent by itself; the rep decides."""
    return _move(
        session,
        send,
        worker_id,
        [SendStatus.SENDING],
        status=SendStatus.UNCERTAIN.value,
        reason=reason,
        last_error=reason,
        lease_until=None,
        updated_at=now,
    )


def make_task(session: Session, send: Send, worker_id: str, now: dt.datetime, reason: str) -> bool:
    """An email that cannot go out as it is (a field has no value) becomes a task for its rep."""
    return _move(
        session,
        send,
        worker_id,
        [SendStatus.PLANNED],
        kind=StepKind.TASK,
        status=SendStatus.QUEUED.value,
        reason=reason,
        lease_until=None,
        updated_at=now,
    )


def mark_queued(session: Session, send: Send, worker_id: str, now: dt.datetime) -> bool:
    """A task step became due: it now waits for its rep (Send, Edit, Schedule, Skip)."""
    return _move(session, send, worker_id, [SendStatus.PLANNED], status=SendStatus.QUEUED.value, lease_until=None, updated_at=now)


# Long enough that a post still retrying Slack's 429s is not made twice.
UNPOSTED_GRACE = dt.timedelta(minutes=15)


def unposted_tasks(session: Session, now: dt.datetime, *, grace: dt.timedelta = UNPOSTED_GRACE) -> list[int]:
    """Queued tasks whose Slack message never got through (Slack refused it past every retry).

    Each is claimed here (its clock starts again, so one worker posts it) and its id
    returned, to post again: a rep never silently misses a task.
    """
    statement = (
        update(SEND)
        .where(_status_is(SendStatus.QUEUED), SEND.c.slack_ts.is_(None), SEND.c.updated_at < now - grace)
        .values(updated_at=now)
        .returning(SEND.c.id)
    )
    return list(session.execute(statement).scalars())


def recover_lost(session: Session, now: dt.datetime) -> list[int]:
    """Emails in flight whose worker's lease ran out become uncertain; their ids (to tell reps)."""
    statement = (
        update(SEND)
        .where(_status_is(SendStatus.SENDING), SEND.c.lease_until < now)
        .values(status=SendStatus.UNCERTAIN.value, reason=LOST_WORKER, last_error=LOST_WORKER, lease_until=None, updated_at=now)
        .returning(SEND.c.id)
    )
    return list(session.execute(statement).scalars())
