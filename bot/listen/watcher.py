"""Watching mailboxes: each rep's mailbox with IMAP, and the relay's bounce mailbox.

    read     a mailbox's INBOX from where it left off (UIDVALIDITY and the last UID, per
             mailbox and folder), read-only: EXAMINE and BODY.PEEK[], never a flag,
             move or delete. Each message is classified (bot/core/inbound.py) and acted
             on (bot/services/replies.py) in the transaction that moves the cursor on,
             so a restart neither misses nor repeats one.
    lease    one worker at a time per mailbox (bot/listen/leases.py); a dead worker's
             mailboxes are taken over once its lease runs out.
    wait     IMAP IDLE where the server offers it (re-IDLE at least every 29 minutes),
             else a poll every LISTEN_POLL_SECONDS (at most a minute), start to start.

`bot tick` reads each mailbox once (`read_all`); `bot worker` and `bot serve` run
`Watcher.start()`, a thread per mailbox this worker holds.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import imaplib
import logging
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from imapclient import IMAPClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.clock import UTC, Clock
from bot.core.inbound import InboundKind, classify
from bot.listen import leases
from bot.mail import mailboxes
from bot.mail.check import LoginFailed, open_imap
from bot.mail.oauth import Keeper, Tokens
from bot.mail.urls import ServerUrl, parse_imap_url
from bot.services import replies
from bot.services.errors import ServiceError
from bot.settings import Settings
from bot.store import bulk
from bot.store.models import Mailbox, MailboxCursor, MailboxState

log = logging.getLogger(__name__)

CURSOR = MailboxCursor.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models at runtime; its type doesn't declare it

FOLDER = "INBOX"
CHUNK = 200  # messages fetched, acted on and committed with the cursor at once
REIDLE = 29 * 60.0  # RFC 2177: servers may drop an IDLE after 30 minutes (heartbeats are shorter anyway)
ERRORS = (OSError, imaplib.IMAP4.error, ssl.SSLError, LoginFailed)


@dataclass(frozen=True)
class Watched:
    """A mailbox to watch: its key, whose it is, how to log in, and where a first read starts."""

    key: str  # "rep:<slack user id>" or "bounces"
    rep_id: str | None
    server: ServerUrl = field(repr=False)
    since: dt.date | None = None  # first read: messages since this day (None: only new ones)


@dataclass
class ReadResult:
    read: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, other: ReadResult) -> None:
        self.read += other.read
        for kind, n in other.kinds.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + n

    def __str__(self) -> str:
        acted = ", ".join(
            f"{n} {kind.replace('_', '-')}" for kind, n in sorted(self.kinds.items()) if kind != InboundKind.OTHER
        )
        return f"read {self.read} inbound message{'' if self.read == 1 else 's'}" + (f": {acted}" if acted else "")


def watched_mailboxes(session: Session, settings: Settings, now: dt.datetime, tokens: Tokens) -> list[Watched]:
    """Every connected mailbox with IMAP, and the bounce mailbox when BOUNCE_IMAP_URL is set.

    A first read starts the day before the mailbox was connected (the bounce mailbox:
    the day before it is first read), so nothing that came back meanwhile is missed.
    OAuth mailboxes log in with XOAUTH2, their access tokens from `tokens`. A mailbox
    whose login cannot be read (SECRET_KEY changed) is logged and left out: the others
    are watched all the same.
    """
    key = settings.secret_key
    watched = []
    for mailbox in session.exec(
        select(Mailbox).where(col(Mailbox.state) == MailboxState.CONNECTED).order_by(col(Mailbox.slack_user_id))
    ):
        try:
            server = mailboxes.imap_server(mailbox, key, tokens)
        except ServiceError as exc:
            log.warning("rep:%s: the mailbox is not watched: %s", mailbox.slack_user_id, exc)
            continue
        if server is not None:
            since = (mailbox.created_at - dt.timedelta(days=1)).date()
            watched.append(Watched(f"rep:{mailbox.slack_user_id}", mailbox.slack_user_id, server, since))
    if settings.bounce_imap_url:
        since = (now - dt.timedelta(days=1)).date()
        watched.append(Watched(replies.BOUNCES, None, parse_imap_url(settings.bounce_imap_url), since))
    return watched


class Reader:
    """Reads what is new in one mailbox's INBOX and acts on it; `read` is one pass."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        watched: Watched,
        queued: Callable[[], None] = lambda: None,
        key: SecretStr | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.watched = watched
        self.queued = queued
        self.key = key  # SECRET_KEY: it signs the tokens of List-Unsubscribe mailtos

    def read(self, client: IMAPClient, still_mine: Callable[[], bool] = lambda: True) -> ReadResult:
        """One pass: act on every message after the cursor, a chunk per commit.

        No transaction is open while the server is asked (on SQLite it would lock out
        every other writer for as long as the server takes).
        """
        result = ReadResult()
        selected = client.select_folder(FOLDER, readonly=True)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        uidnext = int(selected.get(b"UIDNEXT") or 0) or _uidnext(client)
        with Session(self.engine, expire_on_commit=False) as session:
            cursor = session.get(MailboxCursor, (self.watched.key, FOLDER))
            session.commit()
            if cursor is None and self.watched.since is not None:
                uids = client.search(["SINCE", self.watched.since])
                last = min(uids) - 1 if uids else uidnext - 1
            elif cursor is None or cursor.uidvalidity != uidvalidity:
                # New to us, or the folder was rebuilt (UIDs name other messages now):
                # start after what is there, acting on no old mail.
                uids, last = [], uidnext - 1
            else:
                last = cursor.last_uid
                uids = client.search(["UID", f"{last + 1}:*"])  # "*" is the last UID even when it is <= last
            if cursor is None or cursor.uidvalidity != uidvalidity:
                self._move_cursor(session, uidvalidity, last)
                session.commit()
            new = sorted(uid for uid in uids if uid > last)
            for start in range(0, len(new), CHUNK):
                if not still_mine():
                    break  # another worker has the mailbox now
                chunk = new[start : start + CHUNK]
                fetched = client.fetch(chunk, ["BODY.PEEK[]", "INTERNALDATE"])
                told = self._act(session, fetched, uidvalidity, chunk, result)
                self._move_cursor(session, uidvalidity, chunk[-1])
                session.commit()  # what was done and where reading left off: together
                if told:
                    self.queued()
        return result

    def _move_cursor(self, session: Session, uidvalidity: int, last_uid: int) -> None:
        row = {
            "mailbox": self.watched.key,
            "folder": FOLDER,
            "uidvalidity": uidvalidity,
            "last_uid": last_uid,
            "updated_at": self.clock.now(),
        }
        bulk.upsert(session, CURSOR, row, key=["mailbox", "folder"])

    def _act(
        self,
        session: Session,
        fetched: dict[int, dict[bytes, object]],
        uidvalidity: int,
        uids: list[int],
        result: ReadResult,
    ) -> bool:
        told = False
        for uid in uids:
            data = fetched.get(uid)
            body = None if data is None else data.get(b"BODY[]")
            if data is None or not isinstance(body, bytes):
                continue  # expunged meanwhile
            # compat32: parsing every header into objects (policy.default) was most of a catch-up's time.
            message = email.message_from_bytes(body, policy=email.policy.compat32)
            received = _aware(data.get(b"INTERNALDATE")) or self.clock.now()
            where = replies.Where(self.watched.key, FOLDER, uidvalidity, uid, self.watched.rep_id)
            try:
                verdict = classify(message, received)
            except Exception:  # one unreadable message must not stop the mailbox
                log.exception("%s: message UID %s could not be read; skipped", self.watched.key, uid)
                continue
            inbound = replies.act(session, self.clock.now(), where, verdict, received, self.key)
            result.read += 1
            if inbound is not None:
                result.kinds[inbound.kind] = result.kinds.get(inbound.kind, 0) + 1
                told = told or inbound.kind in replies.TOLD
        return told


