"""Copies of sent emails in the rep's Sent folder, for mail servers that keep none themselves.

A rep's mail client shows the conversation only when what the bot sent is in their
Sent folder. Gmail files what goes through its SMTP server there itself; Microsoft
365 and most other servers do not (mailboxes.KEEPS_SENT_COPIES). For those, the
scheduler queues a copy in the transaction that records the email sent, and a
`SentCopier` (a thread of `bot serve` and `bot worker`; once at the end of `bot
tick`) appends it over IMAP, marked \\Seen, to the folder flagged \\Sent (RFC 6154),
else one named like a Sent folder, else a new "Sent". Delivery never waits for it.

A copy the server does not take is tried again after a growing delay and given up
after the last (kept with its error). Before each append the folder is searched for
the copy's Message-ID, so a copier killed between the append and recording it does
not file the email twice.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic import SecretStr
from sqlalchemy import CursorResult, Engine, or_, update
from sqlmodel import Session, col, select

from bot.background import Background
from bot.clock import Clock
from bot.mail import mailboxes
from bot.mail.check import LoginFailed, answer, close_imap, imap_words, open_imap
from bot.mail.credentials import CredentialsError
from bot.mail.urls import ServerUrl
from bot.store.db import session_scope
from bot.store.models import Mailbox, SentCopy

if TYPE_CHECKING:
    from imapclient import IMAPClient

    from bot.delivery.ports import Email

log = logging.getLogger(__name__)

# After each failed try; given up after the last (a day in all).
RETRY_DELAYS = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=6),
    dt.timedelta(hours=16),
)
LEASE = dt.timedelta(minutes=5)
CLAIM = 100  # copies leased per round
POLL_SECONDS = 30.0  # copies are for the rep's eyes: no hurry
DEFAULT_SENT = "Sent"


def wants_copies(mailbox: Mailbox | None) -> bool:
    """Whether emails sent through this mailbox need a copy appended (it has IMAP; its server keeps none)."""
    return mailbox is not None and mailbox.imap_host is not None and not mailboxes.keeps_sent_copies(mailbox)


def queue_copies(session: Session, sent: Sequence[tuple[str, Email, dt.datetime]], now: dt.datetime) -> int:
    """Queue a copy of each (rep, email, sent at) that left through the rep's mailbox when it needs one."""
    queued = 0
    for rep_id, email, at in sent:
        if wants_copies(session.get(Mailbox, rep_id)):
            session.add(
                SentCopy(
                    send_id=email.send_id,
                    rep_id=rep_id,
                    message_id=email.message_id,
                    data=email.data,
                    sent_at=at,
                    next_at=now,
                    created_at=now,
                )
            )
            queued += 1
    if queued:
        session.flush()
    return queued


def claim_due(session: Session, now: dt.datetime, worker_id: str, *, limit: int = CLAIM) -> list[SentCopy]:
    """Lease up to `limit` due copies to this copier, oldest first."""
    free = or_(col(SentCopy.lease_until).is_(None), col(SentCopy.lease_until) < now)
    due = session.exec(
        select(SentCopy.send_id)
        .where(col(SentCopy.done_at).is_(None), col(SentCopy.next_at) <= now, free)
        .order_by(col(SentCopy.next_at))
        .limit(limit)
    ).all()
    claimed = []
    for send_id in due:
        # Conditional: another copier may have leased it since the read.
        won = session.execute(
            update(SentCopy)
            .where(col(SentCopy.send_id) == send_id, free)
            .values(lease_until=now + LEASE, claimed_by=worker_id)
        )
        if cast(CursorResult[Any], won).rowcount == 1:  # Session.execute is typed Result; an UPDATE's is a CursorResult
            claimed.append(send_id)
    if not claimed:
        return []
    return list(
        session.exec(
            select(SentCopy).where(col(SentCopy.send_id).in_(claimed)).execution_options(populate_existing=True)
        )
    )


def appended(session: Session, copy: SentCopy) -> None:
    """The copy is in the Sent folder: forget it."""
    session.execute(SentCopy.__table__.delete().where(SentCopy.__table__.c.send_id == copy.send_id))  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models at runtime; its type doesn't declare it


