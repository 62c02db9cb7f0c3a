"""Enrollments: adding people to a campaign, and removing, pausing and resuming one.

Adding is one bulk operation whatever the number of people: a few statements, each
over all of them (SQLAlchemy Core INSERT ... RETURNING fed by arrays, see
`bot.store.bulk`), never one round trip per person. Only the first step of each
enrollment is planned; `progress.complete` plans the rest. The caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError
from sqlalchemy import Table, bindparam, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from bot.core import rules
from bot.services import progress, suppression
from bot.services.errors import EnrollmentError
from bot.services.people import Invalid, PersonInput, normalize_email
from bot.store import bulk, locks
from bot.store.models import (
    ACTIVE_STATUSES,
    Campaign,
    Enrollment,
    EnrollmentStatus,
    Person,
    Send,
    SendStatus,
)

Outcome = Literal["added", "already_active", "invalid"]

# A paused send remembers whether it was a task already posted to its rep.
PAUSED_QUEUED = "paused while queued"
PAUSED_PLANNED = "paused"
# Ending an enrollment cancels these; a send being handed to the mail server is left alone.
CANCELLABLE = (SendStatus.PLANNED, SendStatus.QUEUED, SendStatus.PAUSED)
# Fields of a person that an add fills in when the stored person has them blank.
PERSON_FIELDS = ("first_name", "last_name", "company", "title", "timezone")

PERSON: Table = Person.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models but does not declare it
ENROLLMENT: Table = Enrollment.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models but does not declare it
SEND: Table = Send.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models but does not declare it
ACTIVE_ONCE = next(index for index in ENROLLMENT.indexes if index.name == "uq_enrollment_active")


@dataclass(frozen=True)
class AddLine:
    """What happened to one entry of an add."""

    email_or_text: str
    outcome: Outcome
    reason: str = ""


@dataclass
class AddResult:
    lines: list[AddLine] = field(default_factory=list)
    send_ids: list[int] = field(default_factory=list)  # the first sends planned

    def _with(self, outcome: Outcome) -> list[AddLine]:
        return [line for line in self.lines if line.outcome == outcome]

    @property
    def added(self) -> list[AddLine]:
        return self._with("added")

    @property
    def already_active(self) -> list[AddLine]:
        return self._with("already_active")

    @property
    def invalid(self) -> list[AddLine]:
        return self._with("invalid")


def first_step_option(session: Session, campaign: Campaign) -> rules.SendOption:
    """The send option of the campaign's first step (`choose` needs a send-at time)."""
    return rules.SendOption(_steps(session, campaign)[0].send)


