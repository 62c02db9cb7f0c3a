"""The scheduler: claims due sends, delivers them, plans next steps, posts digests.

One `tick()` is one pass. It runs in `bot serve` (a background thread), alone in
`bot worker` (as many replicas as wanted on PostgreSQL) and once in `bot tick`.
The queue (bot/services/queue.py) makes it safe: a send is leased to one worker,
stored as `sending` with its Message-ID before the server sees it, and marked
`sent` with the enrollment's next step planned in one transaction after the
server's 250.

Commits are per chunk of CHUNK emails, not per email, and the work is shared: the
delivering thread drafts emails, marks each chunk `sending` and records outcomes
(it alone touches the database), while the emails are handed over one by one
elsewhere, so SMTP round trips overlap database work: by a thread of this process
for a few emails, by a sender process (bot/delivery/sender.py) for large batches.
If a worker is killed, at most two chunks (the one being handed over and one not
yet recorded) are left `sending`; they become uncertain for their reps.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import queue as queue_module
import socket
import sys
import threading
import uuid
from dataclasses import dataclass, field
from typing import Callable, Sequence

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.clock import Clock, SystemClock
from bot.core.rules import StepKind
from bot.delivery.mail import NotSendable, Outgoing, email_for
from bot.delivery.ports import DeliveryError, MailTransport, Notifier, Outbound
from bot.delivery.sender import Handed, SenderGone, SenderProcess, hand_chunk
from bot.delivery.transports import transport_for
from bot.services import digest, queue
from bot.store.models import Campaign, Enrollment, Person, Rep, Send, Step
from bot.settings import Settings

log = logging.getLogger(__name__)

# Sends claimed (leased) per batch. Each batch ends with the hand-over idle while
# the last chunk is recorded and the next batch is claimed and loaded; 500 makes that
# pause a fifth of what it was at 100 (about +9% on bench/dispatch.py). Claimed sends a
# killed worker never marked are only delayed: they are claimable again after the lease.
BATCH_SIZE = 500
SENT_NOTICE_EVERY = 100  # sent emails per email_sent call: reps' messages and the feed are not held for a whole batch
# Emails marked `sending` per commit; a killed worker leaves at most two chunks uncertain.
# Each chunk costs a handful of round trips to PostgreSQL whatever its size: 20 rather
# than 10 is +15-40% emails/s there (bench/dispatch.py), for at most 40 uncertain emails
# instead of 20 when a worker is killed.
CHUNK = 20
# Batches from this size on are handed over by a sender process. Starting one costs
# about 65 ms, won back at about 0.2 ms an email (bench/dispatch.py); once started,
# it serves the rest of the pass.
SENDER_PROCESS_FROM = 300
DIGEST_EVERY = dt.timedelta(minutes=1)  # cron's resolution
# GIL switch interval for a process that is only the scheduler loop (`bot worker`); it
# matters for batches handed over by a thread (below SENDER_PROCESS_FROM). That thread
# lets the GIL go at every socket call (a poll and a send or recv per SMTP command, four
# commands per email) and must get it back from the delivering thread, which drafts
# meanwhile; with CPython's default of 5 ms it often waits longer than the server took
# to answer. 100 µs bounds that wait, for a few more forced switches (measured: 20-50 µs
# were no better). Not set in `bot serve`, where Slack requests share the process.
WORKER_SWITCH_INTERVAL = 0.0001


def favour_hand_over() -> None:
    """Tune this process for delivering: call it once in a process that runs only the scheduler."""
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL)


@dataclass
class TickResult:
    """What a pass did."""

    sent: int = 0
    tasks: int = 0  # tasks posted to their reps (due task steps, and emails that became tasks)
    failed: int = 0
    uncertain: int = 0
    retried: int = 0  # temporary failures planned again for later
    digests: int = 0

    def add(self, other: TickResult) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def idle(self) -> bool:
        return not any(vars(self).values())

    def __str__(self) -> str:
        text = f"sent {_count(self.sent, 'email')}, queued {_count(self.tasks, 'task')}, {self.failed} failed"
        extras = [f"{self.uncertain} uncertain", f"{self.retried} to retry", f"{_count(self.digests, 'digest')} posted"]
        return ", ".join([text, *(extra for extra, n in zip(extras, (self.uncertain, self.retried, self.digests)) if n)])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass
class _Batch:
    """Work done in a batch whose notifications go out after its commits."""

    result: TickResult = field(default_factory=TickResult)
    sent_ids: list[int] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class _Ready:
    """An email ready to hand over: the delivering session's send, its message, what to store."""

    send: Send
    outgoing: Outgoing
    handing: queue.Handing
    marked_at: dt.datetime | None = None  # when it was marked `sending`
    skipped: bool = False  # no longer this worker's to send (found when marking)