def _uidnext(client: IMAPClient) -> int:
    uids = client.search(["ALL"])
    return max(uids) + 1 if uids else 1


def _aware(value: object) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Watcher:
    """Watches every mailbox this worker holds the lease of: `read_all` once, or `start` threads."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        settings: Settings,
        worker_id: str | None = None,
        queued: Callable[[], None] = lambda: None,
        *,
        idle: bool = True,
    ) -> None:
        """`idle`: use IMAP IDLE where the server offers it (False: always poll, as bench/listen.py compares)."""
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.tokens = Tokens(settings, clock, Keeper(engine, settings.secret_key))  # OAuth mailboxes' access tokens
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.queued = queued
        self.use_idle = idle
        self.poll = float(settings.listen_poll_seconds)
        self.lease = dt.timedelta(seconds=settings.listen_lease_seconds)
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._supervisor: threading.Thread | None = None

    def mailboxes(self) -> list[Watched]:
        with Session(self.engine) as session:
            return watched_mailboxes(session, self.settings, self.clock.now(), self.tokens)

    # --- once -----------------------------------------------------------------------
    def read_all(self) -> ReadResult:
        """Read each mailbox once (those another worker watches are left to it)."""
        result = ReadResult()
        for watched in self.mailboxes():
            if not self._take(watched.key):
                continue
            try:
                client = open_imap(watched.server)
                try:
                    result.add(
                        Reader(self.engine, self.clock, watched, self.queued, self.settings.secret_key).read(client)
                    )
                finally:
                    _logout(client)
            except ERRORS as exc:
                log.warning("%s: could not read %s: %s", watched.key, watched.server.shown(), exc)
            finally:
                self._release(watched.key)
        return result

    # --- the threads ------------------------------------------------------------------
    def start(self) -> None:
        """Watch in the background: a supervisor takes free mailboxes, a thread per mailbox."""
        if self._supervisor is not None:
            return
        self._stop.clear()
        self._supervisor = threading.Thread(target=self._supervise, name="watcher", daemon=True)
        self._supervisor.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        for thread in [self._supervisor, *self._threads.values()]:
            if thread is not None:
                thread.join(timeout)
        self._supervisor, self._threads = None, {}

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                for watched in self.mailboxes():
                    thread = self._threads.get(watched.key)
                    if (thread is None or not thread.is_alive()) and self._take(watched.key):
                        thread = threading.Thread(
                            target=self.watch, args=(watched, self._stop), name=f"watch {watched.key}", daemon=True
                        )
                        self._threads[watched.key] = thread
                        thread.start()
            except Exception:  # a database outage must not end the watching
                log.exception("listing the mailboxes to watch failed; trying again")
            self._stop.wait(self.poll)

    def watch(self, watched: Watched, stop: threading.Event) -> None:
        """Watch one mailbox while this worker holds its lease: read, then IDLE (or poll), again."""
        heartbeat = max(0.05, min(self.poll, self.lease.total_seconds() / 3, REIDLE))
        reader = Reader(self.engine, self.clock, watched, self.queued, self.settings.secret_key)
        mine = True

        def still_mine() -> bool:
            nonlocal mine
            mine = mine and self._take(watched.key)
            return mine

        while not stop.is_set() and still_mine():
            try:
                client = open_imap(watched.server)
            except ERRORS as exc:
                log.warning("%s: could not log in to %s: %s", watched.key, watched.server.shown(), exc)
                stop.wait(self.poll)
                continue
            try:
                idle = self.use_idle and b"IDLE" in client.capabilities()
                started = time.monotonic()
                while not stop.is_set() and still_mine():
                    reader.read(client, still_mine)
                    if idle:
                        self._idle(client, stop, heartbeat)
                    else:
                        # Polls start every LISTEN_POLL_SECONDS, however long a pass took:
                        # a message waits at most the interval (plus its own pass).
                        stop.wait(max(0.0, started + self.poll - time.monotonic()))
                    started = time.monotonic()
            except ERRORS as exc:
                log.warning("%s: connection lost (%s); logging in again", watched.key, exc)
            finally:
                _logout(client)
        if mine:
            self._release(watched.key)

    def _idle(self, client: IMAPClient, stop: threading.Event, heartbeat: float) -> None:
        """IDLE until the server says something, a heartbeat passes or we stop.

        After each heartbeat the caller renews the lease and reads anyway: a message
        that arrived between a read and the IDLE is then read at the latest one
        heartbeat later. Checks for `stop` every second.
        """
        client.idle()
        started = time.monotonic()
        try:
            while not stop.is_set() and time.monotonic() - started < heartbeat:
                if client.idle_check(timeout=min(1.0, heartbeat)):
                    break
        finally:
            client.idle_done()

    def _take(self, key: str) -> bool:
        with Session(self.engine) as session:
            taken = leases.take(session, key, self.worker_id, self.clock.now(), self.lease)
            session.commit()
        return taken

    def _release(self, key: str) -> None:
        with Session(self.engine) as session:
            leases.release(session, key, self.worker_id, self.clock.now())
            session.commit()


def _logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except ERRORS:
        client.shutdown()
