"""The durable send queue: the `send` table, claimed by workers under a lease.

A send's way through the queue (every move is in `SEND_MOVES`, bot/store/models.py):

    planned --claim (lease)--> planned, leased --> sending (Message-ID stored, committed)
        --> the mail server's 250 --> sent (and the next step planned, one transaction)
        --> a temporary failure   --> planned again, later (growing delays), then failed
        --> a permanent failure   --> failed
        --> no answer to the body --> uncertain (never re-sent by itself)
        --> not handed over (stopping; the mailbox is held) --> planned again, no try used

Limits are counted here too, in the database, so that they hold across workers: an
email marked `sending` records its mailbox and when (`handed_at`), and a mailbox's
room is what its limits allow minus what it handed over in each window. A rep whose
mailbox is full, slowed down or broken gets a hold: their sends are not claimed
until it ends.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnClause, and_, bindparam, exists, func, literal_column, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from bot.core.rules import StepKind
from bot.delivery.ports import Email, Limits
from bot.services import progress
from bot.store import bulk, locks
from bot.store.models import TASK_REPOSTS, Enrollment, EnrollmentStatus, Hold, Send, SendStatus, allowed_moves

SEND = Send.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models but does not declare it
ENROLLMENT = Enrollment.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models but does not declare it
HOLD = Hold.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models but does not declare it
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


def claim_due(
    session: Session,
    now: dt.datetime,
    worker_id: str,
    *,
    limit: int,
    lease: dt.timedelta = DEFAULT_LEASE,
    skip_reps: Iterable[str] = (),
) -> list[int]:
    """Lease up to `limit` due sends to this worker, but those of held reps and of `skip_reps`; their ids.

    One indexed statement.
    """
    held = select(HOLD.c.rep_id).where(or_(HOLD.c.until.is_(None), HOLD.c.until > now))
    due = (
        select(SEND.c.id)
        .where(
            _status_is(SendStatus.PLANNED),
            SEND.c.due_at <= now,
            or_(SEND.c.lease_until.is_(None), SEND.c.lease_until < now),
            SEND.c.rep_id.not_in(held),
        )
        .order_by(SEND.c.due_at, SEND.c.id)
        .limit(limit)
    )
    if skip_reps:
        due = due.where(SEND.c.rep_id.not_in(sorted(skip_reps)))
    return _lease(session, SEND.c.id.in_(bulk.skipping_locked(session, due).scalar_subquery()), now, worker_id, lease)


def claim(
    session: Session, send_ids: Sequence[int], now: dt.datetime, worker_id: str, *, lease: dt.timedelta = DEFAULT_LEASE
) -> list[int]:
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
        update(SEND)
        .where(which)
        .values(lease_until=now + lease, claimed_by=worker_id, updated_at=now)
        .returning(SEND.c.id)
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
    _allowed(expected, values.get("status"))
    statement = _move_statement(tuple(expected), tuple(values))
    params = {"send_id": send.id, "worker_id": worker_id, **{f"new_{name}": value for name, value in values.items()}}
    moved = session.connection().execute(statement, params).rowcount == 1
    if moved:
        for name, value in values.items():
            # The row was written directly: tell the session so it does not write it again.
            set_committed_value(send, name, value)
    return moved


def _allowed(expected: Sequence[SendStatus], status: SendStatus | str | None) -> None:
    if status is not None:
        target = SendStatus(status)  # staying in a state (recording again) is always allowed
        wrong = [state for state in expected if state != target and target not in allowed_moves(state)]
        assert not wrong, f"no move from {wrong} to {status} in SEND_MOVES"


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


def mark_sending(
    session: Session, emails: Sequence[Email], worker_id: str, now: dt.datetime, *, lease: dt.timedelta = DEFAULT_LEASE
) -> set[int]:
    """Record that these emails are about to be handed to the server, with their Message-IDs and mailbox.

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
            "new_mailbox": email.mailbox,
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
    .where(
        SEND.c.id == bindparam("send_id"),
        SEND.c.claimed_by == bindparam("worker_id"),
        _status_is(SendStatus.PLANNED),
        # The last look before hand-over: a reply, bounce or unsubscribe committed by now stops it.
        # One being recorded holds the send's row (enrollments._sends): this waits for it.
        exists().where(
            ENROLLMENT.c.id == SEND.c.enrollment_id,
            ENROLLMENT.c.status == literal_column(f"'{EnrollmentStatus.ACTIVE.value}'"),
        ),
    )
    .values(
        status=SendStatus.SENDING.value,
        lease_until=bindparam("lease_until"),
        attempts=SEND.c.attempts + 1,
        updated_at=bindparam("now"),
        handed_at=bindparam("now"),
        **{
            name: bindparam(f"new_{name}")
            for name in ("mailbox", "message_id", "subject", "body", "in_reply_to", "references")
        },
    )
)
_IN_FLIGHT = select(SEND.c.id, SEND.c.message_id).where(
    SEND.c.id.in_(bindparam("send_ids", expanding=True)),
    SEND.c.claimed_by == bindparam("worker_id"),
    _status_is(SendStatus.SENDING),
)


