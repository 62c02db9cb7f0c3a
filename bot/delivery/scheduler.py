"""The scheduler: claims due sends, delivers them, plans next steps, posts digests.

One `tick()` is one pass. It runs in `bot serve` (a background thread), alone in
`bot worker` (as many replicas as wanted on PostgreSQL) and once in `bot tick`.

Delivery is a pipeline, each stage in one place:

    claim      due sends, leased to this worker (bot/services/queue.py), a few at a
               time: as many as its connections hand over soon, so workers share a burst
    draft      what each send says (bot/services/drafts.py)
    compose    the draft as an email on the wire (bot/delivery/mail.py; pure)
    hand over  each mailbox's lane, up to this worker's share of its connection limit
               (bot/delivery/lanes.py; the shares: bot/services/connections.py)
    record     sent (and the next step planned), retried, failed or uncertain

This thread alone touches the database. Before a chunk of emails is handed over it
is marked `sending`, with each Message-ID, within each mailbox's limits, in one
commit with the outcomes recorded since the last one. A lane takes at most twice
its connections, so a killed worker leaves at most twice the connections it had
open `sending`; those become uncertain for their reps, never sent twice.

Recovering lost sends, resuming out-of-office pauses and posting digests are periodic
jobs beside the pipeline.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.background import Background
from bot.clock import Clock, SystemClock
from bot.core.rules import StepKind
from bot.delivery.lanes import Lane, Lanes
from bot.delivery.mail import NotSendable, compose_email, new_message_id, sendable
from bot.delivery.ports import Email, Notifier, Outcome, Route, Router
from bot.delivery.routes import router_for
from bot.mail import mailboxes, sent_copies
from bot.services import connections, digest, enrollments, queue, suppression, sync, unsubscribe
from bot.services.drafts import draft_for, not_built
from bot.settings import Settings
from bot.store import locks
from bot.store.models import Campaign, Enrollment, EnrollmentStatus, Mailbox, Person, Rep, Send, Step, SyncEvent

log = logging.getLogger(__name__)

# Sends claimed at most at once; fewer when the pass's lanes would not get to them soon.
BATCH_SIZE = 500
# Emails per chunk marked `sending` in one commit, at most.
CHUNK = 20
SENT_NOTICE_EVERY = 100  # sent emails per email_sent call: reps' messages and the feed are not held for a whole batch
DIGEST_EVERY = dt.timedelta(minutes=1)  # cron's resolution
SLOW_DOWN = dt.timedelta(minutes=1)  # how long a mailbox that asked to slow down waits
RELAY_LOGIN_RETRY = dt.timedelta(minutes=5)  # how long the relay waits after refusing our login
SHARE_EVERY = dt.timedelta(seconds=1)  # how often a worker asks again for its share of a mailbox's connections
# A worker granted none of a mailbox's connections (others hold them all) asks again,
# STARVED_AGAIN seconds apart, STARVED_ASKS times before it leaves that mailbox's emails to
# the others: they see it asking within SHARE_EVERY and come down to their fair shares.
STARVED_ASKS = 8
STARVED_AGAIN = SHARE_EVERY.total_seconds() / 4


@dataclass
class TickResult:
    """What a pass did."""

    sent: int = 0
    tasks: int = 0  # tasks posted to their reps (due task steps, and emails that became tasks)
    failed: int = 0
    uncertain: int = 0
    retried: int = 0  # temporary failures planned again for later
    held: int = 0  # emails a mailbox's limit, slow-down or refused login holds back
    digests: int = 0

    def add(self, other: TickResult) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def idle(self) -> bool:
        return not any(vars(self).values())

    def __str__(self) -> str:
        text = f"sent {_count(self.sent, 'email')}, queued {_count(self.tasks, 'task')}, {self.failed} failed"
        extras = [
            (self.uncertain, f"{self.uncertain} uncertain"),
            (self.retried, f"{self.retried} to retry"),
            (self.held, f"{self.held} held by limits"),
            (self.digests, f"{_count(self.digests, 'digest')} posted"),
        ]
        return ", ".join([text, *(extra for n, extra in extras if n)])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass
class _Pass:
    """One delivery pass: its session, lanes, the sends in hand, and what to tell reps after commits."""

    session: Session
    lanes: Lanes
    routes: dict[str, Route] = field(default_factory=dict)  # by rep, for the pass
    waiting: collections.deque[Send] = field(default_factory=collections.deque)  # claimed, in due order
    claimed: dict[int, Send] = field(default_factory=dict)  # waiting, or marked `sending` and not recorded
    full: set[str] = field(default_factory=set)  # mailboxes at a limit: nothing more this pass
    shares: dict[str, dt.datetime] = field(default_factory=dict)  # mailbox -> when its share was last asked for
    # mailboxes whose lane held more connections than its share when last asked
    over: set[str] = field(default_factory=set)
    # mailbox -> asks in a row granted no connection, and when the last was (time.monotonic(): the
    # others come down in real time, whatever the clock says)
    starving: dict[str, tuple[int, float]] = field(default_factory=dict)
    starved: set[str] = field(default_factory=set)  # mailboxes whose connections other workers hold all of
    renewed_at: dt.datetime | None = None  # when the shares' lease was last renewed
    planned: bool = False  # emails recorded sent since the last claim planned next steps (maybe due now)
    result: TickResult = field(default_factory=TickResult)
    sent_ids: list[int] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def denied(self, mailbox: str) -> int:
        """Asks in a row this pass that were granted none of the mailbox's connections."""
        return self.starving.get(mailbox, (0, 0.0))[0]


