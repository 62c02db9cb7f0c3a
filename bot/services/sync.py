"""The durable queue of Salesforce sync work: the `salesforce_sync` table.

Where something happens to a send (a task queued, sent, scheduled or skipped, an
email sent, a reply), one cheap insert records it here; the syncer
(bot/salesforce/sync.py) writes it to Salesforce later, so delivery and Slack never
wait for Salesforce. An item's way:

    waiting (next_at) --claim (lease)--> syncing --Salesforce took it--> done (synced)
        --> Salesforce busy or down (REQUEST_LIMIT_EXCEEDED, 5xx, no connection)
            --> waiting again after a growing delay, never given up
        --> refused for what it is --> waiting again, then done (failed) after GIVE_UP_AFTER
        --> no Contact or Lead for the person --> done (unmatched), with why

Only the oldest waiting item of each send is due, so a Task is created before it is
updated. Nothing is recorded unless Salesforce sync is on (`enable`). These
functions take a Session and `now` and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from bot.store.bulk import claim_oldest, in_values, upsert
from bot.store.models import Enrollment, Person, SalesforceCursor, SalesforceSync, Send, SyncEvent, SyncOutcome

SYNC = SalesforceSync.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models at runtime; its type doesn't declare it
CURSOR = SalesforceCursor.__table__  # type: ignore[attr-defined]  # as SYNC
# Salesforce busy or down: try again after these (the last one over and over).
RETRY_DELAYS = (
    dt.timedelta(seconds=30),
    dt.timedelta(minutes=2),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=15),
)
GIVE_UP_AFTER = 5  # tries of an item Salesforce refuses for what it is
DEFAULT_LEASE = dt.timedelta(minutes=5)

_enabled = False


def enable(on: bool) -> None:
    """Record sync work from now on (SALESFORCE_URL is set), or not; set once at start-up."""
    global _enabled
    _enabled = on


def enabled() -> bool:
    return _enabled


def record(session: Session, event: SyncEvent, send_ids: Sequence[int], now: dt.datetime) -> None:
    """Queue `event` for each of these sends (nothing when sync is off)."""
    if not _enabled:
        return
    for send_id in send_ids:
        session.add(SalesforceSync(event=event, send_id=send_id, next_at=now, created_at=now))
    session.flush()


def emails_sent(session: Session, send_ids: Sequence[int], now: dt.datetime) -> None:
    """These sends went out: a task the rep sent updates its Task, an automatic email makes one."""
    if not _enabled or not send_ids:
        return
    tasks = set(
        session.exec(
            select(SalesforceSync.send_id).where(
                in_values(session, col(SalesforceSync.send_id), list(send_ids)),
                col(SalesforceSync.event) == SyncEvent.TASK_QUEUED,
            )
        )
    )
    record(session, SyncEvent.TASK_SENT, [i for i in send_ids if i in tasks], now)
    record(session, SyncEvent.EMAIL_SENT, [i for i in send_ids if i not in tasks], now)


def reply_received(session: Session, send_id: int, subject: str, body: str, now: dt.datetime) -> None:
    """The person replied to this send: a completed Task `Reply: <subject>` on their record."""
    if not _enabled:
        return
    session.add(
        SalesforceSync(event=SyncEvent.REPLY, send_id=send_id, subject=subject, body=body, next_at=now, created_at=now)
    )
    session.flush()


def claim_due(
    session: Session, now: dt.datetime, worker_id: str, *, limit: int, lease: dt.timedelta = DEFAULT_LEASE
) -> list[SalesforceSync]:
    """Lease up to `limit` due items to this syncer, oldest first: at most one per send, its oldest."""
    ids = claim_oldest(
        session, SYNC, "send_id", now=now, worker_id=worker_id, limit=limit, lease=lease, attempts=SYNC.c.attempts + 1
    )
    if not ids:
        return []
    query = select(SalesforceSync).where(col(SalesforceSync.id).in_(ids)).order_by(col(SalesforceSync.id))
    return list(session.exec(query.execution_options(populate_existing=True)))


def synced(
    session: Session, item: SalesforceSync, now: dt.datetime, *, who_id: str | None, task_id: str | None
) -> None:
    """Salesforce has the item."""
    _set(
        session,
        [item],
        done_at=now,
        outcome=SyncOutcome.SYNCED,
        sf_who_id=who_id,
        sf_task_id=task_id,
        lease_until=None,
        last_error=None,
    )


def unmatched(session: Session, item: SalesforceSync, now: dt.datetime, why: str) -> None:
    """Nothing to write it to: done, with why (listed by `bot salesforce status`)."""
    _set(session, [item], done_at=now, outcome=SyncOutcome.UNMATCHED, lease_until=None, last_error=why)


def not_synced(session: Session, item: SalesforceSync, now: dt.datetime, error: str, *, busy: bool) -> bool:
    """Salesforce did not take the item: wait and try again, or give up; True when given up.

    `busy`: Salesforce was at its limit or unreachable, which passes; never given up.
    """
    if not busy and item.attempts >= GIVE_UP_AFTER:
        _set(session, [item], done_at=now, outcome=SyncOutcome.FAILED, lease_until=None, last_error=error)
        return True
    delay = RETRY_DELAYS[min(item.attempts, len(RETRY_DELAYS)) - 1]
    _set(session, [item], next_at=now + delay, lease_until=None, last_error=error)
    return False


def release(session: Session, items: Sequence[SalesforceSync]) -> None:
    """Give back claimed items this syncer will not get to: this claim does not count as a try."""
    _set(session, items, lease_until=None, claimed_by=None, attempts=SYNC.c.attempts - 1)


def task_id_of(session: Session, send_id: int) -> SalesforceSync | None:
    """The item that wrote the send's task as a Salesforce Task (synced or not)."""
    return session.exec(
        select(SalesforceSync).where(
            col(SalesforceSync.send_id) == send_id, col(SalesforceSync.event) == SyncEvent.TASK_QUEUED
        )
    ).first()