def handed(send: Send, email: Email, now: dt.datetime, lease: dt.timedelta = DEFAULT_LEASE) -> None:
    """Bring a session's copy of a send up to date after `mark_sending` moved its row."""
    for name, value in dict(
        status=SendStatus.SENDING.value,
        lease_until=now + lease,
        attempts=send.attempts + 1,
        mailbox=email.mailbox,
        handed_at=now,
        message_id=email.message_id,
        subject=email.subject,
        body=email.body,
        in_reply_to=email.in_reply_to,
        references=email.references,
        updated_at=now,
    ).items():
        set_committed_value(send, name, value)


def not_handed(session: Session, send: Send, worker_id: str, now: dt.datetime) -> bool:
    """A send marked `sending` that the server did not get (the worker is stopping, or its
    mailbox is held): planned again as it was, without using a try or the mailbox's limits."""
    return _move(
        session,
        send,
        worker_id,
        [SendStatus.SENDING],
        status=SendStatus.PLANNED.value,
        attempts=max(send.attempts - 1, 0),
        lease_until=None,
        claimed_by=None,
        mailbox=None,
        handed_at=None,
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
            kept.update(send.id for send in sends)  # type: ignore[misc]  # a stored row's id: int | None on the model, never None here
        else:  # some were taken over: find out which, one by one (those already updated match too)
            kept.update(send.id for send in sends if _sent_one(session, send, worker_id, at))  # type: ignore[misc]  # a stored row's id: int | None on the model, never None here
    recorded = [(send, at) for send, at in delivered if send.id in kept]
    progress.complete_many(session, [progress.Completion(send, at) for send, at in recorded])
    return [send for send, _ in recorded]


_SENT_STATUSES: list[ColumnClause[Any]] = [
    literal_column(f"'{status.value}'") for status in (SendStatus.SENDING, SendStatus.UNCERTAIN)
]
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
    return _move(
        session, send, worker_id, [SendStatus.PLANNED], status=SendStatus.QUEUED.value, lease_until=None, updated_at=now
    )


# A task message Slack refused past every retry is posted again after each of these
# gaps in turn (from the try before), then left to Home, `/tasks` and the digest. The
# first is long enough that a post still retrying Slack's 429s is not made twice.
REPOST_AFTER = (dt.timedelta(minutes=15), dt.timedelta(hours=1), dt.timedelta(hours=4))
assert len(REPOST_AFTER) == TASK_REPOSTS  # ix_send_unposted holds only tasks with a repost to come


def unposted_tasks(session: Session, now: dt.datetime) -> list[int]:
    """Queued tasks whose Slack message never got through and whose next repost is due.

    Each is claimed here (its clock starts again and its reposts count up, so one
    worker posts it) and its id returned, to post again.
    """
    statement = (
        update(SEND)
        .where(
            _status_is(SendStatus.QUEUED),
            SEND.c.slack_ts.is_(None),
            SEND.c.slack_reposts < TASK_REPOSTS,
            or_(
                *(and_(SEND.c.slack_reposts == n, SEND.c.updated_at < now - gap) for n, gap in enumerate(REPOST_AFTER))
            ),
        )
        .values(updated_at=now, slack_reposts=SEND.c.slack_reposts + 1)
        .returning(SEND.c.id)
    )
    return list(session.execute(statement).scalars())


def recover_lost(session: Session, now: dt.datetime) -> list[int]:
    """Emails in flight whose worker's lease ran out become uncertain; their ids (to tell reps)."""
    statement = (
        update(SEND)
        .where(_status_is(SendStatus.SENDING), SEND.c.lease_until < now)
        .values(
            status=SendStatus.UNCERTAIN.value,
            reason=LOST_WORKER,
            last_error=LOST_WORKER,
            lease_until=None,
            updated_at=now,
        )
        .returning(SEND.c.id)
    )
    return list(session.execute(statement).scalars())


# --- limits and holds -------------------------------------------------------------
MINUTE = dt.timedelta(minutes=1)
DAY = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Room:
    """What a mailbox's limits allow now: `free` emails (None: no limit), and when the rest may go."""

    free: int | None
    next_at: dt.datetime | None = None
    daily: bool = False  # the rolling 24-hour limit is the one that holds


def room(session: Session, mailbox: str, limits: Limits, now: dt.datetime, wanted: int) -> Room:
    """How many of `wanted` emails `mailbox` may hand over at `now`, counted across every worker.

    Takes the mailbox's lock until the caller commits, so that two workers counting
    at once cannot both take the last place: the caller marks what it takes as
    `sending` in the same transaction.
    """
    windows = [
        (allowed, span) for allowed, span in ((limits.per_minute, MINUTE), (limits.per_day, DAY)) if allowed is not None
    ]
    if not windows:
        return Room(None)
    locks.lock(session, f"mailbox:{mailbox}")
    free = wanted
    next_at: dt.datetime | None = None
    daily = False
    for allowed, span in windows:
        handed = _handed(mailbox, now - span)
        used = session.execute(select(func.count()).select_from(handed.subquery())).scalar_one()
        left = max(allowed - used, 0)
        if left >= wanted:
            continue
        # Once full, the window frees a place when the oldest email in it leaves it.
        oldest = session.execute(handed.order_by(SEND.c.handed_at).offset(max(used - allowed, 0)).limit(1)).scalar()
        at = (oldest or now) + span
        if next_at is None or at > next_at:
            next_at, daily = at, span == DAY
        free = min(free, left)
    return Room(free, next_at, daily=daily)


def handed_since(session: Session, mailbox: str, since: dt.datetime) -> int:
    """How many emails `mailbox` handed over after `since` (what its limits count)."""
    return int(session.execute(select(func.count()).select_from(_handed(mailbox, since).subquery())).scalar_one())


def _handed(mailbox: str, since: dt.datetime) -> Any:
    return select(SEND.c.handed_at).where(SEND.c.mailbox == mailbox, SEND.c.handed_at > since)


def hold(session: Session, rep_ids: Sequence[str], until: dt.datetime | None, reason: str, now: dt.datetime) -> None:
    """Hold these reps' sends until `until` (None: until lifted, e.g. a mailbox to reconnect)."""
    for rep_id in set(rep_ids):
        held = session.get(Hold, rep_id)
        if held is None:
            session.add(Hold(rep_id=rep_id, until=until, reason=reason, updated_at=now))
        else:
            held.until, held.reason, held.updated_at = until, reason, now
            session.add(held)
    session.flush()


def lift_hold(session: Session, rep_id: str) -> None:
    """The rep's sends go again (a mailbox reconnected, or removed)."""
    held = session.get(Hold, rep_id)
    if held is not None:
        session.delete(held)
        session.flush()


def held_reason(session: Session, rep_id: str) -> str | None:
    """Why the rep's sends are held, if they are."""
    held = session.get(Hold, rep_id)
    return held.reason if held is not None else None


def told_today(session: Session, rep_id: str, today: dt.date) -> bool:
    """Whether the rep was told today that a limit holds their emails; marks it told."""
    held = session.get(Hold, rep_id)
    if held is None or held.told_on == today:
        return held is not None
    held.told_on = today
    session.add(held)
    session.flush()
    return False


def waiting_for(session: Session, rep_id: str, now: dt.datetime) -> int:
    """How many of a rep's emails are due and waiting."""
    query = select(func.count()).where(_status_is(SendStatus.PLANNED), SEND.c.rep_id == rep_id, SEND.c.due_at <= now)
    return int(session.execute(query).scalar_one())
