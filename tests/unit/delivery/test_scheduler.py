"""The scheduler with a real SMTP server, on SQLite and PostgreSQL: deliveries, tasks, failures."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from bot.clock import FixedClock
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import SmtpTransport
from bot.services import enrollments
from bot.services.queue import LOST_WORKER
from bot.store.models import Enrollment, EnrollmentStatus, Send, SendStatus
from tests.support.due_emails import due_email, reload, seed_due_emails
from tests.support.factories import make_campaign, make_rep
from tests.support.notifier import RecordingNotifier
from tests.support.smtp_sink import SilentServer, SmtpSink, refused_port

MakeScheduler = Callable[..., Scheduler]


def sends_of(session: Session, send: Send) -> list[Send]:
    session.expire_all()
    sends = list(session.exec(select(Send).where(Send.enrollment_id == send.enrollment_id).order_by(Send.position)))
    session.commit()
    return sends


def progress_of(session: Session, send: Send) -> tuple[object, ...]:
    """The send's enrollment as stored now: status, position, shift_days, ended_at, end_reason."""
    columns = (
        Enrollment.status,
        Enrollment.position,
        Enrollment.shift_days,
        Enrollment.ended_at,
        Enrollment.end_reason,
    )
    row = session.exec(select(*columns).where(Enrollment.id == send.enrollment_id)).one()
    session.commit()
    return tuple(row)


