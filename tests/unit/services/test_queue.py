"""The send queue on SQLite and PostgreSQL: claiming under a lease, retries, lost workers, cost."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, event, text, update
from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.delivery.ports import Email
from bot.delivery.routes import Relay
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import OutboxTransport
from bot.services import queue
from bot.settings import load_settings
from bot.store.models import Enrollment, Send, SendStatus
from tests.support.due_emails import due_email, reload, seed_due_emails
from tests.support.notifier import RecordingNotifier

LEASE = dt.timedelta(minutes=5)


def handing(send: Send) -> Email:
    return Email(
        send.id, "relay", "rep@seller.example", ["pat@buyer.example"], b"", f"<{send.id}@seller.example>", "Hello", "Hi"
    )  # type: ignore[arg-type]


def test_claiming_takes_due_unleased_sends_oldest_first_up_to_the_limit(session: Session, clock: FixedClock):
    now = clock.now()
    older = due_email(session, now - dt.timedelta(hours=2), "a@buyer.example")
    newer = due_email(session, now - dt.timedelta(hours=1), "b@buyer.example")
    third = due_email(session, now, "c@buyer.example")
    due_email(session, now + dt.timedelta(seconds=1), "later@buyer.example")

    first = queue.claim_due(session, now, "worker-1", limit=2, lease=LEASE)
    second = queue.claim_due(session, now, "worker-2", limit=10, lease=LEASE)
    session.commit()

    assert sorted(first) == [older.id, newer.id]
    assert second == [third.id], "a leased send is not claimed twice"
    assert (reload(session, older).claimed_by, reload(session, older).lease_until) == ("worker-1", now + LEASE)


def test_a_lease_that_ran_out_lets_another_worker_claim_the_send(session: Session, clock: FixedClock):
    send = due_email(session, clock.now())
    queue.claim_due(session, clock.now(), "worker-1", limit=10, lease=LEASE)
    session.commit()

    later = clock.advance(minutes=6)
    taken = queue.claim_due(session, later, "worker-2", limit=10, lease=LEASE)
    session.commit()

    assert taken == [send.id] and reload(session, send).claimed_by == "worker-2"


def test_a_worker_whose_lease_was_taken_over_does_not_send(session: Session, clock: FixedClock):
    send = due_email(session, clock.now())
    queue.claim_due(session, clock.now(), "worker-1", limit=10, lease=LEASE)
    queue.claim_due(session, clock.now() + LEASE * 2, "worker-2", limit=10, lease=LEASE)
    session.commit()

    slow = queue.mark_sending(session, [handing(send)], "worker-1", clock.now(), lease=LEASE)
    fast = queue.mark_sending(session, [handing(send)], "worker-2", clock.now(), lease=LEASE)
    session.commit()

    assert (slow, fast) == (set(), {send.id})
    assert (reload(session, send).status, reload(session, send).message_id) == (
        SendStatus.SENDING,
        f"<{send.id}@seller.example>",
    )


def test_marking_a_chunk_sending_skips_the_send_another_worker_took_and_leaves_it_alone(
    session: Session, clock: FixedClock
):
    now = clock.now()
    first, taken, last = (due_email(session, now, f"{name}@buyer.example") for name in ("a", "b", "c"))
    queue.claim_due(session, now, "worker-1", limit=10, lease=LEASE)
    queue.claim(session, [taken.id], now + LEASE * 2, "worker-2", lease=LEASE)  # type: ignore[list-item]
    session.commit()

    mine = queue.mark_sending(session, [handing(first), handing(taken), handing(last)], "worker-1", now, lease=LEASE)
    session.commit()

    assert mine == {first.id, last.id}
    for send in (first, last):
        stored = reload(session, send)
        assert (stored.status, stored.message_id, stored.attempts, stored.lease_until) == (
            SendStatus.SENDING,
            f"<{send.id}@seller.example>",
            1,
            now + LEASE,
        )
    stored = reload(session, taken)
    assert (stored.status, stored.claimed_by, stored.message_id, stored.subject, stored.attempts) == (
        SendStatus.PLANNED,
        "worker-2",
        None,
        None,
        0,
    )


def in_flight(session: Session, sends: list[Send], worker_id: str, now: dt.datetime) -> list[Send]:
    """These sends claimed by the worker and marked `sending`, as the scheduler leaves them before the server answers."""
    queue.claim(session, [send.id for send in sends], now, worker_id, lease=LEASE)  # type: ignore[misc]
    queue.mark_sending(session, [handing(send) for send in sends], worker_id, now, lease=LEASE)
    session.commit()
    return [reload(session, send) for send in sends]


def next_step(session: Session, send: Send) -> Send | None:
    return session.exec(
        select(Send).where(Send.enrollment_id == send.enrollment_id, Send.position == send.position + 1)
    ).first()


def test_emails_delivered_at_different_times_are_each_recorded_sent_at_their_own_time(
    session: Session, clock: FixedClock
):
    now = clock.now()
    sends = in_flight(
        session, [due_email(session, now, f"{name}@buyer.example") for name in ("a", "b", "c")], "worker-1", now
    )
    early, late = now + dt.timedelta(seconds=1), now + dt.timedelta(seconds=2)

    recorded = queue.mark_sent(session, [(sends[0], early), (sends[1], late), (sends[2], early)], "worker-1")
    session.commit()

    assert [send.id for send in recorded] == [send.id for send in sends]
    stored = [reload(session, send) for send in sends]
    assert [(s.status, s.sent_at, s.done_at, s.updated_at, s.lease_until) for s in stored] == [
        (SendStatus.SENT, at, at, at, None) for at in (early, late, early)
    ]
    assert all(next_step(session, send) is not None for send in sends)
    assert [session.get(Enrollment, send.enrollment_id).position for send in sends] == [2, 2, 2]  # type: ignore[union-attr]


def test_a_send_another_worker_took_is_not_recorded_sent_but_one_whose_lease_ran_out_is(
    session: Session, clock: FixedClock
):
    now = clock.now()
    [lost] = in_flight(
        session, [due_email(session, now - LEASE * 2, "lost@buyer.example")], "worker-1", now - LEASE * 2
    )
    emails = [due_email(session, now, f"{name}@buyer.example") for name in ("a", "b", "c")]
    ours, taken, taken_too = in_flight(session, emails, "worker-1", now)
    assert queue.recover_lost(session, now) == [lost.id]  # still this worker's, uncertain
    session.execute(update(Send).where(Send.id.in_([taken.id, taken_too.id])).values(claimed_by="worker-2"))  # type: ignore[union-attr]
    session.commit()
    first, second, third = (now + dt.timedelta(seconds=n) for n in (1, 2, 3))

    recorded = queue.mark_sent(session, [(ours, first), (taken, first), (lost, second), (taken_too, third)], "worker-1")
    session.commit()

    assert [send.id for send in recorded] == [ours.id, lost.id]
    assert [(reload(session, s).status, reload(session, s).sent_at) for s in (ours, lost)] == [
        (SendStatus.SENT, first),
        (SendStatus.SENT, second),
    ]
    assert all(next_step(session, send) is not None for send in (ours, lost))
    for send in (taken, taken_too):
        stored = reload(session, send)
        assert (stored.status, stored.claimed_by, stored.sent_at) == (SendStatus.SENDING, "worker-2", None)
        assert next_step(session, send) is None, "the worker that has it plans the next step when its server answers"


def test_send_now_claims_a_planned_send_whatever_its_due_time_but_only_once(session: Session, clock: FixedClock):
    send = due_email(session, clock.now() + dt.timedelta(days=3))

    first = queue.claim(session, [send.id], clock.now(), "worker-1", lease=LEASE)  # type: ignore[list-item]
    second = queue.claim(session, [send.id], clock.now(), "worker-2", lease=LEASE)  # type: ignore[list-item]
    session.commit()

    assert (first, second) == ([send.id], [])


def test_temporary_failures_wait_longer_each_time_then_fail(session: Session, clock: FixedClock):
    send = due_email(session, clock.now())
    outcomes = []
    for _ in range(5):
        now = clock.now()
        queue.claim_due(session, now, "worker-1", limit=1, lease=LEASE)
        queue.mark_sending(session, [handing(send)], "worker-1", now, lease=LEASE)
        session.commit()
        send = reload(session, send)
        gave_up = queue.retry_later(session, send, "worker-1", now, "421 4.3.2 Try again later")
        session.commit()
        send = reload(session, send)
        outcomes.append((gave_up, send.status, send.due_at - now if not gave_up else None))
        clock.set(send.due_at)

    assert outcomes == [
        (False, SendStatus.PLANNED, dt.timedelta(minutes=1)),
        (False, SendStatus.PLANNED, dt.timedelta(minutes=5)),
        (False, SendStatus.PLANNED, dt.timedelta(minutes=15)),
        (False, SendStatus.PLANNED, dt.timedelta(minutes=60)),
        (True, SendStatus.FAILED, None),
    ]
    assert send.reason == "421 4.3.2 Try again later (gave up after 5 attempts)"


def test_emails_in_flight_past_their_lease_become_uncertain_once(session: Session, clock: FixedClock):
    send = due_email(session, clock.now())
    queue.claim_due(session, clock.now(), "worker-1", limit=1, lease=LEASE)
    queue.mark_sending(session, [handing(send)], "worker-1", clock.now(), lease=LEASE)
    session.commit()

    early = queue.recover_lost(session, clock.now() + LEASE / 2)
    late = queue.recover_lost(session, clock.now() + LEASE * 2)
    again = queue.recover_lost(session, clock.now() + LEASE * 3)
    session.commit()

    assert (early, late, again) == ([], [send.id], [])
    assert (reload(session, send).status, reload(session, send).reason) == (SendStatus.UNCERTAIN, queue.LOST_WORKER)


# --- what an idle pass costs --------------------------------------------------------


@pytest.fixture
def statements(engine: Engine):
    """Every SQL statement sent to the database while the test runs."""
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "EXPLAIN")):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def query_plan(engine: Engine, statement: str, parameters: object) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()  # type: ignore[arg-type]
            plan = "\n".join(str(row[-1]) for row in rows)
        else:
            connection.exec_driver_sql("ANALYZE send")
            plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))  # type: ignore[arg-type]
        connection.rollback()
    return plan


def test_an_idle_pass_over_many_planned_sends_is_one_query_on_the_due_index(
    engine: Engine, clock: FixedClock, statements: list, tmp_path
):
    seed_due_emails(engine, 5_000, clock.now() + dt.timedelta(days=30))
    scheduler = Scheduler(
        engine,
        clock,
        Relay(lambda: OutboxTransport(tmp_path)),
        RecordingNotifier(),
        load_settings(digest_cron="0 0 1 1 *"),
    )
    scheduler.tick()  # the first pass also looks for lost workers and digests
    clock.advance(seconds=5)
    statements.clear()

    result = scheduler.tick()

    assert result.idle
    [(statement, parameters)] = statements
    assert "UPDATE send" in statement
    plan = query_plan(engine, statement, parameters)
    assert "ix_send_due" in plan, plan
    assert "SCAN send\n" not in plan + "\n" and "Seq Scan on send" not in plan, plan


def test_the_due_index_holds_planned_sends_only(engine: Engine):
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            sql = connection.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_send_due'")).scalar()
        else:
            sql = connection.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_send_due'")).scalar()
    assert "planned" in sql and "due_at" in sql
