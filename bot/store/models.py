"""The tables: campaigns and their steps, people, enrollments, sends, reps, digests, notices, mailboxes.

Every instant is stored timezone-aware UTC (the `UTCDateTime` column type refuses a
naive value and hands back aware ones, on SQLite too). Every state (a send's kind
and status, an enrollment's status, a step's send option) is its StrEnum, stored as
its value in a text column (`EnumText`).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from bot.clock import UTC
from bot.core.inbound import InboundKind, OnReply
from bot.core.rules import SendIn, SendOption, StepKind

TASK_REPOSTS = 3  # times a task message Slack refused is posted again (bot/services/queue.py)
UNPOSTED = text(f"status = 'queued' AND slack_ts IS NULL AND slack_reposts < {TASK_REPOSTS}")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC instant on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def instant(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class EnumText(TypeDecorator[StrEnum]):
    """A StrEnum as its value in a text column: a value it does not have is refused."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> StrEnum | None:
        return None if value is None else self.enum(value)


def state(enum: type[StrEnum], default: StrEnum | None = None) -> Any:
    """A column holding one of `enum`'s members (required when there is no default)."""
    column: Column[Any] = Column(EnumText(enum), nullable=False, default=default)
    return Field(sa_column=column) if default is None else Field(default=default, sa_column=column)


def created() -> Any:
    return Field(default_factory=lambda: dt.datetime.now(UTC), sa_column=Column(UTCDateTime(), nullable=False))


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    FINISHED = "finished"
    REMOVED = "removed"
    REPLIED = "replied"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"


ACTIVE_STATUSES = (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)


class SendStatus(StrEnum):
    PLANNED = "planned"  # waiting for its due time (a worker may hold a lease on it)
    SENDING = "sending"  # handed to the mail server by a worker; the outcome is not yet stored
    QUEUED = "queued"  # a task that reached its rep and waits for Send, Schedule or Skip
    SENT = "sent"
    SKIPPED = "skipped"  # skipped by the rep; the campaign goes on
    PAUSED = "paused"  # held while its enrollment is paused
    CANCELLED = "cancelled"  # its enrollment ended; `reason` says why
    FAILED = "failed"  # the mail server refused it, or retries ran out; waits for the rep
    UNCERTAIN = "uncertain"  # the server may or may not have it; waits for the rep


# Every move a send may make, from each state: the one table of them. The queue
# (bot/services/queue.py) checks its moves against it; tests check every service's.
SEND_MOVES: dict[SendStatus, frozenset[SendStatus]] = {
    SendStatus.PLANNED: frozenset(
        {
            SendStatus.PLANNED,
            SendStatus.SENDING,
            SendStatus.QUEUED,
            SendStatus.FAILED,
            SendStatus.PAUSED,
            SendStatus.CANCELLED,
        }
    ),
    # PLANNED: not handed over (stopping, the mailbox held) or a temporary failure to retry later.
    SendStatus.SENDING: frozenset({SendStatus.SENT, SendStatus.PLANNED, SendStatus.FAILED, SendStatus.UNCERTAIN}),
    SendStatus.QUEUED: frozenset({SendStatus.PLANNED, SendStatus.SKIPPED, SendStatus.PAUSED, SendStatus.CANCELLED}),
    # SENT: the server's 250 came after all, or the rep marked it sent; PLANNED: Send again.
    SendStatus.UNCERTAIN: frozenset({SendStatus.SENT, SendStatus.PLANNED, SendStatus.CANCELLED}),
    SendStatus.FAILED: frozenset({SendStatus.SENT, SendStatus.PLANNED, SendStatus.CANCELLED}),
    SendStatus.PAUSED: frozenset({SendStatus.PLANNED, SendStatus.QUEUED, SendStatus.CANCELLED}),
    SendStatus.SENT: frozenset(),
    SendStatus.SKIPPED: frozenset(),
    SendStatus.CANCELLED: frozenset(),
}


def allowed_moves(status: SendStatus | str) -> frozenset[SendStatus]:
    """The states a send in `status` may move to."""
    return SEND_MOVES[SendStatus(status)]