@dataclass
class _Outcome:
    ready: _Ready
    at: dt.datetime
    handed: bool = False  # given to the server (then `error` says how that went)
    error: DeliveryError | None = None


class _HandOver:
    """Hands chunks of emails, already marked `sending`, to the server; outcomes come back.

    Two ways, one contract: in a thread of this process (any transport; small
    batches), or through the sender process (bot/delivery/sender.py; large batches).
    Neither touches the database: the delivering thread records every outcome.
    """

    def __init__(self, scheduler: Scheduler, stop: threading.Event) -> None:
        self.scheduler = scheduler
        self.stop = stop
        self.in_flight = 0  # chunks handed on whose outcomes are not recorded yet
        self.broken = False  # nothing more can be handed over (the sender process stopped)

    def put(self, chunk: list[_Ready]) -> None:
        """Hand on a chunk marked `sending` (each email is handed over unless skipped or stopping)."""
        raise NotImplementedError

    def finished(self, *, wait: bool = False) -> list[_Outcome] | None:
        """The outcomes of a chunk done; None when none is ready (or `wait`: when none is left)."""
        raise NotImplementedError

    def close(self, *, abort: bool) -> None:
        """Let go (`abort`: the delivering thread failed, hand nothing more over)."""

    def _outcomes(self, chunk: list[_Ready], handed: Sequence[Handed]) -> list[_Outcome]:
        # A chunk's outcomes are stamped when it is done: within milliseconds of each 250.
        at = self.scheduler.clock.now()
        return [
            _Outcome(ready, at, handed=one.handed, error=one.error) for ready, one in zip(chunk, handed)
        ]

    @staticmethod
    def _wires(chunk: list[_Ready]) -> list[Outbound | None]:
        """What to hand over: each email's wire form, None for one to skip."""
        return [None if ready.skipped else ready.outgoing.wire for ready in chunk]


class _ThreadHandOver(_HandOver):
    """A thread of this process hands the emails over with the scheduler's own transport."""

    def __init__(self, scheduler: Scheduler, stop: threading.Event) -> None:
        super().__init__(scheduler, stop)
        self.abort = threading.Event()  # the delivering thread failed: hand nothing more
        self.inbox: queue_module.SimpleQueue[list[_Ready] | None] = queue_module.SimpleQueue()
        self.outbox: queue_module.SimpleQueue[list[_Outcome] | BaseException] = queue_module.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=f"hand-over {scheduler.worker_id}", daemon=True)
        self.thread.start()

    def put(self, chunk: list[_Ready]) -> None:
        self.in_flight += 1
        self.inbox.put(chunk)

    def finished(self, *, wait: bool = False) -> list[_Outcome] | None:
        if not self.in_flight:
            return None
        try:
            item = self.outbox.get(block=wait)
        except queue_module.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        self.in_flight -= 1
        return item

    def close(self, *, abort: bool) -> None:
        if abort:
            self.abort.set()
        self.inbox.put(None)
        self.thread.join()

    def _run(self) -> None:
        go_on = lambda: not (self.stop.is_set() or self.abort.is_set())  # noqa: E731
        try:
            while (chunk := self.inbox.get()) is not None:
                self.outbox.put(self._outcomes(chunk, hand_chunk(self.scheduler.transport, self._wires(chunk), go_on)))
        except BaseException as exc:  # the delivering thread re-raises it
            self.outbox.put(exc)