def add_people(
    session: Session,
    campaign: Campaign,
    rep_id: str,
    people: Sequence[PersonInput],
    *,
    now: dt.datetime,
    send_at: dt.datetime | None = None,
    invalid: Sequence[Invalid] = (),
    smtputf8: Callable[[], str | None],
) -> AddResult:
    """Enroll `people` (normalized addresses, see people.parse_people) as `rep_id`, launched at `now`.

    `smtputf8` is asked only when an address has non-ASCII characters before the @:
    None when such an address can be emailed (transports.smtputf8_refusal), else why
    not; the person is then refused. Raises rules.RuleError, having changed nothing,
    when the launch breaks a rule (the first step is choose and there is no send-at
    time, a send-at in the past ...).
    """
    steps = _steps(session, campaign)
    ruled = progress.rule_steps(steps)
    plans = _Plans(campaign, ruled, now, send_at)
    plans.check()  # a launch error refuses the whole add before anything is written

    unique = _unique(people)
    stored = _stored_people(session, list(unique))
    zones: dict[str, str] = {}
    refused = _undeliverable(unique, smtputf8)
    for email, reason in suppression.suppressed_among(session, unique).items():
        refused[email] = f"{email} is suppressed ({reason}): no campaign emails it again unless an admin lifts it."
    for email, person in unique.items():
        if email in refused:
            continue
        timezone = (stored[email]["timezone"] if email in stored else None) or person.timezone
        zone = plans.zone_for(timezone)
        if zone is None:
            refused[email] = f"“{timezone}” is not a known time zone."
        else:
            zones[email] = zone
    wanted = {email: person for email, person in unique.items() if email in zones}

    _fill_blanks(session, wanted, stored)
    person_ids = {email: row["id"] for email, row in stored.items()}
    person_ids.update(_insert_people(session, [p for e, p in wanted.items() if e not in stored], now))
    active = _active_people(session, campaign, [person_ids[email] for email in wanted])

    launch = _launch(campaign, rep_id, plans, now)
    rows = [
        {"person_id": person_ids[email], "zone": zones[email], "day_one": plans.first(zones[email])[1]}
        for email in wanted
        if person_ids[email] not in active
    ]
    # A concurrent add of the same person loses on uq_enrollment_active and skips the row.
    inserted = bulk.insert_many(
        session, ENROLLMENT, rows, launch, ENROLLMENT.c.id, ENROLLMENT.c.person_id, skip_existing=ACTIVE_ONCE
    )
    enrollment_ids = {person_id: enrollment_id for enrollment_id, person_id in inserted}
    send_ids = _plan_first_sends(session, steps[0], rows, launch, enrollment_ids, plans)

    result = AddResult(send_ids=send_ids)
    for email in unique:
        person_id = person_ids.get(email)
        if email in refused:
            result.lines.append(AddLine(email, "invalid", refused[email]))
        elif person_id in enrollment_ids:
            result.lines.append(AddLine(email, "added"))
        else:
            status = active.get(person_id, EnrollmentStatus.ACTIVE)  # type: ignore[arg-type]  # a person_id of None finds no entry, as intended
            reason = f"{email} is already {status} in campaign “{campaign.name}”."
            result.lines.append(AddLine(email, "already_active", reason))
    result.lines += [AddLine(entry.text, "invalid", entry.reason) for entry in invalid]
    return result


def _undeliverable(people: Iterable[str], smtputf8: Callable[[], str | None]) -> dict[str, str]:
    """The addresses that cannot be emailed, and why: non-ASCII before the @ needs SMTPUTF8."""
    unicode = [email for email in people if not email.isascii()]  # domains are ASCII once normalized
    refusal = smtputf8() if unicode else None
    if refusal is None:
        return {}
    return {email: f"this address cannot be emailed: {refusal}." for email in unicode}


def find_active(session: Session, campaign: Campaign, email: str) -> Enrollment | None:
    """The person's active or paused enrollment in the campaign, if any."""
    try:
        address = normalize_email(email)
    except EmailNotValidError:
        return None
    return session.exec(
        select(Enrollment)
        .join(Person, col(Person.id) == col(Enrollment.person_id))
        .where(
            Enrollment.campaign_id == campaign.id,
            Person.email == address,
            col(Enrollment.status).in_(ACTIVE_STATUSES),
        )
    ).first()


def remove(session: Session, campaign: Campaign, email: str, *, rep_id: str, now: dt.datetime) -> Enrollment:
    """End the person's enrollment (status "removed"); its planned sends are cancelled."""
    enrollment, _ = _enrollment_to_change(session, campaign, email, rep_id, "remove")
    end_enrollment(session, enrollment, EnrollmentStatus.REMOVED, f"removed by rep {rep_id}", now)
    return enrollment


def pause(session: Session, campaign: Campaign, email: str, *, rep_id: str, now: dt.datetime) -> Enrollment:
    """Hold the person's enrollment: what it had planned waits until `resume`."""
    enrollment, address = _enrollment_to_change(session, campaign, email, rep_id, "pause")
    if enrollment.status == EnrollmentStatus.PAUSED:
        raise EnrollmentError(f"{address} is already paused in campaign “{campaign.name}”.")
    pause_enrollment(session, enrollment, now)
    return enrollment


