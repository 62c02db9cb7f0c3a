"""Slack off the delivery path: the scheduler queues notices, a poster posts them.

`QueuedNotifier` is the scheduler's Notifier (bot/delivery/ports.py): each call
stores a notice in its own short transaction and returns, so a Slack outage or a
storm of 429s never holds up an email. `NoticePoster` (a thread of `bot serve` and
`bot worker`; once at the end of `bot tick`) posts them through the SlackNotifier,
each rep's in order (bot/services/notices.py). A notice Slack does not take now
waits (until Retry-After, or a growing delay) and is posted later; only one Slack
refuses for what it is (channel_not_found, invalid_blocks) is given up, after a few
tries (a task message after one: the scheduler posts it again later), and logged.

If a poster is killed between Slack's answer and recording it, the notice is posted
again once its lease runs out: a task message is then redrawn in place, not doubled.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence

from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine

from bot.background import Background
from bot.clock import Clock
from bot.delivery.ports import Notifier
from bot.services import notices
from bot.settings import Settings
from bot.slack.client import busy, make_client, retry_after
from bot.slack.notifier import SlackNotifier
from bot.store.db import session_scope
from bot.store.models import Inbound, Notice, NoticeKind

log = logging.getLogger(__name__)

CLAIM = 100  # notices leased per round (at most one per rep)
# The poster looks for notices queued by other processes (and for retries that came
# due) this often; notices queued in its own process wake it at once.
POLL_SECONDS = 1.0
PRUNE_EVERY = dt.timedelta(hours=1)  # how often done notices older than a week are deleted


class QueuedNotifier:
    """Implements bot.delivery.ports.Notifier by queueing; never calls Slack.

    `queued` is called after each commit (the poster's `wake`, in the same process).
    """

    def __init__(self, engine: Engine, clock: Clock, queued: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.clock = clock
        self.queued = queued

    def task_due(self, send_id: int) -> None:
        self._queue(NoticeKind.TASK_DUE, [send_id])

    def send_failed(self, send_id: int) -> None:
        self._queue(NoticeKind.SEND_FAILED, [send_id])

    def send_uncertain(self, send_id: int) -> None:
        self._queue(NoticeKind.SEND_UNCERTAIN, [send_id])

    def send_notice(self, send_id: int, text: str) -> None:
        self._queue(NoticeKind.SEND_NOTICE, [send_id], text)

    def mailbox_broken(self, send_id: int, text: str) -> None:
        self._queue(NoticeKind.MAILBOX_BROKEN, [send_id], text)

    def email_sent(self, send_ids: Sequence[int]) -> None:
        if send_ids:
            self._queue(NoticeKind.EMAIL_SENT, send_ids)

    def digest(self, rep_id: str) -> bool:
        """Queue the rep's digest; True: it will be posted (drawn then, so it lists what is there then).

        Queued like the rest: digest mornings are when Slack rate limits most, and a
        digest posted from the scheduler's pass would hold the next pass's emails.
        """
        with session_scope(self.engine) as session:
            notices.enqueue_for(session, NoticeKind.DIGEST, rep_id, [], self.clock.now())
        self.queued()
        return True

    def inbound(self, inbound_id: int) -> None:
        """Queue the notice of what came back (bot/services/replies.py queues its own in its transaction)."""
        with session_scope(self.engine) as session:
            inbound = session.get(Inbound, inbound_id)
            if inbound is not None and inbound.rep_id is not None:
                ids = [inbound.send_id] if inbound.send_id is not None else []
                notices.enqueue_for(
                    session, NoticeKind.INBOUND, inbound.rep_id, ids, self.clock.now(), inbound_id=inbound_id
                )
        self.queued()

    def _queue(self, kind: NoticeKind, send_ids: Sequence[int], text: str | None = None) -> None:
        with session_scope(self.engine) as session:
            notices.enqueue(session, kind, send_ids, self.clock.now(), text=text)
        self.queued()


class NoticePoster(Background):
    """Posts due notices through `slack` (a SlackNotifier whose client does not sleep on 429s)."""

    thread_name = "notice-poster"

    def __init__(
        self,
        engine: Engine,
        slack: Notifier,
        clock: Clock,
        worker_id: str | None = None,
        *,
        lease: dt.timedelta = notices.DEFAULT_LEASE,
    ) -> None:
        self.engine = engine
        self.slack = slack
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = lease
        self._wake = threading.Event()
        super().__init__()

    def drain(self, stop: threading.Event | None = None) -> int:
        """Post every notice due now; stop early when Slack is busy or down. The number posted."""
        count = 0
        while stop is None or not stop.is_set():
            with session_scope(self.engine) as session:
                claimed = notices.claim_due(session, self.clock.now(), self.worker_id, limit=CLAIM, lease=self.lease)
            if not claimed:
                break
            groups = _groups(claimed)
            for index, group in enumerate(groups):
                stopping = stop is not None and stop.is_set()
                if stopping or not self._post(group):
                    # Slack is busy: the rest would only be refused too (and keep it busy).
                    with session_scope(self.engine) as session:
                        notices.release(session, [n for rest in groups[index + (not stopping) :] for n in rest])
                    return count
                count += len(group)
        return count

    def _post(self, group: list[Notice]) -> bool:
        """Post one notice (or a run of email_sent ones as one); False when Slack was busy."""
        try:
            self._call(group)
        except Exception as exc:
            now, is_busy, error = self.clock.now(), busy(exc), _describe(exc)
            with session_scope(self.engine) as session:
                for notice in group:
                    if notices.not_posted(session, notice, now, error, busy=is_busy, retry_after=retry_after(exc)):
                        log.error("notice %s (%s for %s) given up: %s", notice.id, notice.kind, notice.rep_id, error)
            if is_busy:
                log.warning("Slack is busy (%s): %d notice(s) wait for later", error, len(group))
            else:  # a traceback only for what is not Slack's answer (a bug)
                ids = [notice.id for notice in group]
                log.warning("Slack refused notice(s) %s: %s", ids, error, exc_info=not isinstance(exc, SlackApiError))
            return not is_busy
        with session_scope(self.engine) as session:
            notices.posted(session, group, self.clock.now())
        return True

    def _call(self, group: list[Notice]) -> None:
        first = group[0]
        kind = NoticeKind(first.kind)
        if kind is NoticeKind.EMAIL_SENT:
            self.slack.email_sent([send_id for notice in group for send_id in notice.send_ids])
        elif kind is NoticeKind.DIGEST:
            self.slack.digest(first.rep_id)
        elif kind is NoticeKind.SEND_NOTICE:
            self.slack.send_notice(first.send_ids[0], first.text or "")
        elif kind is NoticeKind.MAILBOX_BROKEN:
            self.slack.mailbox_broken(first.send_ids[0], first.text or "")
        elif kind is NoticeKind.INBOUND:
            assert first.inbound_id is not None
            self.slack.inbound(first.inbound_id)
        else:
            getattr(self.slack, kind.value)(first.send_ids[0])

    # --- the thread -------------------------------------------------------------------
    def wake(self) -> None:
        """A notice was queued: post it now rather than at the next poll."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Drain, then wait for a notice or POLL_SECONDS, until `stop` is set; prune now and then."""
        next_prune = self.clock.now()
        while not stop.is_set():
            self._wake.clear()
            try:
                self.drain(stop)
                if (now := self.clock.now()) >= next_prune:
                    with session_scope(self.engine) as session:
                        notices.prune(session, now)
                    next_prune = now + PRUNE_EVERY
            except Exception:  # a database outage must not end the thread
                log.exception("posting notices failed; trying again")
            self._wake.wait(POLL_SECONDS)

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the notice in flight; the rest wait in the queue for the next start."""
        self._stop.set()
        self._wake.set()  # not waiting POLL_SECONDS first
        super().stop(timeout)


def _groups(claimed: list[Notice]) -> list[list[Notice]]:
    """One notice each, but a run of email_sent notices is one: one feed message for the batch."""
    groups: list[list[Notice]] = []
    for notice in claimed:
        if groups and notice.kind == groups[-1][0].kind == NoticeKind.EMAIL_SENT:
            groups[-1].append(notice)
        else:
            groups.append([notice])
    return groups


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return f"{exc.response.status_code} {exc.response.get('error')}"
    return f"{type(exc).__name__}: {exc}"


def queued_slack(engine: Engine, settings: Settings, clock: Clock) -> tuple[QueuedNotifier, NoticePoster]:
    """The scheduler's notifier, and the poster of what it queues (its client never sleeps on a 429)."""
    slack = SlackNotifier(engine, make_client(settings, rate_limit_retries=0), clock, settings)
    poster = NoticePoster(engine, slack, clock)
    return QueuedNotifier(engine, clock, poster.wake), poster