class _ProcessHandOver(_HandOver):
    """The sender process hands the emails over, on a core of its own."""

    def __init__(self, scheduler: Scheduler, stop: threading.Event, sender: SenderProcess) -> None:
        super().__init__(scheduler, stop)
        self.sender = sender
        self.pending: collections.deque[list[_Ready]] = collections.deque()  # with the sender, oldest first
        self.kept: list[list[_Outcome]] = []  # chunks not given to the sender (stopping, or it stopped)

    def put(self, chunk: list[_Ready]) -> None:
        self.in_flight += 1
        if not (self.stop.is_set() or self.broken):
            try:
                self.sender.submit(self._wires(chunk))
                self.pending.append(chunk)
                return
            except SenderGone:
                self._lost()
        self.kept.append(self._outcomes(chunk, [Handed(False)] * len(chunk)))

    def finished(self, *, wait: bool = False) -> list[_Outcome] | None:
        if not self.in_flight:
            return None
        if self.kept:
            outcomes = self.kept.pop()
        else:
            if not wait and not self.sender.ready():
                return None
            try:
                handed = self.sender.outcome()
            except SenderGone:
                self._lost()
                outcomes = self.kept.pop()
            else:
                outcomes = self._outcomes(self.pending.popleft(), handed)
        self.in_flight -= 1
        return outcomes

    def close(self, *, abort: bool) -> None:
        if abort or self.broken:
            self.scheduler._end_sender(now=True)

    def _lost(self) -> None:
        """The sender stopped: whatever it had may or may not have gone out."""
        if not self.broken:
            log.error("the sender process stopped with emails in hand: they are uncertain")
        self.broken = True
        lost = DeliveryError("the sender process stopped while it had this email: it may or may not have gone out", uncertain=True)
        while self.pending:
            chunk = self.pending.popleft()
            self.kept.append(self._outcomes(chunk, [Handed(False) if ready.skipped else Handed(True, lost) for ready in chunk]))