def resume(session: Session, campaign: Campaign, email: str, *, rep_id: str, now: dt.datetime) -> Enrollment:
    """Go on with a paused enrollment: the remaining days move later by the paused days."""
    enrollment, address = _enrollment_to_change(session, campaign, email, rep_id, "resume")
    if enrollment.status != EnrollmentStatus.PAUSED:
        raise EnrollmentError(f"{address} is not paused in campaign “{campaign.name}”.")
    resume_enrollment(session, enrollment, now)
    return enrollment


def pause_enrollment(
    session: Session, enrollment: Enrollment, now: dt.datetime, *, until: dt.datetime | None = None
) -> None:
    """Hold an active enrollment; `until`: the scheduler resumes it then (an out-of-office)."""
    lock(session, enrollment)
    if enrollment.status != EnrollmentStatus.ACTIVE:
        return  # it ended (or was paused) meanwhile, in another worker's transaction
    enrollment.status = EnrollmentStatus.PAUSED
    enrollment.paused_at = now
    enrollment.resume_at = until
    for send in _sends(session, enrollment, (SendStatus.PLANNED, SendStatus.QUEUED)):
        send.reason = PAUSED_QUEUED if send.status == SendStatus.QUEUED else PAUSED_PLANNED
        send.status = SendStatus.PAUSED
        send.updated_at = now
        session.add(send)
    session.add(enrollment)
    session.flush()


def resume_enrollment(session: Session, enrollment: Enrollment, now: dt.datetime) -> None:
    """Go on with a paused enrollment: the remaining days move later by the paused days (no catch-up)."""
    assert enrollment.paused_at is not None
    campaign = session.get(Campaign, enrollment.campaign_id)
    assert campaign is not None
    calendar = progress.calendar_of(campaign, enrollment.zone)
    _, moved = rules.resume(calendar, enrollment.paused_at, enrollment.paused_at, now)
    held = _sends(session, enrollment, (SendStatus.PAUSED,))
    for send in held:
        send.due_at, _ = rules.resume(calendar, send.due_at, enrollment.paused_at, now)
        send.status = SendStatus.QUEUED if send.reason == PAUSED_QUEUED else SendStatus.PLANNED
        send.reason = None
        send.updated_at = now
        session.add(send)
    enrollment.shift_days += moved
    enrollment.status = EnrollmentStatus.ACTIVE
    enrollment.paused_at = None
    enrollment.resume_at = None
    session.add(enrollment)
    if not held:
        _plan_after_pause(session, enrollment)
    session.flush()


def resume_due(session: Session, now: dt.datetime) -> list[Enrollment]:
    """Resume the enrollments whose out-of-office pause has ended (a periodic job of the scheduler)."""
    due = list(
        session.exec(
            select(Enrollment).where(
                Enrollment.status == EnrollmentStatus.PAUSED,
                col(Enrollment.resume_at).is_not(None),
                col(Enrollment.resume_at) <= now,
            )
        )
    )
    for enrollment in due:
        resume_enrollment(session, enrollment, now)
    return due


def reopen(session: Session, enrollment: Enrollment, now: dt.datetime) -> None:
    """Undo an ending ("Not a reply: go on"): back as if paused when it ended, then resumed.

    Raises EnrollmentError when the person is active in the campaign again meanwhile.
    """
    if enrollment.status in ACTIVE_STATUSES:
        return
    others = session.exec(
        select(Enrollment.id).where(
            Enrollment.campaign_id == enrollment.campaign_id,
            Enrollment.person_id == enrollment.person_id,
            col(Enrollment.status).in_(ACTIVE_STATUSES),
        )
    ).first()
    if others is not None:
        raise EnrollmentError("the person was added to the campaign again meanwhile: that enrollment goes on.")
    assert enrollment.ended_at is not None
    for send in _sends(session, enrollment, (SendStatus.CANCELLED,)):
        if send.reason == enrollment.end_reason:
            send.status, send.reason, send.updated_at = SendStatus.PAUSED, PAUSED_PLANNED, now
            session.add(send)
    enrollment.status = EnrollmentStatus.PAUSED
    enrollment.paused_at = enrollment.ended_at
    enrollment.ended_at = None
    enrollment.end_reason = None
    session.add(enrollment)
    session.flush()
    resume_enrollment(session, enrollment, now)


