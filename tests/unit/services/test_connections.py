"""A mailbox's connection limit, shared by every worker (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.services import connections
from bot.store.models import ConnectionShare

LEASE = dt.timedelta(minutes=5)
MAILBOX = "relay"


def ask(session: Session, clock: FixedClock, worker: str, *, limit: int = 4, open_now: int = 0) -> int:
    granted = connections.share(
        session, MAILBOX, worker, limit=limit, wanted=limit, open_now=open_now, now=clock.now(), lease=LEASE
    )
    session.commit()
    return granted


def held(session: Session) -> dict[str, int]:
    return {row.worker_id: row.connections for row in session.exec(select(ConnectionShare))}


def test_workers_never_hold_more_than_the_limit_together_and_come_to_fair_shares(session: Session, clock: FixedClock):
    assert ask(session, clock, "a") == 4, "alone, a worker has the whole limit"
    assert ask(session, clock, "b") == 0, "all four are open elsewhere"
    assert ask(session, clock, "a", open_now=4) == 2, "b asks too: a's share is half"
    assert held(session) == {"a": 4, "b": 0}, "a's four stay counted until it closes them"
    assert ask(session, clock, "b") == 0, "none free yet"
    assert ask(session, clock, "a", open_now=2) == 2
    assert ask(session, clock, "b") == 2, "a closed two: they are b's"
    assert sum(held(session).values()) == 4


def test_an_odd_limit_is_shared_without_going_over(session: Session, clock: FixedClock):
    assert ask(session, clock, "a", limit=3) == 3
    assert ask(session, clock, "b", limit=3) == 0
    assert ask(session, clock, "a", limit=3, open_now=3) == 2
    assert ask(session, clock, "a", limit=3, open_now=2) == 2
    assert ask(session, clock, "b", limit=3) == 1
    assert sum(held(session).values()) == 3


def test_a_dead_workers_connections_count_until_its_lease_runs_out(session: Session, clock: FixedClock):
    assert ask(session, clock, "dead") == 4
    clock.advance(minutes=4)
    assert ask(session, clock, "alive") == 0, "the dead worker's lease still runs"
    clock.advance(minutes=2)
    assert ask(session, clock, "alive") == 4
    assert held(session) == {"alive": 4}, "the dead worker's row is gone"


def test_a_renewed_lease_keeps_counting(session: Session, clock: FixedClock):
    assert ask(session, clock, "a") == 4
    clock.advance(minutes=4)
    connections.renew(session, "a", clock.now(), LEASE)
    clock.advance(minutes=4)
    assert ask(session, clock, "b") == 0


def test_a_worker_that_got_none_keeps_asking_after_its_pass_and_the_rest_is_freed(session: Session, clock: FixedClock):
    ask(session, clock, "a")
    ask(session, clock, "b")
    connections.release(session, "b", still_wanted={MAILBOX})
    session.commit()
    assert ask(session, clock, "a", open_now=4) == 2, "b still wants its share"
    connections.release(session, "a")
    session.commit()
    assert held(session) == {"b": 0}
    assert ask(session, clock, "b") == 4