class Scheduler:
    """Delivers due sends; also the Deliverer behind the Slack app's Send button."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        transport: MailTransport,
        notifier: Notifier,
        settings: Settings,
        worker_id: str | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        sender_process_from: int | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.transport = transport
        self.notifier = notifier
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.batch_size = batch_size
        # Batches of this many emails or more are handed over by a sender process (None: never).
        self.sender_process_from = sender_process_from
        self._sender: SenderProcess | None = None  # started for the first such batch of a pass
        self.lease = dt.timedelta(seconds=settings.scheduler_lease_seconds)
        # Housekeeping (lost workers, digests) runs now and then, so an idle pass is one query.
        self._next_recovery: dt.datetime | None = None
        self._next_digests: dt.datetime | None = None
        # One SMTP connection: the loop and the Send button take turns with it.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- one pass ---------------------------------------------------------------------
    def tick(self, stop: threading.Event | None = None) -> TickResult:
        """One pass: recover lost sends, deliver everything due, post due tasks and digests."""
        result = TickResult()
        now = self.clock.now()
        if self._next_recovery is None or now >= self._next_recovery:
            result.uncertain += self._recover(now)
            self._next_recovery = now + min(self.lease / 2, dt.timedelta(minutes=1))
        try:
            while stop is None or not stop.is_set():
                with Session(self.engine, expire_on_commit=False) as session:
                    ids = queue.claim_due(session, self.clock.now(), self.worker_id, limit=self.batch_size, lease=self.lease)
                    session.commit()
                if not ids:
                    break
                result.add(self._deliver_claimed(ids, stop))
        finally:
            self._close()
        now = self.clock.now()
        if self._next_digests is None or now >= self._next_digests:
            result.digests += self._digests(now)
            self._next_digests = now.replace(second=0, microsecond=0) + DIGEST_EVERY
        return result

    def deliver(self, send_ids: Sequence[int]) -> TickResult:
        """Deliver these planned sends now, whatever their due time; a second call is a no-op."""
        with Session(self.engine, expire_on_commit=False) as session:
            ids = queue.claim(session, send_ids, self.clock.now(), self.worker_id, lease=self.lease)
            session.commit()
        if not ids:
            return TickResult()
        try:
            return self._deliver_claimed(ids, None)
        finally:
            self._close()

    # --- the loop ---------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Pass after pass, every SCHEDULER_INTERVAL seconds, until `stop` is set.

        Stopping finishes the email in flight and gives the rest of the batch back.
        """
        log.info("scheduler %s started", self.worker_id)
        while not stop.is_set():
            try:
                result = self.tick(stop)
                if not result.idle:
                    log.info("%s", result)
            except Exception:  # a database or Slack outage must not end the loop
                log.exception("scheduler pass failed; trying again in %ss", self.settings.scheduler_interval)
            stop.wait(self.settings.scheduler_interval)
        log.info("scheduler %s stopped", self.worker_id)

    def start(self) -> None:
        """Run the loop in a background thread (for `bot serve`)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name="scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the background loop after the email in flight."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # --- delivering a claimed batch ---------------------------------------------------
    def _deliver_claimed(self, ids: Sequence[int], stop: threading.Event | None) -> TickResult:
        """Deliver claimed sends: this thread drafts and records, a hand-over gives them to the server.

        Each chunk of emails is marked `sending` (one commit) just before it is
        handed on; while the server takes it, this thread prepares the next chunk
        and records the outcomes of the last one (sent and the next step planned,
        in one transaction), so SMTP round trips overlap database work.
        """
        batch = _Batch()
        stop = stop or threading.Event()
        with self._lock, Session(self.engine, expire_on_commit=False) as session:
            sends = _load(session, ids)
            hand_over = self._hand_over(len(sends), stop)
            done = False
            try:
                chunk: list[_Ready] = []
                for index, send in enumerate(sends):
                    if stop.is_set() or hand_over.broken:
                        queue.release(session, [s.id for s in sends[index:]], self.worker_id)  # type: ignore[misc]
                        break
                    ready = self._prepare(session, send, batch)
                    if ready is not None:
                        chunk.append(ready)
                    if len(chunk) == CHUNK:
                        self._pass_on(session, hand_over, chunk, batch)
                        chunk = []
                self._pass_on(session, hand_over, chunk, batch)
                while (outcomes := hand_over.finished(wait=True)) is not None:
                    self._record(session, outcomes, batch)
                self._commit(session, batch)
                done = True
            finally:
                hand_over.close(abort=not done)
        self._notify(batch)
        self._tell_sent(batch)
        if hand_over.broken:
            raise SenderGone("the sender process stopped in the middle of a batch; the rest of it is claimable again")
        return batch.result

    def _hand_over(self, count: int, stop: threading.Event) -> _HandOver:
        if self._sender is not None or (self.sender_process_from is not None and count >= self.sender_process_from):
            if self._sender is None:
                try:
                    self._sender = SenderProcess(self.transport)
                except (SenderGone, OSError) as exc:
                    log.warning("could not start a sender process (%s): handing emails over in this one", exc)
            if self._sender is not None:
                return _ProcessHandOver(self, stop, self._sender)
        return _ThreadHandOver(self, stop)

    def _end_sender(self, *, now: bool = False) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close(now=now)

    def _prepare(self, session: Session, send: Send, batch: _Batch) -> _Ready | None:
        """An email ready to hand over; a task or an email that cannot go out is dealt with here."""
        now = self.clock.now()
        if send.kind == StepKind.TASK:
            if queue.mark_queued(session, send, self.worker_id, now):
                batch.result.tasks += 1
                batch.after_commit.append(lambda id=send.id: self.notifier.task_due(id))
            return None
        try:
            outgoing = email_for(session, send, now)
        except NotSendable as problem:
            self._not_sendable(session, send, now, problem, batch)
            return None
        except Exception as exc:  # one broken send must not hold up the rest of the queue
            log.exception("send %s: the email could not be built", send.id)
            self._not_sendable(session, send, now, NotSendable(f"the email could not be built: {exc}", task=False), batch)
            return None
        draft = outgoing.draft
        handing = queue.Handing(
            send.id, outgoing.message_id, draft.subject, draft.body, draft.in_reply_to, " ".join(draft.references) or None  # type: ignore[arg-type]
        )
        return _Ready(send, outgoing, handing)

    def _pass_on(self, session: Session, hand_over: _HandOver, chunk: list[_Ready], batch: _Batch) -> None:
        """Record the chunks done meanwhile, mark this one `sending`, commit, then hand it on.

        One commit for both: the mark is stored before the server sees an email (the
        crash contract) and the records cost no transaction of their own. At most two
        chunks are marked and not yet recorded: if the worker is killed, no more than
        that are left `sending` (and become uncertain for their reps).
        """
        while (outcomes := hand_over.finished(wait=bool(chunk) and hand_over.in_flight >= 2)) is not None:
            self._record(session, outcomes, batch)
        now = self.clock.now()
        mine = queue.mark_sending(session, [ready.handing for ready in chunk], self.worker_id, now, lease=self.lease)
        self._commit(session, batch)
        if not chunk:
            return
        for ready in chunk:
            ready.marked_at, ready.skipped = now, ready.handing.send_id not in mine
        hand_over.put(chunk)

    def _commit(self, session: Session, batch: _Batch) -> None:
        """Commit, then tell reps what the transaction settled."""
        session.commit()
        self._notify(batch)
        if len(batch.sent_ids) >= SENT_NOTICE_EVERY:
            self._tell_sent(batch)

    def _record(self, session: Session, outcomes: list[_Outcome], batch: _Batch) -> None:
        """Store what the server said about a chunk (the caller commits)."""
        delivered: list[tuple[Send, dt.datetime]] = []
        # One flush for the chunk, at commit.
        with session.no_autoflush:
            for outcome in outcomes:
                send, now, error = outcome.ready.send, outcome.at, outcome.error
                if outcome.ready.skipped:
                    continue  # another worker has it, or its enrollment ended meanwhile
                if outcome.handed and error is None:
                    # The usual case, one UPDATE for the chunk; nothing in this batch reads
                    # the session's copy of a delivered send again, so it is not refreshed.
                    delivered.append((send, now))
                    if notice := outcome.ready.outgoing.draft.notice:
                        batch.after_commit.append(lambda id=send.id, text=notice: self.notifier.send_notice(id, text))
                    continue
                marked_at = outcome.ready.marked_at
                assert marked_at is not None  # every chunk is marked before it is handed over
                # The moves below read the send as mark_sending left it (its attempts).
                queue.handed(send, outcome.ready.handing, marked_at, self.lease)
                if error is None:
                    queue.not_handed(session, send, self.worker_id, now)
                elif error.uncertain:
                    queue.mark_uncertain(session, send, self.worker_id, now, error.reason)
                    batch.result.uncertain += 1
                    batch.after_commit.append(lambda id=send.id: self.notifier.send_uncertain(id))
                elif error.retry and not queue.retry_later(session, send, self.worker_id, now, error.reason):
                    batch.result.retried += 1
                else:
                    if not error.retry:
                        queue.mark_failed(session, send, self.worker_id, now, error.reason)
                    batch.result.failed += 1
                    batch.after_commit.append(lambda id=send.id: self.notifier.send_failed(id))
            sent = queue.mark_sent(session, delivered, self.worker_id)
        batch.result.sent += len(sent)
        batch.sent_ids.extend(send.id for send in sent)  # type: ignore[misc]

    def _tell_sent(self, batch: _Batch) -> None:
        sent, batch.sent_ids = batch.sent_ids, []
        if sent:
            self._safely(self.notifier.email_sent, sent)

    def _close(self) -> None:
        with self._lock:
            self.transport.close()
            self._end_sender()

    def _not_sendable(self, session: Session, send: Send, now: dt.datetime, problem: NotSendable, batch: _Batch) -> None:
        if problem.task:
            if queue.make_task(session, send, self.worker_id, now, problem.reason):
                batch.result.tasks += 1
                batch.after_commit.append(lambda id=send.id: self.notifier.task_due(id))
        elif queue.mark_failed(session, send, self.worker_id, now, problem.reason):
            batch.result.failed += 1
            batch.after_commit.append(lambda id=send.id: self.notifier.send_failed(id))

    def _notify(self, batch: _Batch) -> None:
        calls, batch.after_commit = batch.after_commit, []
        for call in calls:
            self._safely(call)

    def _safely(self, call: Callable[..., object], *args: object) -> None:
        # A Slack outage must not undo or repeat a delivery: the send's state is stored.
        try:
            call(*args)
        except Exception:
            log.exception("telling a rep failed")

    # --- housekeeping -----------------------------------------------------------------
    def _recover(self, now: dt.datetime) -> int:
        with Session(self.engine, expire_on_commit=False) as session:
            lost = queue.recover_lost(session, now)
            unposted = queue.unposted_tasks(session, now)
            session.commit()
        for send_id in lost:
            log.warning("send %s was in flight when its worker stopped: uncertain", send_id)
            self._safely(self.notifier.send_uncertain, send_id)
        for send_id in unposted:
            log.warning("task %s never reached its rep in Slack: posting it again", send_id)
            self._safely(self.notifier.task_due, send_id)
        return len(lost)

    def _digests(self, now: dt.datetime) -> int:
        posted = 0
        with Session(self.engine, expire_on_commit=False) as session:
            due = digest.due_digests(session, now, self.settings.digest_cron)
            session.rollback()
            for item in due:
                claimed = digest.claim_digest(session, item.rep_id, item.local_date, now)
                session.commit()
                if not claimed or not item.listable:
                    continue  # another worker has it, or there is nothing to list today
                try:
                    shown = self.notifier.digest(item.rep_id)
                except Exception:
                    log.exception("posting the digest of %s failed", item.rep_id)
                    continue
                if shown:
                    digest.record_posted(session, item.rep_id, item.local_date, self.clock.now())
                    session.commit()
                    posted += 1
        return posted


def _load(session: Session, ids: Sequence[int]) -> list[Send]:
    """The claimed sends in due order, with everything their drafts read in the session."""
    sends = list(session.exec(select(Send).where(col(Send.id).in_(ids)).order_by(col(Send.due_at), col(Send.id))))
    enrollments = _by_id(session, Enrollment, {s.enrollment_id for s in sends})
    loaded = [
        *enrollments,
        *_by_id(session, Step, {s.step_id for s in sends}),
        *_by_id(session, Send, {s.thread_of_id for s in sends if s.thread_of_id}),
        *_by_id(session, Person, {e.person_id for e in enrollments}),
        *_by_id(session, Campaign, {e.campaign_id for e in enrollments}),
        *session.exec(select(Rep).where(col(Rep.slack_user_id).in_({s.rep_id for s in sends}))),
    ]
    # The session only holds objects weakly: keep them for the batch, so that
    # draft_for's and progress's session.get() find them without a query.
    session.info["batch"] = loaded
    return sends


def _by_id(session: Session, model: type, ids: set[int]) -> list:  # type: ignore[type-arg]
    if not ids:
        return []
    return list(session.exec(select(model).where(col(model.id).in_(ids))))  # type: ignore[attr-defined]


class LoggingNotifier:
    """Tells reps nothing, but logs what it would have said (without email bodies)."""

    def task_due(self, send_id: int) -> None:
        log.info("task %s is due for its rep", send_id)

    def send_failed(self, send_id: int) -> None:
        log.warning("send %s failed; its enrollment waits for the rep", send_id)

    def send_uncertain(self, send_id: int) -> None:
        log.warning("send %s may or may not have gone out; its enrollment waits for the rep", send_id)

    def send_notice(self, send_id: int, text: str) -> None:
        log.info("send %s: %s", send_id, text)

    def email_sent(self, send_ids: Sequence[int]) -> None:
        log.debug("%d emails sent", len(send_ids))

    def digest(self, rep_id: str) -> bool:
        log.info("the digest of %s is due (no Slack token: not posted)", rep_id)
        return False


def build_scheduler(settings: Settings, engine: Engine, notifier: Notifier | None, clock: Clock | None = None) -> Scheduler:
    """A scheduler delivering over SMTP_URL, or into ./outbox/ without it (no notifier: logs only)."""
    return Scheduler(
        engine,
        clock or SystemClock(),
        transport_for(settings),
        notifier or LoggingNotifier(),
        settings,
        sender_process_from=SENDER_PROCESS_FROM,
    )