def not_appended(session: Session, copy: SentCopy, now: dt.datetime, error: str) -> bool:
    """Try again after the next delay, or give up after the last; True when given up."""
    attempts = copy.attempts + 1
    given_up = attempts > len(RETRY_DELAYS)
    session.execute(
        update(SentCopy)
        .where(col(SentCopy.send_id) == copy.send_id)
        .values(
            attempts=attempts,
            next_at=now if given_up else now + RETRY_DELAYS[attempts - 1],
            done_at=now if given_up else None,
            lease_until=None,
            claimed_by=None,
            last_error=error,
        )
    )
    return given_up


def sent_folder(client: IMAPClient) -> str:
    """The folder flagged \\Sent (RFC 6154), else one named like it, else a new "Sent"."""
    from imapclient.imapclient import SENT

    folder = client.find_special_folder(SENT)
    if folder is None:
        if not client.folder_exists(DEFAULT_SENT):
            client.create_folder(DEFAULT_SENT)
        folder = DEFAULT_SENT
    return folder


def append_once(client: IMAPClient, folder: str, copy: SentCopy) -> None:
    """Append the copy as read, unless the folder already has its Message-ID."""
    from imapclient.imapclient import SEEN

    client.select_folder(folder, readonly=True)
    if client.search(["HEADER", "Message-ID", copy.message_id]):
        return
    client.append(folder, copy.data, flags=(SEEN,), msg_time=copy.sent_at)


class SentCopier(Background):
    """Appends due copies to their reps' Sent folders, one IMAP login per rep per round."""

    thread_name = "sent-copies"

    def __init__(self, engine: Engine, clock: Clock, key: SecretStr | None, worker_id: str | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.key = key
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        super().__init__()

    def drain(self, stop: threading.Event | None = None) -> int:
        """Append every copy due now; the number appended."""
        count = 0
        while stop is None or not stop.is_set():
            with session_scope(self.engine) as session:
                claimed = claim_due(session, self.clock.now(), self.worker_id)
                by_rep: dict[str, list[SentCopy]] = {}
                for copy in claimed:
                    by_rep.setdefault(copy.rep_id, []).append(copy)
                servers = {rep_id: self._server(session, rep_id) for rep_id in by_rep}
            if not claimed:
                return count
            for rep_id, copies in by_rep.items():
                count += self._append(copies, servers[rep_id])
        return count

    def _server(self, session: Session, rep_id: str) -> ServerUrl | None:
        mailbox = session.get(Mailbox, rep_id)
        try:
            return mailboxes.imap_server(mailbox, self.key) if mailbox is not None else None
        except CredentialsError:  # SECRET_KEY changed or is gone: nothing to log in with
            log.warning("the mailbox password of %s cannot be decrypted", rep_id)
            return None

    def _append(self, copies: list[SentCopy], server: ServerUrl | None) -> int:
        if server is None:
            self._failed(copies, "the rep's mailbox has no IMAP login any more")
            return 0
        try:
            client = open_imap(server)
        except LoginFailed as exc:
            self._failed(copies, str(exc))
            return 0
        done = 0
        try:
            folder = sent_folder(client)
            for copy in copies:
                append_once(client, folder, copy)
                with session_scope(self.engine) as session:
                    appended(session, copy)
                done += 1
        except (OSError, imaplib.IMAP4.error) as exc:
            said = imap_words(exc) if isinstance(exc, imaplib.IMAP4.error) else str(exc) or type(exc).__name__
            self._failed(copies[done:], f"the Sent folder did not take the copy: {answer(said, server)}")
        finally:
            close_imap(client)
        return done

    def _failed(self, copies: list[SentCopy], error: str) -> None:
        now = self.clock.now()
        with session_scope(self.engine) as session:
            for copy in copies:
                if not_appended(session, copy, now, error):
                    log.error(
                        "the copy of send %s was given up for %s's Sent folder: %s", copy.send_id, copy.rep_id, error
                    )
        if copies:
            log.warning("%d sent copies for %s wait: %s", len(copies), copies[0].rep_id, error)

    # --- the thread -------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Drain, then wait POLL_SECONDS, until `stop` is set."""
        while not stop.is_set():
            try:
                self.drain(stop)
            except Exception:  # a database outage must not end the thread
                log.exception("appending sent copies failed; trying again")
            stop.wait(POLL_SECONDS)