def end_enrollment(
    session: Session, enrollment: Enrollment, status: EnrollmentStatus, reason: str, now: dt.datetime
) -> list[int]:
    """End an active or paused enrollment with `status`; cancel what it had planned.

    Each cancelled send keeps `reason`. Returns the cancelled sends' ids (a posted task
    may need its Slack message updated). An enrollment that already ended is left as is.
    A send already marked `sending` is left alone: it went to the mail server.
    """
    lock(session, enrollment)
    if enrollment.status not in ACTIVE_STATUSES:
        return []
    enrollment.status = status
    enrollment.ended_at = now
    enrollment.end_reason = reason
    session.add(enrollment)
    cancelled = _sends(session, enrollment, CANCELLABLE)
    for send in cancelled:
        send.status = SendStatus.CANCELLED
        send.reason = reason
        send.lease_until = None
        send.updated_at = now
        session.add(send)
    session.flush()
    return [send.id for send in cancelled if send.id is not None]


# --- planning the first step -----------------------------------------------------


class _Plans:
    """The first step's due time and day 1 for each zone people are in (rules.first_due)."""

    def __init__(self, campaign: Campaign, steps: list[rules.Step], now: dt.datetime, send_at: dt.datetime | None):
        self.campaign = campaign
        self.steps = steps
        self.now = now
        self.send_at = send_at
        self.send_in = rules.SendIn(campaign.send_in)
        self.by_zone: dict[str, tuple[dt.datetime, dt.date]] = {}
        self.known: dict[str, bool] = {}

    def check(self) -> None:
        self.first(self.campaign.timezone)

    def zone_for(self, person_zone: str | None) -> str | None:
        """The zone a person's wall-clock times are in; None if their own zone is unknown."""
        if person_zone and not self._known(person_zone):
            return None
        return rules.zone_for(self.campaign.timezone, self.send_in, person_zone).key

    def first(self, zone: str) -> tuple[dt.datetime, dt.date]:
        if zone not in self.by_zone:
            calendar = progress.calendar_of(self.campaign, zone)
            self.by_zone[zone] = rules.first_due(self.steps, calendar, self.now, self.send_at)
        return self.by_zone[zone]

    def _known(self, zone: str) -> bool:
        if zone not in self.known:
            try:
                ZoneInfo(zone)
                self.known[zone] = True
            except (ZoneInfoNotFoundError, ValueError):
                self.known[zone] = False
        return self.known[zone]


def _launch(campaign: Campaign, rep_id: str, plans: _Plans, now: dt.datetime) -> dict[str, Any]:
    """What every enrollment of one add has in common."""
    return dict(
        campaign_id=campaign.id,
        version=campaign.version,
        rep_id=rep_id,
        status=EnrollmentStatus.ACTIVE.value,
        launched_at=now,
        send_at=plans.send_at,
        shift_days=0,
        position=1,
        created_at=now,
    )