def test_a_due_email_is_sent_once_and_the_next_step_planned(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    send = due_email(session, clock.now(), "pat@buyer.example")
    later = due_email(session, clock.now() + dt.timedelta(hours=1), "sam@buyer.example")
    scheduler = make_scheduler()

    result = scheduler.tick()
    again = scheduler.tick()

    assert (str(result), str(again)) == (
        "sent 1 email, queued 0 tasks, 0 failed",
        "sent 0 emails, queued 0 tasks, 0 failed",
    )
    [received] = sink.messages
    first, follow_up = sends_of(session, send)
    assert received.rcpt_tos == ["pat@buyer.example"]
    assert (first.status, first.sent_at, first.message_id) == (
        SendStatus.SENT,
        clock.now(),
        received.message["Message-ID"],
    )
    assert (first.subject, first.body) == ("Hello Pat", "Hi Pat")
    assert follow_up.status == SendStatus.PLANNED and follow_up.due_at == clock.now() + dt.timedelta(days=2)
    assert reload(session, later).status == SendStatus.PLANNED
    assert notifier.told("email_sent") == [[send.id]]


def test_the_enrollment_moves_on_with_each_email_and_finishes_after_the_last(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: MakeScheduler
):
    send = due_email(session, clock.now() - dt.timedelta(days=1))  # sent a day late: later days move a day
    scheduler = make_scheduler()

    scheduler.tick()
    after_first = progress_of(session, send)
    clock.advance(days=2)
    scheduler.tick()

    assert len(sink.messages) == 2
    assert after_first == (EnrollmentStatus.ACTIVE, 2, 1, None, None)
    assert progress_of(session, send) == (EnrollmentStatus.FINISHED, 2, 1, clock.now(), "all steps done")


def test_reps_hear_of_sent_emails_every_hundred_not_only_when_a_big_batch_ends(
    engine: Engine, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    seed_due_emails(engine, 150, clock.now())

    result = make_scheduler(batch_size=500).tick()

    assert result.sent == 150 and len(sink.messages) == 150
    assert [len(ids) for ids in notifier.told("email_sent")] == [100, 50]  # type: ignore[arg-type]


def test_a_thread_step_goes_out_as_a_reply_on_its_day(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: MakeScheduler
):
    due_email(session, clock.now())
    scheduler = make_scheduler()
    scheduler.tick()

    clock.advance(days=2)
    scheduler.tick()

    first, reply = (received.message for received in sink.messages)
    assert reply["Subject"] == "Re: Hello Pat"
    assert reply["In-Reply-To"] == first["Message-ID"] and reply["References"] == first["Message-ID"]


def test_a_task_step_that_becomes_due_is_queued_for_its_rep(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    campaign = make_campaign(session, [{"day": 1, "send": "task", "subject": "Hi", "body": "Hi {{ first_name }}"}])
    send = due_email(session, clock.now(), campaign=campaign)

    result = make_scheduler().tick()

    assert str(result) == "sent 0 emails, queued 1 task, 0 failed"
    assert reload(session, send).status == SendStatus.QUEUED
    assert notifier.told("task_due") == [send.id] and sink.messages == []


def test_an_email_with_a_field_missing_becomes_a_task_saying_which(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    campaign = make_campaign(
        session, [{"day": 1, "send": "at_time", "time": "09:00", "subject": "Hi", "body": "How is {{ company }}?"}]
    )
    send = due_email(session, clock.now(), campaign=campaign, company="")

    make_scheduler().tick()

    stored = reload(session, send)
    assert (stored.kind, stored.status, stored.reason) == ("task", SendStatus.QUEUED, "no value for company")
    assert notifier.told("task_due") == [send.id] and sink.messages == []


def test_a_rep_without_an_email_address_is_told_the_send_failed(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    make_rep(session, email=None)
    send = due_email(session, clock.now())

    make_scheduler().tick()

    stored = reload(session, send)
    assert stored.status == SendStatus.FAILED and "no email address" in (stored.reason or "")
    assert notifier.told("send_failed") == [send.id] and sink.messages == []


def test_a_thread_step_after_a_skipped_email_goes_out_new_and_the_rep_is_told(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    from bot.services import progress

    send = due_email(session, clock.now())
    follow_up = progress.complete(session, send, sent=False, at=clock.now())
    session.commit()
    assert follow_up is not None

    clock.advance(days=2)
    make_scheduler().tick()

    [received] = sink.messages
    assert received.message["Subject"] == "Hello Pat" and received.message["In-Reply-To"] is None
    assert notifier.told("send_notice") == [(follow_up.id, "step 1 was skipped, so step 2 goes out as a new email")]


# --- failures ------------------------------------------------------------------------


def test_a_refused_connection_is_retried_a_minute_later(
    session: Session, clock: FixedClock, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    send = due_email(session, clock.now())

    result = make_scheduler(SmtpTransport(f"smtp://127.0.0.1:{refused_port()}")).tick()

    stored = reload(session, send)
    assert result.retried == 1
    assert (stored.status, stored.attempts, stored.due_at) == (
        SendStatus.PLANNED,
        1,
        clock.now() + dt.timedelta(minutes=1),
    )
    assert "connection refused" in (stored.last_error or "")
    assert notifier.told("send_failed") == []


def test_a_server_timing_out_before_the_body_is_retried_later(
    session: Session, clock: FixedClock, make_scheduler: MakeScheduler
):
    send = due_email(session, clock.now())

    with SilentServer() as server:
        make_scheduler(SmtpTransport(f"smtp://127.0.0.1:{server.port}", timeout=0.2)).tick()

    stored = reload(session, send)
    assert (stored.status, stored.attempts) == (SendStatus.PLANNED, 1)
    assert "timed out" in (stored.last_error or "")


def test_a_4xx_reply_is_retried_with_growing_delays_then_fails_and_the_rep_is_told(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    sink.reply_to("pat@buyer.example", "451 4.2.1 Mailbox busy")
    send = due_email(session, clock.now())
    scheduler = make_scheduler()

    delays = []
    for _ in range(4):
        scheduler.tick()
        stored = reload(session, send)
        assert stored.status == SendStatus.PLANNED and notifier.told("send_failed") == []
        delays.append(stored.due_at - clock.now())
        clock.set(stored.due_at)
    scheduler.tick()

    assert delays == [dt.timedelta(minutes=m) for m in (1, 5, 15, 60)]
    stored = reload(session, send)
    assert (stored.status, stored.attempts) == (SendStatus.FAILED, 5)
    assert stored.reason == "451 4.2.1 Mailbox busy (gave up after 5 attempts)"
    assert notifier.told("send_failed") == [send.id]
    assert [s.position for s in sends_of(session, send)] == [1], "the enrollment waits"


def test_a_5xx_reply_fails_at_once_with_the_servers_reason(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    sink.reply_to("pat@buyer.example", "550 5.1.1 No such user here")
    send = due_email(session, clock.now())

    result = make_scheduler().tick()

    stored = reload(session, send)
    assert str(result) == "sent 0 emails, queued 0 tasks, 1 failed"
    assert (stored.status, stored.reason) == (SendStatus.FAILED, "550 5.1.1 No such user here")
    assert notifier.told("send_failed") == [send.id]
    assert [s.position for s in sends_of(session, send)] == [1], "the enrollment waits"


def test_a_drop_after_the_body_is_uncertain_and_never_sent_again(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    sink.hang_up_after_data("pat@buyer.example")
    send = due_email(session, clock.now())
    scheduler = make_scheduler()

    scheduler.tick()
    for _ in range(3):
        clock.advance(hours=1)
        scheduler.tick()

    stored = reload(session, send)
    assert stored.status == SendStatus.UNCERTAIN and "may or may not" in (stored.reason or "")
    assert len(sink.dropped) == 1 and sink.messages == []
    assert notifier.told("send_uncertain") == [send.id]
    assert [s.position for s in sends_of(session, send)] == [1], "the enrollment waits"


# --- claiming ------------------------------------------------------------------------


def test_an_email_in_flight_when_its_worker_died_becomes_uncertain_and_its_rep_is_told(
    session: Session, clock: FixedClock, sink: SmtpSink, notifier: RecordingNotifier, make_scheduler: MakeScheduler
):
    send = due_email(session, clock.now())
    send.status, send.claimed_by, send.lease_until, send.message_id = (
        "sending",
        "dead-worker",
        clock.now() + dt.timedelta(minutes=5),
        "<x@seller.example>",
    )
    session.add(send)
    session.commit()

    make_scheduler().tick()
    assert reload(session, send).status == SendStatus.SENDING, "its lease still runs"

    clock.advance(minutes=6)
    make_scheduler(worker_id="worker-2").tick()

    stored = reload(session, send)
    assert (stored.status, stored.reason) == (SendStatus.UNCERTAIN, LOST_WORKER)
    assert notifier.told("send_uncertain") == [send.id] and sink.messages == []


def test_an_email_claimed_by_a_worker_that_died_before_sending_is_sent_by_another(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: MakeScheduler
):
    send = due_email(session, clock.now())
    send.claimed_by, send.lease_until = "dead-worker", clock.now() + dt.timedelta(minutes=5)
    session.add(send)
    session.commit()

    make_scheduler().tick()
    assert sink.messages == []

    clock.advance(minutes=6)
    make_scheduler().tick()

    assert len(sink.messages) == 1 and reload(session, send).status == SendStatus.SENT


def test_send_now_delivers_a_planned_email_before_its_time_once_however_often_clicked(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: MakeScheduler
):
    send = due_email(session, clock.now() + dt.timedelta(days=1))
    scheduler = make_scheduler()

    clicks = [threading.Thread(target=scheduler.deliver, args=([send.id],)) for _ in range(3)]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    scheduler.deliver([send.id])

    assert len(sink.messages) == 1 and reload(session, send).status == SendStatus.SENT


def test_two_schedulers_at_once_send_each_email_exactly_once(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: MakeScheduler
):
    sends = [due_email(session, clock.now(), f"person{i}@buyer.example") for i in range(40)]
    schedulers = [make_scheduler(worker_id=f"worker-{n}", batch_size=5) for n in range(2)]

    threads = [threading.Thread(target=scheduler.tick) for scheduler in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.rcpt_tos[0] for r in sink.messages) == sorted(f"person{i}@buyer.example" for i in range(40))
    assert {reload(session, s).status for s in sends} == {SendStatus.SENT}


class StopAfterFirst(SmtpTransport):
    """Asks the scheduler to stop while the first email is with the server."""

    def __init__(self, url: str, stop: threading.Event) -> None:
        super().__init__(url)
        self.stop = stop

    def send(self, message) -> None:  # type: ignore[no-untyped-def]
        self.stop.set()
        super().send(message)


def test_stopping_finishes_the_email_in_flight_and_gives_the_rest_back(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: MakeScheduler
):
    sends = [due_email(session, clock.now(), f"person{i}@buyer.example") for i in range(30)]
    stop = threading.Event()

    result = make_scheduler(StopAfterFirst(sink.url, stop)).tick(stop)

    stored = [reload(session, s) for s in sends]
    assert result.sent == 1 and len(sink.messages) == 1
    assert [s.status for s in stored].count(SendStatus.SENT) == 1
    rest = [s for s in stored if s.status != SendStatus.SENT]
    assert {(s.status, s.claimed_by, s.lease_until, s.attempts) for s in rest} == {(SendStatus.PLANNED, None, None, 0)}


def test_an_email_that_cannot_be_built_fails_alone_and_the_rest_go_out(
    session: Session,
    clock: FixedClock,
    sink: SmtpSink,
    notifier: RecordingNotifier,
    make_scheduler: MakeScheduler,
    monkeypatch,
):
    import bot.delivery.scheduler as scheduler

    broken = due_email(session, clock.now(), "broken@buyer.example")
    fine = due_email(session, clock.now(), "fine@buyer.example")
    build = scheduler.draft_for

    def draft_for(session, send, links=None):  # type: ignore[no-untyped-def]
        if send.id == broken.id:
            raise RuntimeError("step 1 has vanished")
        return build(session, send, links)

    monkeypatch.setattr(scheduler, "draft_for", draft_for)
    make_scheduler().tick()

    assert (reload(session, broken).status, reload(session, broken).reason) == (
        SendStatus.FAILED,
        "the email could not be built: step 1 has vanished",
    )
    assert reload(session, fine).status == SendStatus.SENT and len(sink.messages) == 1
    assert notifier.told("send_failed") == [broken.id]


@pytest.mark.postgres
def test_a_worker_recording_what_the_server_said_takes_the_enrollments_before_the_sends(
    engine: Engine, session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: Callable[..., Scheduler]
):
    """So that a reply ending several enrollments (each before its sends) and a worker never wait on each other."""
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite's writers take turns)")
    ended, other = (
        due_email(session, clock.now(), "ada@buyer.example"),
        due_email(session, clock.now(), "bob@buyer.example"),
    )
    session.commit()
    worker, results = make_scheduler(), []
    with Session(engine) as reply:
        enrollments.lock_many(reply, [ended.enrollment_id])  # a reply ending it has taken it: its sends come next
        pid = reply.execute(text("SELECT pg_backend_pid()")).scalar_one()
        thread = threading.Thread(target=lambda: results.append(worker.tick()))
        thread.start()
        with engine.connect() as watch:
            waits = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
            for _ in range(6_000):
                if watch.execute(waits, {"pid": pid}).scalar_one():
                    break
                thread.join(0.005)
                assert thread.is_alive(), "the worker never waited for the enrollment"
            else:
                raise AssertionError("the worker never waited for the enrollment")
        assert len(sink.messages) == 2, "both emails handed over: the worker waits to record them"

        # It holds neither email's row meanwhile: the reply takes its sends without waiting.
        held = select(Send.id).where(col(Send.id).in_([ended.id, other.id])).with_for_update(nowait=True)
        assert len(reply.exec(held).all()) == 2
        reply.commit()
    thread.join(30)
    assert results and results[0].sent == 2
    assert {reload(session, send).status for send in (ended, other)} == {SendStatus.SENT}