class Rep(SQLModel, table=True):
    """A Slack user who owns campaigns or enrollments, as their Slack profile says."""

    slack_user_id: str = Field(primary_key=True)
    name: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    timezone: str | None = None
    updated_at: dt.datetime = created()


class Campaign(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String, nullable=False, unique=True))
    owner_id: str
    timezone: str
    skip_weekends: bool = False
    send_in: SendIn = state(SendIn, SendIn.CAMPAIGN)
    task_time: dt.time = dt.time(9, 0)
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # A template appended to every email's body (the company's postal address, the unsubscribe link).
    footer: str | None = None
    on_reply: OnReply = Field(
        default=OnReply.STOP_PERSON,
        sa_column=Column(EnumText(OnReply), nullable=False, default=OnReply.STOP_PERSON, server_default="stop_person"),
    )
    # Each import that changes the steps makes a new version; enrollments keep theirs.
    version: int = 1
    created_at: dt.datetime = created()
    updated_at: dt.datetime = created()


class Step(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("campaign_id", "version", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    version: int
    position: int  # 1-based; list order is send order
    day: int
    send: SendOption = state(SendOption)
    time: dt.time | None = None
    subject: str | None = None
    body: str = ""


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_column=Column(String, nullable=False, unique=True))
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    title: str = ""
    timezone: str | None = None
    fields: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = created()


class Enrollment(SQLModel, table=True):
    """One person in one campaign, owned by the rep who added them."""

    __table_args__ = (
        # A person has at most one active (or paused) enrollment in a campaign.
        Index(
            "uq_enrollment_active",
            "campaign_id",
            "person_id",
            unique=True,
            sqlite_where=text("status IN ('active', 'paused')"),
            postgresql_where=text("status IN ('active', 'paused')"),
        ),
        # A rep's enrollments; their counts per campaign (App Home) from the index alone.
        Index("ix_enrollment_rep_status", "rep_id", "status", "campaign_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    version: int
    person_id: int = Field(foreign_key="person.id", index=True)
    rep_id: str
    status: EnrollmentStatus = state(EnrollmentStatus, EnrollmentStatus.ACTIVE)
    zone: str  # the resolved IANA zone its wall-clock times are computed in
    launched_at: dt.datetime = instant(nullable=False)
    send_at: dt.datetime | None = instant()
    day_one: dt.date | None = None
    shift_days: int = 0
    position: int = 1  # the step in progress (1-based)
    paused_at: dt.datetime | None = instant()
    # An out-of-office pause: the scheduler resumes it then (None: paused by a rep, until they resume).
    resume_at: dt.datetime | None = instant()
    ended_at: dt.datetime | None = instant()
    end_reason: str | None = None
    created_at: dt.datetime = created()


class Send(SQLModel, table=True):
    """One planned or done send of a step to a person: an email, or a task for the rep."""

    __table_args__ = (
        # The scheduler's only question when idle: is anything planned due?
        Index(
            "ix_send_due",
            "due_at",
            sqlite_where=text("status = 'planned'"),
            postgresql_where=text("status = 'planned'"),
        ),
        # Workers that died: in-flight sends whose lease ran out.
        Index(
            "ix_send_lease",
            "lease_until",
            sqlite_where=text("status = 'sending'"),
            postgresql_where=text("status = 'sending'"),
        ),
        # A rep's sends by status, in due order: a list's first tasks (LIMIT) and
        # today's planned emails (a range) without reading the rest.
        Index("ix_send_rep_status_due", "rep_id", "status", "due_at"),
        # A rep's queued tasks counted per step, and how many are overdue, from the index alone
        # (App Home's counts per campaign: no join per task).
        Index("ix_send_rep_status_step", "rep_id", "status", "step_id", "due_at"),
        # Queued tasks whose Slack message never got through, with a repost to come.
        Index("ix_send_unposted", "updated_at", sqlite_where=UNPOSTED, postgresql_where=UNPOSTED),
        # A mailbox's limits: what it handed over in the last minute and 24 hours.
        Index("ix_send_mailbox_handed", "mailbox", "handed_at"),
        # Inbound messages name the emails they answer by Message-ID (bot/services/replies.py).
        Index("ix_send_message_id", "message_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: int = Field(foreign_key="enrollment.id", index=True)
    step_id: int = Field(foreign_key="step.id")
    position: int
    rep_id: str
    kind: StepKind = state(StepKind)
    status: SendStatus = state(SendStatus, SendStatus.PLANNED)
    due_at: dt.datetime = instant(nullable=False)
    lease_until: dt.datetime | None = instant()
    claimed_by: str | None = None
    attempts: int = 0
    mailbox: str | None = None  # the mailbox it was handed to ("relay", "rep:U..."), counted by its limits
    handed_at: dt.datetime | None = instant()  # when it was marked `sending`
    # The rep's version (edited task) or, once sent, exactly what went out.
    subject: str | None = None
    body: str | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None  # space-separated Message-IDs
    thread_of_id: int | None = Field(default=None, foreign_key="send.id")
    sent_at: dt.datetime | None = instant()
    done_at: dt.datetime | None = instant()
    reason: str | None = None  # why it was cancelled, failed or became a task
    last_error: str | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None
    # Times its task message was posted again after Slack refused it (a server default: added in 0002).
    slack_reposts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: dt.datetime = created()
    updated_at: dt.datetime = created()


class Digest(SQLModel, table=True):
    """One daily digest per rep per local day: the primary key makes it exactly once."""

    rep_id: str = Field(primary_key=True)
    local_date: dt.date = Field(primary_key=True)
    sent_at: dt.datetime | None = instant()
    slack_channel: str | None = None
    slack_ts: str | None = None
    created_at: dt.datetime = created()


class NoticeKind(StrEnum):
    """What a queued Slack notice says; one per Notifier method (bot/delivery/ports.py)."""

    TASK_DUE = "task_due"
    SEND_FAILED = "send_failed"
    SEND_UNCERTAIN = "send_uncertain"
    SEND_NOTICE = "send_notice"
    EMAIL_SENT = "email_sent"
    DIGEST = "digest"
    MAILBOX_BROKEN = "mailbox_broken"
    INBOUND = "inbound"  # a reply, out-of-office or bounce that came back (Notice.inbound_id)


class Notice(SQLModel, table=True):
    """Something to tell a rep in Slack, queued so that Slack never holds up delivery.

    It names sends, not words: the poster draws the message from the sends as they
    stand when it is posted. One rep's notices are posted in `id` order.
    """

    __table_args__ = (
        # The poster's question: what is due? (and, per rep, what is still waiting before it)
        Index(
            "ix_notice_due", "next_at", sqlite_where=text("done_at IS NULL"), postgresql_where=text("done_at IS NULL")
        ),
        Index(
            "ix_notice_waiting",
            "rep_id",
            "id",
            sqlite_where=text("done_at IS NULL"),
            postgresql_where=text("done_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # a NoticeKind
    rep_id: str  # whose messages it draws (the feed line of an email goes with its rep)
    send_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    text: str | None = None  # a send_notice's words
    inbound_id: int | None = None  # an inbound notice's message (the `inbound` table)
    attempts: int = 0
    next_at: dt.datetime = instant(nullable=False)
    lease_until: dt.datetime | None = instant()  # a poster is posting it until then
    claimed_by: str | None = None
    done_at: dt.datetime | None = instant()
    last_error: str | None = None  # Slack's answer to the last try (kept when it was given up)
    created_at: dt.datetime = created()


class MailboxAuth(StrEnum):
    PASSWORD = "password"  # a password or app password
    OAUTH = "oauth"  # an OAuth 2.0 refresh token (Google Workspace, Microsoft 365): bot/mail/oauth.py


class MailboxState(StrEnum):
    CONNECTED = "connected"
    BROKEN = "broken"  # its login was refused: the rep's emails wait until it is set again


class Mailbox(SQLModel, table=True):
    """A rep's own mailbox: SMTP to send, IMAP to read. Services: bot/mail/mailboxes.py."""

    slack_user_id: str = Field(primary_key=True)
    provider: str  # a bot.mail.mailboxes.Provider: its preset fills the limits left empty
    smtp_host: str
    smtp_port: int
    smtp_security: str  # a bot.mail.urls.Security
    smtp_user: str
    imap_host: str | None = None
    imap_port: int | None = None
    imap_security: str | None = None
    imap_user: str | None = None
    auth: str = MailboxAuth.PASSWORD
    # The password (or, with oauth, the refresh token), Fernet-encrypted under SECRET_KEY.
    secret: str = Field(repr=False)
    per_minute: int | None = None  # None: the provider's preset
    per_day: int | None = None  # per rolling 24 hours
    max_connections: int | None = None
    state: str = MailboxState.CONNECTED
    last_error: str | None = None
    created_at: dt.datetime = created()
    updated_at: dt.datetime = created()


class OAuthState(SQLModel, table=True):
    """A consent a rep started: the `state` of its authorization request, single-use, for minutes.

    Only hashes of the state and of the browser's cookie are stored; the PKCE verifier
    is Fernet-encrypted under SECRET_KEY. bot/mail/oauth.py.
    """

    state_hash: str = Field(primary_key=True)  # sha256 of the state sent to the provider
    slack_user_id: str
    provider: str  # a bot.mail.mailboxes.Provider (google, microsoft365)
    browser_hash: str  # sha256 of the cookie set in the browser that started it
    verifier: str = Field(repr=False)  # the PKCE code verifier, encrypted
    expires_at: dt.datetime = instant(nullable=False)
    created_at: dt.datetime = created()


class Hold(SQLModel, table=True):
    """A rep whose sends wait: their mailbox is at a limit, was asked to slow down, or is broken."""

    rep_id: str = Field(primary_key=True)
    until: dt.datetime | None = instant()  # None: until lifted (a broken mailbox, reconnected)
    reason: str = ""
    told_on: dt.date | None = None  # the rep was told on this (UTC) day that a limit holds their emails
    updated_at: dt.datetime = created()


class Suppressed(SQLModel, table=True):
    """An address no campaign of the company may email again (unsubscribed, bounced), until an admin lifts it."""

    email: str = Field(primary_key=True)  # normalized, as people's (bot/services/people.py)
    reason: str
    created_at: dt.datetime = created()


class SentCopy(SQLModel, table=True):
    """An email sent through a rep's own mailbox, to append to its Sent folder (bot/mail/sent_copies.py).

    For servers that keep no copy of what is sent through SMTP. Deleted once appended;
    one given up keeps `done_at` and its last error.
    """

    __table_args__ = (
        Index(
            "ix_sent_copy_due",
            "next_at",
            sqlite_where=text("done_at IS NULL"),
            postgresql_where=text("done_at IS NULL"),
        ),
    )

    send_id: int = Field(sa_column=Column(Integer, ForeignKey("send.id"), primary_key=True, autoincrement=False))
    rep_id: str  # whose mailbox
    message_id: str  # to find it in the Sent folder should an append be tried again
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False), repr=False)  # the message as sent
    sent_at: dt.datetime = instant(nullable=False)
    attempts: int = 0
    next_at: dt.datetime = instant(nullable=False)
    lease_until: dt.datetime | None = instant()  # a copier is appending it until then
    claimed_by: str | None = None
    done_at: dt.datetime | None = instant()  # given up
    last_error: str | None = None
    created_at: dt.datetime = created()


class SyncEvent(StrEnum):
    """What happened to a send that Salesforce is told of (bot/services/sync.py)."""

    TASK_QUEUED = "task_queued"  # a Task, not started, due on the task's day
    TASK_SENT = "task_sent"  # that Task completed, with the body as sent
    TASK_SCHEDULED = "task_scheduled"  # that Task's ActivityDate moved
    TASK_SKIPPED = "task_skipped"  # that Task completed, marked skipped
    EMAIL_SENT = "email_sent"  # an automatic email: a completed Task
    REPLY = "reply"  # the person replied: a completed Task "Reply: <subject>"


class SyncOutcome(StrEnum):
    SYNCED = "synced"
    UNMATCHED = "unmatched"  # no Contact or Lead for the person (or no Task to update); `last_error` says why
    FAILED = "failed"  # Salesforce refused it for what it is, GIVE_UP_AFTER times


class SalesforceSync(SQLModel, table=True):
    """One event to write to Salesforce, retried until done. A send's events go in `id` order."""

    __tablename__ = "salesforce_sync"
    __table_args__ = (
        Index(
            "ix_salesforce_sync_due",
            "next_at",
            sqlite_where=text("done_at IS NULL"),
            postgresql_where=text("done_at IS NULL"),
        ),
        Index("ix_salesforce_sync_send", "send_id", "id"),
        Index("ix_salesforce_sync_task", "sf_task_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event: SyncEvent = state(SyncEvent)
    send_id: int = Field(foreign_key="send.id")
    # A reply's subject and body (the other events read theirs from the send).
    subject: str | None = None
    body: str | None = None
    sf_who_id: str | None = None  # the Contact or Lead
    sf_task_id: str | None = None  # the Task written (or updated)
    attempts: int = 0
    next_at: dt.datetime = instant(nullable=False)
    lease_until: dt.datetime | None = instant()
    claimed_by: str | None = None
    done_at: dt.datetime | None = instant()
    outcome: SyncOutcome | None = Field(default=None, sa_column=Column(EnumText(SyncOutcome), nullable=True))
    last_error: str | None = None
    created_at: dt.datetime = created()


class SalesforceCursor(SQLModel, table=True):
    """How far the poll of Tasks modified in Salesforce has read (one row per poll)."""

    __tablename__ = "salesforce_cursor"

    name: str = Field(primary_key=True)
    read_to: dt.datetime = instant(nullable=False)


class Inbound(SQLModel, table=True):
    """An inbound message the bot read, once: its unique key makes it acted on once by any number of workers."""

    __table_args__ = (
        UniqueConstraint("mailbox", "folder", "uidvalidity", "uid"),
        Index("ix_inbound_rep_kind", "rep_id", "kind", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    mailbox: str  # "rep:U..." or "bounces" (BOUNCE_IMAP_URL)
    folder: str
    uidvalidity: int = Field(sa_column=Column(BigInteger, nullable=False))  # IMAP's are 32-bit unsigned
    uid: int = Field(sa_column=Column(BigInteger, nullable=False))
    message_id: str | None = None
    kind: InboundKind = state(InboundKind)
    rep_id: str | None = None  # the rep it concerns (None: it belongs to no enrollment)
    enrollment_id: int | None = None  # the enrollment it belongs to
    send_id: int | None = None  # the email it answers (or the enrollment's latest)
    ended: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # enrollments it ended
    from_email: str = ""
    subject: str = ""
    excerpt: str = ""  # the first lines, without the quoted history
    status: str | None = None  # a bounce's status and diagnostic
    return_on: dt.date | None = None  # an out-of-office's return date
    resume_at: dt.datetime | None = instant()  # when its out-of-office pause ends
    received_at: dt.datetime = instant(nullable=False)
    undone_at: dt.datetime | None = instant()  # "Not a reply: go on"


class MailboxCursor(SQLModel, table=True):
    """Where reading a mailbox's folder left off: a restart neither misses nor repeats a message."""

    mailbox: str = Field(primary_key=True)
    folder: str = Field(primary_key=True)
    uidvalidity: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_uid: int = Field(
        sa_column=Column(BigInteger, nullable=False)
    )  # the last UID read; the next pass starts after it
    updated_at: dt.datetime = created()


class MailboxLease(SQLModel, table=True):
    """One worker at a time watches a mailbox; another takes over when `lease_until` has passed."""

    mailbox: str = Field(primary_key=True)
    worker_id: str
    lease_until: dt.datetime = instant(nullable=False)


class ConnectionShare(SQLModel, table=True):
    """The connections one worker holds open (or asks for) to one mailbox's server.

    A mailbox's connection limit is counted across every worker from these rows
    (bot/services/connections.py); a dead worker's row stops counting at `lease_until`.
    """

    mailbox: str = Field(primary_key=True)
    worker_id: str = Field(primary_key=True)
    connections: int = 0  # open now, or granted and about to open
    wanted: int = 0  # what the worker would use; others leave it a fair share
    lease_until: dt.datetime = instant(nullable=False)