def _plan_first_sends(
    session: Session,
    step: Any,
    rows: list[dict[str, Any]],
    launch: dict[str, Any],
    enrollment_ids: dict[int, int],
    plans: _Plans,
) -> list[int]:
    """Insert the first send of each new enrollment, as `progress.new_send` shapes it.

    new_send builds the send of the first enrollment (an ORM object per person would
    cost more than the insert); the others differ only in enrollment and due time.
    """
    new = [(enrollment_ids[row["person_id"]], row) for row in rows if row["person_id"] in enrollment_ids]
    if not new:
        return []
    first_id, first_row = new[0]
    first = progress.new_send(Enrollment(id=first_id, **launch, **first_row), step, plans.first(first_row["zone"])[0])
    per_send = ("id", "enrollment_id", "due_at")
    now = launch["created_at"]
    same = {c.name: getattr(first, c.name) for c in SEND.c if c.name not in per_send} | {
        "created_at": now,
        "updated_at": now,
    }
    sends = [{"enrollment_id": enrollment_id, "due_at": plans.first(row["zone"])[0]} for enrollment_id, row in new]
    return [send_id for (send_id,) in bulk.insert_many(session, SEND, sends, same, SEND.c.id)]


# --- people ------------------------------------------------------------------------


def _unique(people: Iterable[PersonInput]) -> dict[str, PersonInput]:
    """One entry per address; a repeated address adds what the first one left blank."""
    unique: dict[str, PersonInput] = {}
    for person in people:
        first = unique.get(person.email)
        unique[person.email] = person if first is None else _merged(first, person)
    return unique


def _merged(first: PersonInput, later: PersonInput) -> PersonInput:
    blanks = {name: getattr(later, name) for name in PERSON_FIELDS if not getattr(first, name)}
    return replace(first, **blanks, fields={**later.fields, **first.fields})


def _stored_people(session: Session, emails: list[str]) -> dict[str, dict[str, Any]]:
    columns = [PERSON.c.id, PERSON.c.email, PERSON.c.fields, *(PERSON.c[name] for name in PERSON_FIELDS)]
    query = core_select(*columns).where(bulk.in_values(session, PERSON.c.email, emails))
    return {row["email"]: dict(row) for row in session.execute(query).mappings()}


def _fill_blanks(session: Session, people: dict[str, PersonInput], stored: dict[str, dict[str, Any]]) -> None:
    """Stored people keep their data; what they have blank is filled from this add."""
    updates = []
    for email, row in stored.items():
        person = people.get(email)
        if person is None:
            continue
        filled = {name: row[name] or getattr(person, name) for name in PERSON_FIELDS}
        fields = {**person.fields, **(row["fields"] or {})}
        if any(filled[name] != row[name] for name in PERSON_FIELDS) or fields != row["fields"]:
            updates.append({"person_id": row["id"], "fields": fields, **filled})
    if updates:
        statement = update(PERSON).where(PERSON.c.id == bindparam("person_id"))
        session.execute(statement.values({name: bindparam(name) for name in (*PERSON_FIELDS, "fields")}), updates)


def _insert_people(session: Session, people: list[PersonInput], now: dt.datetime) -> dict[str, int]:
    rows: list[dict[str, Any]] = [
        dict(
            email=person.email,
            first_name=person.first_name,
            last_name=person.last_name,
            company=person.company,
            title=person.title,
            timezone=person.timezone,
            fields=person.fields,
        )
        for person in people
    ]
    # Someone else may store a few of them meanwhile: skip those, read them below.
    inserted = bulk.insert_many(
        session, PERSON, rows, {"created_at": now}, PERSON.c.id, PERSON.c.email, skip_existing=[PERSON.c.email]
    )
    ids = {email: person_id for person_id, email in inserted}
    # Someone else added a few of them in the meantime: use their rows.
    missing = [row["email"] for row in rows if row["email"] not in ids]
    ids.update({email: row["id"] for email, row in _stored_people(session, missing).items()})
    return ids


def _active_people(session: Session, campaign: Campaign, person_ids: list[int]) -> dict[int, str]:
    """person id -> status, for those already active or paused in the campaign."""
    query = core_select(ENROLLMENT.c.person_id, ENROLLMENT.c.status).where(
        ENROLLMENT.c.campaign_id == campaign.id,
        ENROLLMENT.c.status.in_(ACTIVE_STATUSES),
        bulk.in_values(session, ENROLLMENT.c.person_id, person_ids),
    )
    return {person_id: status for person_id, status in session.execute(query)}


