"""The tables: campaigns and their steps, people, enrollments, sends, reps, digests.

Every instant is stored timezone-aware UTC (the `UTCDateTime` column type refuses a
naive value and hands back aware ones, on SQLite too). Every state (a send's kind
and status, an enrollment's status, a step's send option) is its StrEnum, stored as
its value in a text column (`EnumText`).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, String, TypeDecorator, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from bot.clock import UTC
from bot.core.rules import SendIn, SendOption, StepKind


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
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    version: int
    person_id: int = Field(foreign_key="person.id", index=True)
    rep_id: str = Field(index=True)
    status: EnrollmentStatus = state(EnrollmentStatus, EnrollmentStatus.ACTIVE)
    zone: str  # the resolved IANA zone its wall-clock times are computed in
    launched_at: dt.datetime = instant(nullable=False)
    send_at: dt.datetime | None = instant()
    day_one: dt.date | None = None
    shift_days: int = 0
    position: int = 1  # the step in progress (1-based)
    paused_at: dt.datetime | None = instant()
    ended_at: dt.datetime | None = instant()
    end_reason: str | None = None
    created_at: dt.datetime = created()


class Send(SQLModel, table=True):
    """One planned or done send of a step to a person: an email, or a task for the rep."""

    __table_args__ = (
        # The scheduler's only question when idle: is anything planned due?
        Index("ix_send_due", "due_at", sqlite_where=text("status = 'planned'"), postgresql_where=text("status = 'planned'")),
        # Workers that died: in-flight sends whose lease ran out.
        Index(
            "ix_send_lease",
            "lease_until",
            sqlite_where=text("status = 'sending'"),
            postgresql_where=text("status = 'sending'"),
        ),
        Index("ix_send_rep_status", "rep_id", "status"),
        # Queued tasks whose Slack message never got through, to post again.
        Index(
            "ix_send_unposted",
            "updated_at",
            sqlite_where=text("status = 'queued' AND slack_ts IS NULL"),
            postgresql_where=text("status = 'queued' AND slack_ts IS NULL"),
        ),
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