class Scheduler(Background):
    """Delivers due sends; also the Deliverer behind the Slack app's Send button."""

    thread_name = "scheduler"

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        router: Router,
        notifier: Notifier,
        settings: Settings,
        worker_id: str | None = None,
        *,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.router = router
        self.notifier = notifier
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.batch_size = batch_size
        self.lease = dt.timedelta(seconds=settings.scheduler_lease_seconds)
        self.links = unsubscribe.links_for(settings)  # None: emails carry no unsubscribe link
        # Housekeeping (lost workers, digests) runs now and then, so an idle pass is one query.
        self._next_recovery: dt.datetime | None = None
        self._next_digests: dt.datetime | None = None
        # The loop and the Send button take turns: each pass holds its mailboxes' connections.
        self._lock = threading.Lock()
        super().__init__()

    # --- one pass ---------------------------------------------------------------------
    def tick(self, stop: threading.Event | None = None) -> TickResult:
        """One pass: recover lost sends, deliver everything due, post due tasks and digests."""
        result = TickResult()
        now = self.clock.now()
        if self._next_recovery is None or now >= self._next_recovery:
            result.uncertain += self._recover(now)
            self._next_recovery = now + min(self.lease / 2, dt.timedelta(minutes=1))

        def claim_due(session: Session, limit: int, skip_reps: set[str]) -> list[int]:
            return queue.claim_due(
                session, self.clock.now(), self.worker_id, limit=limit, lease=self.lease, skip_reps=skip_reps
            )

        result.add(self._deliver(claim_due, stop or threading.Event()))
        now = self.clock.now()
        if self._next_digests is None or now >= self._next_digests:
            result.digests += self._digests(now)
            self._next_digests = now.replace(second=0, microsecond=0) + DIGEST_EVERY
        return result

    def deliver(self, send_ids: Sequence[int]) -> TickResult:
        """Deliver these planned sends now, whatever their due time; a second call is a no-op."""
        claimed = False

        def claim_these(session: Session, limit: int, skip_reps: set[str]) -> list[int]:
            nonlocal claimed
            if claimed:
                return []
            claimed = True
            return queue.claim(session, send_ids, self.clock.now(), self.worker_id, lease=self.lease)

        return self._deliver(claim_these, threading.Event())

    # --- the loop ---------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Pass after pass, every SCHEDULER_INTERVAL seconds, until `stop` is set.

        Stopping finishes the emails in flight and gives the rest back.
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

    # --- the pipeline -------------------------------------------------------------------
    def _deliver(self, claim: Callable[[Session, int, set[str]], list[int]], stop: threading.Event) -> TickResult:
        """Claim, draft, compose, hand over and record, until nothing claimable is left."""
        with self._lock, Session(self.engine, expire_on_commit=False) as session:
            work = _Pass(session, Lanes(self.clock, stop))
            claimable = True
            try:
                while True:
                    self._record(work, work.lanes.finished())
                    if stop.is_set():
                        claimable = False
                        self._release(work)
                    elif claimable and len(work.waiting) < self._backlog(work):
                        claimable = self._claim(work, claim)
                    chunk = self._take(work)
                    if chunk:
                        self._hand_on(work, chunk)
                    elif work.lanes.in_flight:
                        self._record(work, work.lanes.finished(wait_for=self._enough(work)))
                    elif not (claimable or work.waiting):
                        if not work.planned:
                            break
                        # Steps planned by what was just sent may be due already (a task right
                        # after an email): claim once more.
                        self._commit(work)
                        work.planned, claimable = False, True
                    else:
                        self._commit(work)  # what was taken went elsewhere (tasks, failures)
                        if self._waiting_for_shares(work):
                            stop.wait(STARVED_AGAIN)
                self._commit(work)
            finally:
                self._release(work)
                work.lanes.close()
                self._record(work, work.lanes.finished())
                if work.shares:  # its connections are closed
                    connections.release(session, self.worker_id, still_wanted=work.starved)
                session.commit()
        self._notify(work)
        self._tell_sent(work)
        return work.result

    def _backlog(self, work: _Pass) -> int:
        """How many claimed sends to keep in hand: what the lanes in use hold, or a chunk to start."""
        return min(self.batch_size, max(CHUNK, sum(lane.capacity for lane in work.lanes.lanes.values())))

    def _enough(self, work: _Pass) -> int:
        """Outcomes to wait for before a lane with emails waiting has room again (records go in groups)."""
        busy = {self._lane(work, send.rep_id).route.key for send in work.waiting}
        lanes = [lane for key, lane in work.lanes.lanes.items() if key in busy and not lane.held] or list(
            work.lanes.lanes.values()
        )
        return max(1, min(lane.in_flight - lane.capacity // 2 for lane in lanes))

    def _claim(self, work: _Pass, claim: Callable[[Session, int, set[str]], list[int]]) -> bool:
        """Claim more due sends (skipping reps whose lane is full); False once none are left."""
        busy = {send.rep_id for send in work.waiting if self._lane(work, send.rep_id).room <= 0}
        left = {rep for rep, route in work.routes.items() if route.key in work.full}  # for later, or other workers
        wanted = 2 * self._backlog(work) - len(work.waiting)
        # Committed with the next chunk's marks: till then the rows are this worker's
        # alone (others skip locked rows), and one commit serves both.
        ids = claim(work.session, wanted, busy | left)
        if not ids:
            return bool(busy)  # the reps skipped may have more once their lanes have room
        # A send in hand whose claim ran out while it waited, and that nobody else took, is
        # claimed again (its lease renewed): it stays in hand once.
        fresh = [send_id for send_id in ids if send_id not in work.claimed]
        sends = _load(work.session, fresh) if fresh else []
        for send in sends:
            self._lane(work, send.rep_id)  # its share of the mailbox's connections is asked for before it is taken
        work.waiting.extend(sends)
        work.claimed.update((send.id, send) for send in sends)  # type: ignore[misc]  # a stored row's id: int | None on the model, never None here
        return True

    def _lane(self, work: _Pass, rep_id: str) -> Lane:
        route = work.routes.get(rep_id)
        if route is None:
            route = work.routes[rep_id] = self.router.route(work.session, rep_id)
        return work.lanes.lane(route)

    def _take(self, work: _Pass) -> list[Email]:
        """Draft and compose the next chunk of emails that lanes have room for, in due order.

        Due tasks, and emails that cannot go out, are dealt with on the way.
        """
        self._ask_shares(work)
        chunk: list[Email] = []
        room: dict[str, int] = {}
        kept: collections.deque[Send] = collections.deque()
        while work.waiting and len(chunk) < CHUNK:
            send = work.waiting.popleft()
            lane = self._lane(work, send.rep_id)
            if not lane.connections:  # other workers hold all of them
                if work.denied(lane.route.key) < STARVED_ASKS:
                    kept.append(send)  # they come down to their shares soon
                    continue
                work.starved.add(lane.route.key)  # they take its emails this pass
                work.full.add(lane.route.key)
            if lane.held or lane.route.key in work.full:  # held in the store now, or left to other workers
                queue.release(work.session, [send.id], self.worker_id)  # type: ignore[list-item]  # a stored row's id: int | None on the model, never None here
                del work.claimed[send.id]  # type: ignore[arg-type]  # a stored row's id: int | None on the model, never None here
                continue
            free = room.setdefault(lane.route.key, lane.room)
            if free <= 0:
                kept.append(send)  # its mailbox is busy: it keeps its place, others go on
                continue
            email = self._compose(work, send, lane.route)
            if email is None:
                del work.claimed[send.id]  # type: ignore[arg-type]  # a stored row's id: int | None on the model, never None here
            else:
                room[lane.route.key] = free - 1
                chunk.append(email)
        kept.extend(work.waiting)
        work.waiting = kept
        return chunk

    def _ask_shares(self, work: _Pass) -> None:
        """This worker's share of each mailbox's connections: asked for when its lane is new, then every SHARE_EVERY.

        Also at once when a lane that held more than its share has come down to it: the
        stored share counts those connections until then, and another worker waits for
        them. In a commit of its own, the mailboxes in order, so that two workers never
        wait on each other's locks.
        """
        now = self.clock.now()
        due = [
            lane
            for key, lane in sorted(work.lanes.lanes.items())
            if lane.route.shared
            and (
                key not in work.shares
                or now >= work.shares[key] + SHARE_EVERY
                or (key in work.over and lane.in_use <= lane.granted)
                or (
                    key in work.starving
                    and key not in work.full
                    and time.monotonic() >= work.starving[key][1] + STARVED_AGAIN
                )
            )
        ]
        for lane in due:
            limit, open_now = lane.route.limits.connections, lane.in_use
            granted = connections.share(
                work.session,
                lane.route.key,
                self.worker_id,
                limit=limit,
                wanted=limit,
                open_now=open_now,
                now=now,
                lease=self.lease,
            )
            lane.allow(granted)
            work.shares[lane.route.key] = work.renewed_at = now
            if open_now > granted:
                work.over.add(lane.route.key)
            else:
                work.over.discard(lane.route.key)
            if granted:
                work.starving.pop(lane.route.key, None)
            else:
                work.starving[lane.route.key] = (work.denied(lane.route.key) + 1, time.monotonic())
        if due:
            self._commit(work)

    def _waiting_for_shares(self, work: _Pass) -> bool:
        """Nothing to hand over or record but emails for mailboxes whose connections other workers hold, for now."""
        return bool(work.waiting) and all(
            self._lane(work, send.rep_id).route.key in work.starving for send in work.waiting
        )

    def _compose(self, work: _Pass, send: Send, route: Route) -> Email | None:
        session, now = work.session, self.clock.now()
        if send.kind == StepKind.TASK:
            if queue.mark_queued(session, send, self.worker_id, now):
                work.result.tasks += 1
                sync.record(session, SyncEvent.TASK_QUEUED, [send.id], now)  # type: ignore[list-item]  # a stored Send: its id is set
                work.after_commit.append(_later(self.notifier.task_due, send.id))
            return None
        try:
            draft = draft_for(session, send, self.links)
            sendable(draft)
            assert draft.sender_email is not None
            # A send tried before keeps its Message-ID: the server sees a retry as the same email.
            message_id = send.message_id or new_message_id(draft.sender_email)
            return compose_email(draft, mailbox=route.key, message_id=message_id, date=now)
        except NotSendable as problem:
            self._not_sendable(work, send, now, problem)
        except Exception as exc:  # one broken send must not hold up the rest of the queue
            log.exception("send %s: the email could not be built", send.id)
            self._not_sendable(work, send, now, NotSendable(not_built(exc), task=False))
        return None

    def _hand_on(self, work: _Pass, chunk: list[Email]) -> None:
        """Mark the chunk `sending` within each mailbox's limits, commit, then give it to the lanes.

        One commit for the marks and the outcomes recorded since the last: the mark is
        stored before the server sees an email (the crash contract).
        """
        session, now = work.session, self.clock.now()
        chunk = self._not_suppressed(work, chunk)
        allowed: list[Email] = []
        held: list[tuple[list[Email], queue.Room, Route]] = []
        by_mailbox: dict[str, list[Email]] = {}
        for email in chunk:
            by_mailbox.setdefault(email.mailbox, []).append(email)
        for key, emails in sorted(by_mailbox.items()):  # each mailbox's lock, in order (see _ask_shares)
            route = work.lanes.lanes[key].route
            room = queue.room(session, key, route.limits, now, len(emails))
            if room.free is None or room.free >= len(emails):
                allowed.extend(emails)
                continue
            allowed.extend(emails[: room.free])
            held.append((emails[room.free :], room, route))
            work.full.add(key)
        mine = queue.mark_sending(session, allowed, self.worker_id, now, lease=self.lease)
        handed: list[Email] = []
        for email in allowed:
            send = work.claimed[email.send_id]
            if email.send_id in mine:
                queue.handed(send, email, now, self.lease)
                handed.append(email)
            else:  # taken over by another worker after our lease ran out, or its enrollment ended
                del work.claimed[email.send_id]
        for emails, room, route in held:
            self._held_by_limit(work, emails, room, route)
        self._commit(work)
        for email in handed:
            work.lanes.lanes[email.mailbox].put(email)

    def _not_suppressed(self, work: _Pass, chunk: list[Email]) -> list[Email]:
        """The chunk without emails to suppressed addresses: those enrollments end, their reps are told."""
        suppressed = suppression.suppressed_among(work.session, [to for email in chunk for to in email.recipients])
        if not suppressed:
            return chunk
        if locks.row_locks(work.session):
            self._commit(work)  # the claims' rows go first: ending takes each enrollment before its sends (see _record)
        kept = []
        for email in chunk:
            reason = next((suppressed[to] for to in email.recipients if to in suppressed), None)
            if reason is None:
                kept.append(email)
                continue
            send = work.claimed.pop(email.send_id)
            enrollment = work.session.get(Enrollment, send.enrollment_id)
            assert enrollment is not None
            why = f"not sent: {', '.join(email.recipients)} is suppressed ({reason})"
            enrollments.end_enrollment(work.session, enrollment, EnrollmentStatus.REMOVED, why, self.clock.now())
            work.after_commit.append(_later(self.notifier.send_notice, send.id, why[:1].upper() + why[1:]))
        return kept

    def _held_by_limit(self, work: _Pass, emails: list[Email], room: queue.Room, route: Route) -> None:
        """Emails past a limit wait for the first moment it allows: released, their reps held till then."""
        session, now = work.session, self.clock.now()
        sends = [work.claimed.pop(email.send_id) for email in emails]
        queue.release(session, [email.send_id for email in emails], self.worker_id)
        reps = {send.rep_id for send in sends}
        limit = (
            f"{route.limits.per_day:,} emails per 24 hours"
            if room.daily
            else f"{route.limits.per_minute} emails per minute"
        )
        queue.hold(session, sorted(reps), room.next_at, f"the mailbox's limit of {limit}", now)
        work.result.held += len(emails)
        if room.daily:
            for send in sends:
                if send.rep_id in reps and not queue.told_today(session, send.rep_id, now.date()):
                    reps.discard(send.rep_id)
                    waiting = queue.waiting_for(session, send.rep_id, now)
                    rep = session.get(Rep, send.rep_id)
                    when = room.next_at.astimezone(digest.rep_zone(session, rep)) if rep else room.next_at  # type: ignore[union-attr]  # room.daily: a daily limit reached sets next_at
                    text = (
                        f"Your mailbox reached its limit of {limit}: {_count(waiting, 'email')} wait and go out "
                        f"from {when:%a %d %b %H:%M} on, in order."
                    )
                    work.after_commit.append(_later(self.notifier.send_notice, send.id, text))

    def _release(self, work: _Pass) -> None:
        """Give back the claimed sends not handed on (stopping): others may take them at once."""
        if work.waiting:
            ids = [send.id for send in work.waiting]
            queue.release(work.session, ids, self.worker_id)  # type: ignore[arg-type]  # a stored row's id: int | None on the model, never None here
            for send_id in ids:
                del work.claimed[send_id]  # type: ignore[arg-type]  # a stored row's id: int | None on the model, never None here
            work.waiting.clear()

    def _record(self, work: _Pass, outcomes: list[Outcome]) -> None:
        """Store what the servers said (the caller commits).

        In a transaction of its own that takes the outcomes' enrollments before their
        sends (bot/services/enrollments.py, `lock`), so that a reply ending several
        enrollments at once and this worker never wait on each other.
        """
        session = work.session
        if not outcomes:
            return
        if locks.row_locks(session):
            self._commit(work)  # the rows this transaction holds (claims, task marks) go first
        enrollments.lock_many(session, (work.claimed[outcome.email.send_id].enrollment_id for outcome in outcomes))
        delivered: list[tuple[Send, dt.datetime]] = []
        own: dict[int, Email] = {}  # sent through the rep's own mailbox: its Sent folder may want a copy
        with session.no_autoflush:
            for outcome in outcomes:
                send, now, error = work.claimed.pop(outcome.email.send_id), outcome.at, outcome.error
                if outcome.handed and error is None:
                    delivered.append((send, now))
                    if outcome.email.mailbox == mailboxes.mailbox_key(send.rep_id):
                        own[send.id] = outcome.email  # type: ignore[index]  # a stored Send: its id is set
                    if notice := outcome.email.notice:
                        work.after_commit.append(_later(self.notifier.send_notice, send.id, notice))
                elif not outcome.handed:
                    queue.not_handed(session, send, self.worker_id, now)
                elif error is None:
                    raise AssertionError("an outcome handed over without an error is delivered")
                elif error.holds_mailbox:
                    queue.not_handed(session, send, self.worker_id, now)
                    self._hold_mailbox(work, send, error.reason, refused_login=error.refused_login)
                elif error.uncertain:
                    queue.mark_uncertain(session, send, self.worker_id, now, error.reason)
                    work.result.uncertain += 1
                    work.after_commit.append(_later(self.notifier.send_uncertain, send.id))
                elif error.retry and not queue.retry_later(session, send, self.worker_id, now, error.reason):
                    work.result.retried += 1
                else:
                    if not error.retry:
                        queue.mark_failed(session, send, self.worker_id, now, error.reason)
                    work.result.failed += 1
                    work.after_commit.append(_later(self.notifier.send_failed, send.id))
            if delivered:  # recorded at one instant, the last acceptance (milliseconds apart): one UPDATE
                last = max(at for _, at in delivered)
                delivered = [(send, last) for send, _ in delivered]
            sent = queue.mark_sent(session, delivered, self.worker_id)
            if own:
                recorded = {send.id for send in sent}
                copies = [
                    (send.rep_id, own[send.id], at) for send, at in delivered if send.id in own and send.id in recorded
                ]
                sent_copies.queue_copies(session, copies, self.clock.now())
            sync.emails_sent(session, [send.id for send in sent], self.clock.now())  # type: ignore[misc]  # stored Sends: their ids are set
        work.result.sent += len(sent)
        work.planned = work.planned or bool(sent)
        work.sent_ids.extend(send.id for send in sent)  # type: ignore[misc]  # a stored row's id: int | None on the model, never None here

    def _hold_mailbox(self, work: _Pass, send: Send, reason: str, *, refused_login: bool) -> None:
        """The server asked to slow down, or refused the login: that mailbox's reps wait."""
        now = self.clock.now()
        route = work.routes[send.rep_id]
        reps = sorted(rep for rep, other in work.routes.items() if other.key == route.key)
        mailbox = work.session.get(Mailbox, send.rep_id) if route.key == mailboxes.mailbox_key(send.rep_id) else None
        if refused_login and mailbox is not None:
            until, why = None, f"your mailbox refused the login: {reason}"  # until the rep reconnects it
            mailboxes.mark_broken(work.session, mailbox, reason, now)
        elif refused_login:
            until, why = now + RELAY_LOGIN_RETRY, f"the relay refused the login: {reason}"
            log.error("%s; trying again at %s", why, until.isoformat())
        else:
            until, why = now + SLOW_DOWN, reason
        first = all(queue.held_reason(work.session, rep) != why for rep in reps)
        queue.hold(work.session, reps, until, why, now)
        work.result.held += 1
        if refused_login and first and mailbox is not None:
            work.after_commit.append(_later(self.notifier.mailbox_broken, send.id, why))
        elif refused_login and first:
            work.after_commit.append(_later(self.notifier.send_notice, send.id, why))

    def _commit(self, work: _Pass) -> None:
        """Commit, then tell reps what the transaction settled."""
        now = self.clock.now()
        if work.renewed_at is not None and now >= work.renewed_at + self.lease / 3:
            connections.renew(work.session, self.worker_id, now, self.lease)  # connections idle in lanes count too
            work.renewed_at = now
        work.session.commit()
        self._notify(work)
        while len(work.sent_ids) >= SENT_NOTICE_EVERY:
            self._tell_sent(work, SENT_NOTICE_EVERY)

    def _tell_sent(self, work: _Pass, most: int | None = None) -> None:
        sent, work.sent_ids = work.sent_ids[:most], work.sent_ids[len(work.sent_ids) if most is None else most :]
        if sent:
            self._safely(self.notifier.email_sent, sent)

    def _not_sendable(self, work: _Pass, send: Send, now: dt.datetime, problem: NotSendable) -> None:
        if problem.task:
            if queue.make_task(work.session, send, self.worker_id, now, problem.reason):
                work.result.tasks += 1
                sync.record(work.session, SyncEvent.TASK_QUEUED, [send.id], now)  # type: ignore[list-item]  # a stored Send: its id is set
                work.after_commit.append(_later(self.notifier.task_due, send.id))
        elif queue.mark_failed(work.session, send, self.worker_id, now, problem.reason):
            work.result.failed += 1
            work.after_commit.append(_later(self.notifier.send_failed, send.id))

    def _notify(self, work: _Pass) -> None:
        calls, work.after_commit = work.after_commit, []
        for call in calls:
            self._safely(call)

    def _safely(self, call: Callable[..., object], *args: object) -> None:
        # A Slack outage must not undo or repeat a delivery: the send's state is stored.
        try:
            call(*args)
        except Exception:
            log.exception("telling a rep failed")

    # --- periodic jobs ------------------------------------------------------------------
    def _recover(self, now: dt.datetime) -> int:
        with Session(self.engine, expire_on_commit=False) as session:
            lost = queue.recover_lost(session, now)
            unposted = queue.unposted_tasks(session, now)
            # Out-of-office pauses whose return morning has come go on (bot/services/replies.py).
            enrollments.resume_due(session, now)
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
    # The session only holds objects weakly: keep those of the last two claims, so that
    # draft_for's and progress's session.get() find them without a query.
    session.info["loaded"] = [*session.info.get("loaded", [])[-1:], loaded]
    return sends


def _later(call: Callable[..., None], *args: object) -> Callable[[], None]:
    """`call(*args)` after the commit, with `args` as they are now (as a lambda's defaults would, but typed)."""
    return functools.partial(call, *args)


def _by_id(session: Session, model: type, ids: set[int]) -> list:
    if not ids:
        return []
    return list(session.exec(select(model).where(col(model.id).in_(ids))))  # type: ignore[attr-defined]  # `model` is one of the table models, each with an id column


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

    def mailbox_broken(self, send_id: int, text: str) -> None:
        log.warning("send %s: %s", send_id, text)

    def digest(self, rep_id: str) -> bool:
        log.info("the digest of %s is due (no Slack token: not posted)", rep_id)
        return False

    def inbound(self, inbound_id: int) -> None:
        log.info("inbound message %s is for its rep", inbound_id)


def build_scheduler(
    settings: Settings, engine: Engine, notifier: Notifier | None, clock: Clock | None = None
) -> Scheduler:
    """A scheduler delivering through reps' own mailboxes and the relay (SMTP_URL), or into ./outbox/ (no notifier: logs only)."""
    clock = clock or SystemClock()
    return Scheduler(engine, clock, router_for(settings, engine, clock), notifier or LoggingNotifier(), settings)