def send_of_task(session: Session, task_id: str) -> int | None:
    """The send whose task is this Salesforce Task, if the bot wrote it."""
    return session.exec(
        select(SalesforceSync.send_id).where(
            col(SalesforceSync.sf_task_id) == task_id, col(SalesforceSync.event) == SyncEvent.TASK_QUEUED
        )
    ).first()


def read_to(session: Session, name: str) -> dt.datetime | None:
    return session.exec(select(SalesforceCursor.read_to).where(SalesforceCursor.name == name)).first()


def set_read_to(session: Session, name: str, at: dt.datetime) -> None:
    """Where the poll called `name` has read to.

    Two syncers may poll at once: one statement, whichever writes first (a poll read
    twice changes nothing in Salesforce or here).
    """
    upsert(session, CURSOR, {"name": name, "read_to": at}, ["name"])


@dataclass
class Status:
    """What `bot salesforce status` shows."""

    waiting: int
    retrying: int  # waiting after an error
    synced: int
    failed: list[SalesforceSync]
    unmatched: list[SalesforceSync]


def status(session: Session, *, most: int = 50) -> Status:
    """The queue's counts, and the latest failed and unmatched items (at most `most` each)."""
    counts = dict(
        session.execute(
            select(SYNC.c.outcome, func.count()).group_by(SYNC.c.outcome)  # outcome None: waiting
        ).all()
    )
    retrying = session.execute(
        select(func.count()).where(SYNC.c.done_at.is_(None), SYNC.c.last_error.is_not(None))
    ).scalar_one()

    def latest(outcome: SyncOutcome) -> list[SalesforceSync]:
        query = (
            select(SalesforceSync).where(col(SalesforceSync.outcome) == outcome).order_by(col(SalesforceSync.id).desc())
        )
        return list(session.exec(query.limit(most)))

    return Status(
        waiting=counts.get(None, 0),
        retrying=retrying,
        synced=counts.get(SyncOutcome.SYNCED.value, 0),
        failed=latest(SyncOutcome.FAILED),
        unmatched=latest(SyncOutcome.UNMATCHED),
    )


def unmatched_people(session: Session, campaign_id: int, *, most: int = 50) -> list[tuple[str, str]]:
    """People of the campaign the sync found no Contact or Lead for: (email, why), latest first."""
    rows = session.exec(
        select(Person.email, SalesforceSync.last_error)
        .join(Send, col(Send.id) == col(SalesforceSync.send_id))
        .join(Enrollment, col(Enrollment.id) == col(Send.enrollment_id))
        .join(Person, col(Person.id) == col(Enrollment.person_id))
        .where(col(Enrollment.campaign_id) == campaign_id, col(SalesforceSync.outcome) == SyncOutcome.UNMATCHED)
        .order_by(col(SalesforceSync.id).desc())
        .limit(most * 4)
    )
    people: dict[str, str] = {}
    for email, why in rows:
        people.setdefault(email, why or "")
    return list(people.items())[:most]


def _set(session: Session, items: Sequence[SalesforceSync], **values: object) -> None:
    if items:
        session.execute(update(SYNC).where(SYNC.c.id.in_([item.id for item in items])).values(**values))
        for item in items:
            session.refresh(item)
