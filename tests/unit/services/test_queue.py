"""The send queue on SQLite and PostgreSQL: claiming under a lease, retries, lost workers, cost."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import Engine, event, text, update
from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.delivery.ports import Email
from bot.delivery.routes import Relay
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import OutboxTransport
from bot.services import enrollments, queue
from bot.settings import load_settings
from bot.store.models import Enrollment, EnrollmentStatus, Send, SendStatus
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


# --- a reply and the scheduler at once ---------------------------------------------------
# PostgreSQL runs them in parallel: each test holds one side's transaction open, starts
# the other in a thread, waits until the database shows that thread waiting for the
# first one's lock, then lets the first commit. Both orders must end consistently.


class Other:
    """One side run in a thread, on its own session: what it returned, or raised."""

    def __init__(self, engine: Engine, work) -> None:
        self.session = Session(engine, expire_on_commit=False)
        self.pid = self.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        self.result: object = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(work,))
        self.thread.start()

    def _run(self, work) -> None:
        try:
            self.result = work(self.session)
            self.session.commit()
        except BaseException as exc:  # handed back to the test by finish()
            self.error = exc
        finally:
            self.session.close()

    def wait_until_blocked(self, engine: Engine) -> None:
        """Until the database shows this side waiting for a lock another transaction holds."""
        with engine.connect() as watcher:
            for _ in range(2_000):
                if watcher.execute(text("SELECT cardinality(pg_blocking_pids(:pid))"), {"pid": self.pid}).scalar():
                    return
                self.thread.join(0.005)
                assert self.thread.is_alive(), f"it finished without waiting: {self.error!r}"
        raise AssertionError("it never waited for the other transaction")

    def finish(self) -> object:
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


def only_on_postgresql(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("two transactions at once need PostgreSQL (SQLite's writers take turns)")


def claimed_email(session: Session, now: dt.datetime) -> tuple[Send, Enrollment]:
    send = due_email(session, now)
    assert queue.claim(session, [send.id], now, "worker-1", lease=LEASE) == [send.id]  # type: ignore[list-item]
    session.commit()
    enrollment = session.get(Enrollment, send.enrollment_id)
    assert enrollment is not None
    return send, enrollment


def reply_ends(enrollment_id: int, now: dt.datetime):
    def end(session: Session) -> list[int]:
        enrollment = session.get(Enrollment, enrollment_id)
        assert enrollment is not None
        return enrollments.end_enrollment(session, enrollment, EnrollmentStatus.REPLIED, "replied at 09:00", now)

    return end


@pytest.mark.postgres
def test_a_reply_recorded_while_the_email_is_claimed_stops_it_before_hand_over(engine: Engine, clock: FixedClock):
    only_on_postgresql(engine)
    now = clock.now()
    with Session(engine, expire_on_commit=False) as setup:
        send, enrollment = claimed_email(setup, now)

    with Session(engine, expire_on_commit=False) as replier:
        ended = reply_ends(enrollment.id, now)(replier)  # type: ignore[arg-type]
        scheduler = Other(engine, lambda s: queue.mark_sending(s, [handing(send)], "worker-1", now, lease=LEASE))
        scheduler.wait_until_blocked(engine)
        replier.commit()
    handed = scheduler.finish()

    with Session(engine) as session:
        stored, ending = reload(session, send), session.get(Enrollment, enrollment.id)
        assert (ended, handed) == ([send.id], set()), "the scheduler's last look sees the reply: not handed over"
        assert (stored.status, stored.reason, stored.handed_at) == (SendStatus.CANCELLED, "replied at 09:00", None)
        assert ending is not None and ending.status == EnrollmentStatus.REPLIED


@pytest.mark.postgres
def test_a_reply_recorded_while_the_email_is_marked_sending_leaves_it_to_be_recorded_sent(
    engine: Engine, clock: FixedClock
):
    only_on_postgresql(engine)
    now = clock.now()
    with Session(engine, expire_on_commit=False) as setup:
        send, enrollment = claimed_email(setup, now)

    with Session(engine, expire_on_commit=False) as worker:
        mine = worker.get(Send, send.id)
        assert mine is not None and worker.get(Enrollment, enrollment.id) is not None  # as the scheduler loads them
        assert queue.mark_sending(worker, [handing(mine)], "worker-1", now, lease=LEASE) == {send.id}
        replier = Other(engine, reply_ends(enrollment.id, now))  # type: ignore[arg-type]
        replier.wait_until_blocked(engine)
        worker.commit()  # handed to the server now
        cancelled = replier.finish()
        queue.handed(mine, handing(mine), now, LEASE)
        recorded = queue.mark_sent(worker, [(mine, now + dt.timedelta(seconds=1))], "worker-1")
        worker.commit()

    with Session(engine) as session:
        stored, ending = reload(session, send), session.get(Enrollment, enrollment.id)
        assert cancelled == [], "an email handed to the server is not cancelled as if it never went"
        assert [s.id for s in recorded] == [send.id] and stored.status == SendStatus.SENT
        assert ending is not None and ending.status == EnrollmentStatus.REPLIED
        assert next_step(session, send) is None, "the enrollment ended: nothing further is planned"


@pytest.mark.postgres
def test_a_reply_recorded_while_the_next_step_is_being_planned_cancels_that_step(engine: Engine, clock: FixedClock):
    only_on_postgresql(engine)
    now = clock.now()
    with Session(engine, expire_on_commit=False) as setup:
        [sending] = in_flight(setup, [due_email(setup, now)], "worker-1", now)
    enrollment_id = sending.enrollment_id

    with Session(engine, expire_on_commit=False) as worker:
        mine = worker.get(Send, sending.id)
        assert mine is not None
        queue.mark_sent(worker, [(mine, now + dt.timedelta(seconds=1))], "worker-1")  # plans step 2, uncommitted
        replier = Other(engine, reply_ends(enrollment_id, now))
        replier.wait_until_blocked(engine)
        worker.commit()
    cancelled = replier.finish()

    with Session(engine) as session:
        following = next_step(session, sending)
        assert following is not None and cancelled == [following.id]
        assert (following.status, following.reason) == (SendStatus.CANCELLED, "replied at 09:00")
        assert reload(session, sending).status == SendStatus.SENT


def test_a_reply_recorded_after_the_email_was_marked_sending_plans_nothing_after_it(
    session: Session, clock: FixedClock
):
    now = clock.now()
    [sending] = in_flight(session, [due_email(session, now)], "worker-1", now)
    enrollment = session.get(Enrollment, sending.enrollment_id)  # the scheduler's session holds it as it was
    assert enrollment is not None
    session.commit()  # SQLite: the read's write lock is free for the replier
    with Session(session.get_bind(), expire_on_commit=False) as replier:
        assert reply_ends(enrollment.id, now)(replier) == []  # type: ignore[arg-type]
        replier.commit()

    recorded = queue.mark_sent(session, [(sending, now + dt.timedelta(seconds=1))], "worker-1")
    session.commit()

    assert [s.id for s in recorded] == [sending.id] and reload(session, sending).status == SendStatus.SENT
    assert next_step(session, sending) is None, "the enrollment ended: nothing further is planned"
    assert session.get(Enrollment, enrollment.id).status == EnrollmentStatus.REPLIED  # type: ignore[union-attr]