# --- one enrollment ----------------------------------------------------------------


def _steps(session: Session, campaign: Campaign) -> list[Any]:
    assert campaign.id is not None
    return progress.steps_of(session, campaign.id, campaign.version)


def _enrollment_to_change(
    session: Session, campaign: Campaign, email: str, rep_id: str, verb: str
) -> tuple[Enrollment, str]:
    """The person's enrollment and normalized address, if `rep_id` may `verb` them."""
    try:
        address = normalize_email(email)
    except EmailNotValidError as error:
        raise EnrollmentError(f"“{email}” is not a valid email address: {error}") from None
    enrollment = find_active(session, campaign, address)
    if enrollment is None:
        raise EnrollmentError(f"{address} is not in campaign “{campaign.name}”.")
    if rep_id not in (enrollment.rep_id, campaign.owner_id):
        raise EnrollmentError(
            f"Only the rep who added {address} or the owner of campaign “{campaign.name}” can {verb} them."
        )
    return enrollment, address


def lock(session: Session, enrollment: Enrollment) -> None:
    """Hold the enrollment's row until commit, and read it as it is now.

    Whoever changes an enrollment and its sends takes the enrollment first, then its
    sends (`_sends`); the scheduler plans a next step under the same lock
    (progress.complete_many). So a reply ending the enrollment and a worker marking
    its email `sending` take turns on PostgreSQL; on SQLite, BEGIN IMMEDIATE already
    makes writers take turns, and the read brings the session's copy up to date.
    """
    session.flush()
    session.refresh(enrollment, with_for_update={"key_share": True})


def lock_many(session: Session, enrollment_ids: Iterable[int]) -> None:
    """Hold these enrollments' rows until commit, taken in id order as every writer takes several.

    For a caller about to change their sends (the scheduler recording outcomes), so
    that it takes each enrollment before its sends, as `lock` says. On SQLite
    BEGIN IMMEDIATE already makes writers take turns: nothing to do.
    """
    ids = sorted(set(enrollment_ids))
    if ids and locks.row_locks(session):
        statement = core_select(ENROLLMENT.c.id).where(ENROLLMENT.c.id.in_(ids)).order_by(ENROLLMENT.c.id)
        session.execute(statement.with_for_update(key_share=True))


def _sends(session: Session, enrollment: Enrollment, statuses: Sequence[str]) -> list[Send]:
    """The enrollment's sends in `statuses`, as stored now, their rows held until commit.

    A send that a worker is marking `sending` is waited for, then read again: it is
    no longer in `statuses` and is left alone.
    """
    return list(
        session.exec(
            select(Send)
            .where(Send.enrollment_id == enrollment.id, col(Send.status).in_(statuses))
            .order_by(col(Send.position))
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    )


def _plan_after_pause(session: Session, enrollment: Enrollment) -> None:
    """A send that was being handed to the mail server at pause time finished meanwhile:
    progress.complete planned nothing after it then, so plan the next step now."""
    finished = [SendStatus.SENT, SendStatus.SKIPPED, SendStatus.CANCELLED]
    still_open = session.exec(
        select(Send.id).where(Send.enrollment_id == enrollment.id, col(Send.status).not_in(finished))
    ).first()
    if still_open is not None:
        return  # still sending, failed or uncertain: its own completion plans the next step
    last = session.exec(
        select(Send)
        .where(Send.enrollment_id == enrollment.id, Send.position == enrollment.position)
        .where(col(Send.status).in_([SendStatus.SENT, SendStatus.SKIPPED]))
    ).first()
    if last is not None:
        done_at = last.sent_at or last.done_at
        assert done_at is not None
        progress.complete(session, last, sent=last.status == SendStatus.SENT, at=done_at)
