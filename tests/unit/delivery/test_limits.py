"""Delivering within each mailbox's limits, over many connections, on SQLite and PostgreSQL.

Real SMTP servers (aiosmtpd) that take time per message, cap connections (421 past
the cap) and answer "slow down"; limits are counted with the injected clock, so no
test waits for a minute to pass.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.clock import FixedClock
from bot.delivery.ports import Limits, Route
from bot.delivery.scheduler import SHARE_EVERY, Scheduler, TickResult
from bot.delivery.transports import SmtpTransport
from bot.services import connections
from bot.services.queue import RETRY_DELAYS
from bot.settings import load_settings
from bot.store.models import ConnectionShare, Send, SendStatus
from tests.support.due_emails import due_email, reload
from tests.support.notifier import RecordingNotifier
from tests.support.smtp_sink import SmtpSink

MakeScheduler = Callable[..., Scheduler]
OTHER_REP = "U0OTHER01"


def due_emails(
    session: Session, clock: FixedClock, count: int, *, rep_id: str = "U0REP0001", tag: str = "p"
) -> list[Send]:
    """`count` emails due now, one a second apart in due order (the first is the oldest)."""
    start = clock.now() - dt.timedelta(seconds=count)
    return [
        due_email(session, start + dt.timedelta(seconds=n), f"{tag}{n}@buyer.example", rep_id=rep_id)
        for n in range(count)
    ]


def statuses(session: Session, sends: list[Send]) -> list[str]:
    return [reload(session, send).status for send in sends]


def test_a_burst_goes_out_over_many_connections_within_the_relays_limit(
    session: Session, clock: FixedClock, make_scheduler: MakeScheduler
):
    sends = due_emails(session, clock, 40)
    with SmtpSink(latency=0.05, max_connections=4) as server:
        scheduler = make_scheduler(url=server.url, limits=Limits(connections=4))

        result = scheduler.tick()

        assert result.sent == 40 and set(server.counts().values()) == {1}
        assert server.most_connections == 4, "several connections at once, up to the limit"
        assert server.refused_connections == 0, "never past the server's cap"
    assert set(statuses(session, sends)) == {SendStatus.SENT}


def test_a_per_minute_limit_holds_the_rest_back_in_due_order_without_failing_them(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    sends = due_emails(session, clock, 12)
    scheduler = make_scheduler(limits=Limits(per_minute=5, connections=2))

    first = scheduler.tick()
    again = scheduler.tick()
    clock.advance(seconds=59)
    early = scheduler.tick()
    clock.advance(seconds=1)
    second = scheduler.tick()

    assert (first.sent, again.sent, early.sent, second.sent) == (5, 0, 0, 5) and first.held > 0
    arrived = sorted(received.rcpt_tos[0] for received in sink.messages)
    assert arrived == sorted(f"p{n}@buyer.example" for n in range(10)), "the oldest due go first"
    waiting = {(s.status, s.attempts, s.last_error) for s in (reload(session, send) for send in sends[10:])}
    assert waiting == {(SendStatus.PLANNED, 0, None)}, "held, not failed"
    assert notifier.told("send_failed") == [] and notifier.told("send_notice") == []
    clock.advance(minutes=1)
    assert scheduler.tick().sent == 2 and len(sink.messages) == 12


def test_a_daily_limit_holds_emails_for_a_rolling_day_and_the_rep_is_told_once(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    sends = due_emails(session, clock, 5)
    scheduler = make_scheduler(limits=Limits(per_day=3, connections=1))

    assert scheduler.tick().sent == 3
    clock.advance(hours=1)
    assert scheduler.tick().sent == 0
    clock.advance(hours=22, minutes=59)
    assert scheduler.tick().sent == 0, "a rolling 24 hours, not a calendar day"
    clock.advance(minutes=1, seconds=1)
    assert scheduler.tick().sent == 2

    [(send_id, text)] = notifier.told("send_notice")
    assert send_id == sends[3].id
    assert (
        "limit of 3 emails per 24 hours" in text and "2 emails wait" in text and "from Thu 03 Dec 10:00 on" in text
    ), text
    assert len(sink.messages) == 5


def test_a_slow_down_answer_holds_the_mailbox_without_using_the_emails_retries(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    sends = due_emails(session, clock, 3)
    sink.slow_down(1, "451 4.7.1 Please slow down")
    scheduler = make_scheduler()

    first = scheduler.tick()
    slowed = [(s.status, s.attempts) for s in (reload(session, send) for send in sends)]
    clock.advance(minutes=1)
    second = scheduler.tick()

    assert first.sent < 3 and first.failed == first.retried == 0
    assert all(attempts == 0 for status, attempts in slowed if status == SendStatus.PLANNED), "no retry used"
    assert second.sent == 3 - first.sent
    assert set(statuses(session, sends)) == {SendStatus.SENT} and set(sink.counts().values()) == {1}
    assert notifier.told("send_failed") == []


def test_a_server_refusing_connections_past_its_cap_slows_the_mailbox_and_loses_nothing(
    session: Session, clock: FixedClock, make_scheduler: MakeScheduler
):
    sends = due_emails(session, clock, 12)
    with SmtpSink(latency=0.05, max_connections=1) as server:
        scheduler = make_scheduler(url=server.url, limits=Limits(connections=3))

        for _ in range(10):
            if not {SendStatus.PLANNED} & set(statuses(session, sends)):
                break
            scheduler.tick()
            clock.advance(minutes=1)

        assert server.refused_connections > 0, "the server did refuse connections past its cap"
        assert set(server.counts().values()) == {1} and len(server.messages) == 12
    assert {(s.status, s.attempts) for s in (reload(session, send) for send in sends)} == {(SendStatus.SENT, 1)}


class TwoMailboxes:
    """A router: the other rep's emails go to their own (broken) mailbox, everyone else's to the relay."""

    def __init__(self, relay: Route, own: Route) -> None:
        self.relay, self.own = relay, own

    def route(self, session: Session, rep_id: str) -> Route:
        return self.own if rep_id == OTHER_REP else self.relay


def test_a_mailbox_whose_login_is_refused_holds_only_its_own_emails(
    engine: Engine, session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier
):
    mine = due_emails(session, clock, 3)
    theirs = due_emails(session, clock, 3, rep_id=OTHER_REP, tag="o")
    with SmtpSink() as refusing:
        refusing.refuse_logins()
        own = Route(
            f"rep:{OTHER_REP}",
            lambda: SmtpTransport(f"smtp://bo:wrong@127.0.0.1:{refusing.port}", timeout=5),
            Limits(connections=1),
        )
        relay = Route("relay", lambda: SmtpTransport(sink.url, timeout=5), Limits(connections=2))
        scheduler = Scheduler(engine, clock, TwoMailboxes(relay, own), notifier, load_settings(digest_cron="0 0 1 1 *"))

        result = scheduler.tick()
        clock.advance(hours=2)
        later = scheduler.tick()

    assert (result.sent, result.failed, later.sent) == (3, 0, 0)
    assert set(statuses(session, mine)) == {SendStatus.SENT}
    assert {(s.status, s.attempts) for s in (reload(session, send) for send in theirs)} == {(SendStatus.PLANNED, 0)}
    [(_, text)] = notifier.told("send_notice")
    assert "refused the login" in text and "535" in text, "the rep is told once, with the server's words"


@pytest.mark.postgres
def test_two_workers_together_never_exceed_a_limit(
    engine: Engine, session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: MakeScheduler
):
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers need PostgreSQL")
    due_emails(session, clock, 40)
    workers = [make_scheduler(worker_id=f"worker-{n}", limits=Limits(per_minute=10, connections=3)) for n in range(2)]

    def run(worker: Scheduler) -> None:
        worker.tick()

    for minute in range(2):
        for _ in range(2):  # each worker passes twice a minute (it passes every few seconds): a pass that
            # found the other holding every connection leaves its emails to the next
            threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
            [thread.start() for thread in threads]
            [thread.join() for thread in threads]
        assert len(sink.messages) == 10 * (minute + 1), "exactly the limit each minute, across both workers"
        clock.advance(minutes=1)
    assert set(sink.counts().values()) == {1}


def test_a_worker_over_its_share_hands_the_rest_over_once_it_has_closed_them(
    engine: Engine, session: Session, clock: FixedClock, make_scheduler: MakeScheduler
):
    """Not a SHARE_EVERY later: the clock stands still, and the other worker gets its share all the same."""
    due_emails(session, clock, 250)
    session.commit()
    lease = dt.timedelta(minutes=5)

    def others_ask() -> int:
        with Session(engine) as other:
            granted = connections.share(
                other, "relay", "worker-2", limit=4, wanted=4, open_now=0, now=clock.now(), lease=lease
            )
            other.commit()
        return granted

    def counted() -> int | None:
        with Session(engine) as other:
            row = other.get(ConnectionShare, ("relay", "worker-1"))
            return None if row is None else row.connections

    with SmtpSink(latency=0.02, max_connections=4) as server:
        worker = make_scheduler(url=server.url, limits=Limits(connections=4))
        errors: list[BaseException] = []
        thread = threading.Thread(target=lambda: _collect(errors, worker.tick))
        thread.start()
        try:
            _wait_for(lambda: server.most_connections == 4 and len(server.messages) >= 20)
            assert others_ask() == 0, "worker-1 holds all four"
            clock.advance(
                seconds=SHARE_EVERY.total_seconds()
            )  # worker-1 asks again and learns its share is two; then time stands still
            _wait_for(lambda: counted() in (2, None))
            assert counted() == 2, "worker-1 gave two back while its pass went on"
            assert others_ask() == 2
        finally:
            thread.join(60)
    assert errors == [] and server.refused_connections == 0


def test_a_worker_granted_no_connection_waits_in_its_pass_for_the_others_to_come_down(
    engine: Engine, session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: MakeScheduler
):
    due_emails(session, clock, 10)
    session.commit()
    lease = dt.timedelta(minutes=5)

    def other_holds(open_now: int) -> int:
        with Session(engine) as other:
            granted = connections.share(
                other, "relay", "worker-2", limit=4, wanted=4, open_now=open_now, now=clock.now(), lease=lease
            )
            other.commit()
        return granted

    def asking() -> bool:
        with Session(engine) as other:
            return other.get(ConnectionShare, ("relay", "worker-1")) is not None

    assert other_holds(open_now=4) == 4
    worker = make_scheduler(limits=Limits(connections=4))
    results: list[object] = []
    thread = threading.Thread(target=lambda: _collect(results, lambda: results.append(worker.tick())))
    thread.start()
    try:
        _wait_for(asking)
        assert other_holds(open_now=2) == 2, "worker-2 sees worker-1 asking and comes down to its share"
    finally:
        thread.join(60)
    [result] = results
    assert isinstance(result, TickResult) and result.sent == 10, "in the same pass, not left for the next"
    assert len(sink.messages) == 10


def test_sends_whose_claim_ran_out_while_they_waited_for_a_connection_go_once(
    engine: Engine, session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: MakeScheduler
):
    """The worker claims them again (nobody else took them): each is in hand once, and sent once."""
    due_emails(session, clock, 30)
    session.commit()
    worker = make_scheduler(limits=Limits(connections=2))
    with Session(engine) as other:
        connections.share(
            other, "relay", "worker-2", limit=2, wanted=2, open_now=2, now=clock.now(), lease=worker.lease
        )
        other.commit()

    def asking() -> bool:
        with Session(engine) as other:
            return other.get(ConnectionShare, ("relay", "worker-1")) is not None

    results: list[object] = []
    thread = threading.Thread(target=lambda: _collect(results, lambda: results.append(worker.tick())))
    thread.start()
    try:
        _wait_for(asking)
        clock.advance(seconds=worker.lease.total_seconds() + 1)  # worker-2 is gone, and so are worker-1's claims
    finally:
        thread.join(60)
    [result] = results
    assert isinstance(result, TickResult) and result.sent == 30
    assert len(sink.messages) == 30 and set(sink.counts().values()) == {1}


def _collect(errors: list, call: Callable[[], object]) -> None:
    try:
        call()
    except BaseException as exc:  # the test fails on it
        errors.append(exc)


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll for an event, bounded: the test fails rather than hangs."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_retries_still_grow_for_real_failures(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: MakeScheduler
):
    [send] = due_emails(session, clock, 1)
    sink.reply_to("p0@buyer.example", "450 4.2.1 Mailbox busy")

    make_scheduler().tick()

    stored = reload(session, send)
    assert (stored.status, stored.attempts, stored.due_at) == (SendStatus.PLANNED, 1, clock.now() + RETRY_DELAYS[0])
