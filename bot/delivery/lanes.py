"""Handing emails over: one lane per mailbox, with up to its connection limit open at once.

A lane is a queue of emails (in due order) and a few threads, each holding one open
connection to the mailbox's server and taking the next email when it is done with
the last. Lanes share nothing, so a slow, full or broken mailbox holds back only
its own emails. Threads and their connections last for a pass and are closed at its
end. Nothing here touches the database: every outcome goes back to the scheduler,
which records it.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading

from bot.clock import Clock
from bot.delivery.ports import Connection, DeliveryError, Email, Outcome, Route

log = logging.getLogger(__name__)


class Lane:
    """One mailbox's emails and connections."""

    def __init__(self, route: Route, outcomes: queue.SimpleQueue[Outcome], clock: Clock, stop: threading.Event) -> None:
        self.route = route
        self.outcomes = outcomes
        self.clock = clock
        self.stop = stop
        self.waiting: collections.deque[Email] = collections.deque()
        self.in_flight = 0  # given to this lane, outcome not yet taken by the scheduler
        self.held = False  # the server asked to slow down or refused the login: hand over no more this pass
        self.threads: list[threading.Thread] = []  # those handing over now
        self._started: list[threading.Thread] = []  # every one, to wait for at the end
        # Connections this worker may hold: its share of a limit that every worker counts
        # (bot/services/connections.py), given by the scheduler; a route of its own has all.
        self.granted = 0 if route.shared else route.limits.connections
        self.server_takes: int | None = None  # fewer, once the server refused one more
        self.open = 0  # connections open now
        self._leaving = 0  # threads gone from `threads` to come down to `connections`, their connection not yet closed
        self._opening = 0  # threads connecting now
        self._ready = threading.Condition()
        self._closing = False

    @property
    def connections(self) -> int:
        """How many connections the lane may have open."""
        return self.granted if self.server_takes is None else min(self.granted, self.server_takes)

    @property
    def in_use(self) -> int:
        """Connections open or about to be: one per thread, and those of threads closing theirs."""
        with self._ready:
            return len(self.threads) + self._leaving

    def allow(self, granted: int) -> None:
        """The lane's share changed: more threads start as emails come, or some close as they finish."""
        with self._ready:
            self.granted = granted
            self._ready.notify_all()

    @property
    def capacity(self) -> int:
        """Emails the lane holds at most: one being handed over and one next, per connection."""
        return 2 * self.connections

    @property
    def room(self) -> int:
        """How many more emails the lane takes now.

        It holds up to two per connection (one being handed over, one next), and is
        topped up once half of that is done, so that emails are marked `sending`
        in chunks rather than one by one.
        """
        if self.held or not self.connections or self.in_flight > self.capacity // 2:
            return 0
        return self.capacity - self.in_flight

    def put(self, email: Email) -> None:
        with self._ready:
            self.in_flight += 1
            self.waiting.append(email)
            if len(self.threads) < min(self.connections, self.in_flight):
                thread = threading.Thread(target=self._run, name=f"lane {self.route.key}", daemon=True)
                self.threads.append(thread)
                self._started.append(thread)
                thread.start()
            self._ready.notify()

    def taken(self) -> None:
        """The scheduler took one of this lane's outcomes."""
        with self._ready:
            self.in_flight -= 1

    def close(self) -> None:
        """End the lane's threads once the emails they hold are done; each closes its connection."""
        with self._ready:
            self._closing = True
            self._ready.notify_all()
        for thread in self._started:
            thread.join()

    def _next(self, connected: bool) -> Email | None:
        """The next email; None when the lane closes, or when this thread is one too many (its share shrank)."""
        with self._ready:
            while True:
                # One too many: a thread yet to connect goes first, then one with a connection.
                if (self.open - self._leaving if connected else len(self.threads)) > self.connections:
                    self.threads.remove(threading.current_thread())
                    self._leaving += connected
                    return None
                if self.waiting:
                    return self.waiting.popleft()
                if self._closing:
                    return None
                self._ready.wait()

    def _give_back(self, email: Email) -> None:
        self.outcomes.put(Outcome(email, self.clock.now(), handed=False))

    def _run(self) -> None:
        connection: Connection | None = None
        try:
            while (email := self._next(connection is not None)) is not None:
                if self.stop.is_set() or self.held:
                    self._give_back(email)  # stopping, or the mailbox waits: planned again
                    continue
                try:
                    if connection is None:
                        connection = self._open()
                    connection.send(email)
                except _Fewer:
                    with self._ready:
                        self.waiting.appendleft(email)  # for a connection the server did take
                        self._ready.notify()
                    return
                except DeliveryError as error:
                    if error.holds_mailbox:
                        self.held = True
                    self.outcomes.put(Outcome(email, self.clock.now(), error=error))
                except Exception as exc:  # a bug, not the server's answer: the email may have gone out
                    log.exception("mailbox %s: handing an email over failed", self.route.key)
                    failure = DeliveryError(f"handing the email over failed: {exc}", uncertain=True)
                    self.outcomes.put(Outcome(email, self.clock.now(), error=failure))
                else:
                    self.outcomes.put(Outcome(email, self.clock.now()))
        finally:
            if connection is not None:
                connection.close()
                with self._ready:
                    self.open -= 1
                    if threading.current_thread() not in self.threads:  # it left to come down to its share
                        self._leaving -= 1

    def _open(self) -> Connection:
        """A new connection, logged in; _Fewer when the server takes fewer than the limit allows."""
        connection = self.route.connect()
        with self._ready:
            self._opening += 1
        try:
            connection.open()
        except DeliveryError as error:
            with self._ready:
                self._opening -= 1
                # Connections that go on handing over: those open and not closing, and
                # those other threads are opening now (the server took them first).
                staying = self.open - self._leaving + self._opening
                if error.slow_down and staying > 0:
                    # Too many connections for this server: go on with those it took.
                    self.server_takes = staying
                    self.threads.remove(threading.current_thread())
                    raise _Fewer() from None
            raise
        with self._ready:
            self._opening -= 1
            self.open += 1
        return connection


class _Fewer(Exception):
    """The server refused one more connection while others are open."""


class Lanes:
    """The lanes of one pass, by mailbox; their outcomes arrive on one queue."""

    def __init__(self, clock: Clock, stop: threading.Event) -> None:
        self.clock = clock
        self.stop = stop
        self.outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.lanes: dict[str, Lane] = {}

    def lane(self, route: Route) -> Lane:
        lane = self.lanes.get(route.key)
        if lane is None:
            lane = self.lanes[route.key] = Lane(route, self.outcomes, self.clock, self.stop)
        return lane

    @property
    def in_flight(self) -> int:
        return sum(lane.in_flight for lane in self.lanes.values())

    def finished(self, *, wait_for: int = 0) -> list[Outcome]:
        """The outcomes that have come in, waiting for at least `wait_for` of them (at most those in flight)."""
        outcomes: list[Outcome] = []
        for _ in range(min(wait_for, self.in_flight)):
            outcomes.append(self.outcomes.get())
        while True:
            try:
                outcomes.append(self.outcomes.get_nowait())
            except queue.Empty:
                break
        for outcome in outcomes:
            self.lanes[outcome.email.mailbox].taken()
        return outcomes

    def close(self) -> None:
        for lane in self.lanes.values():
            lane.close()
