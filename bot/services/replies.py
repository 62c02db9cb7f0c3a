"""What happens when something comes back: replies, out-of-office, bounces, unsubscribes.

`act` records one inbound message (its mailbox, folder, UIDVALIDITY and UID are a
unique key, so however many workers read it, one acts) and, in the same transaction,
does what ../shared/spec/mail.md's Listening table says. It takes a Session and
`now`, flushes, and never commits: the watcher commits it with its mailbox cursor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlmodel import Session, col, select

from bot.core.inbound import InboundKind, Verdict, back_from_absence, company_domain
from bot.core.rules import StepKind
from bot.services import enrollments, notices, suppression
from bot.services.errors import ServiceError
from bot.services.unsubscribe import person_of_mailto
from bot.store import bulk
from bot.store.models import (
    ACTIVE_STATUSES,
    Campaign,
    Enrollment,
    EnrollmentStatus,
    Inbound,
    NoticeKind,
    OnReply,
    Person,
    Send,
    SendStatus,
)

INBOUND = Inbound.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ on table models at runtime; its type doesn't declare it
BOUNCES = "bounces"  # the key of the relay's bounce mailbox (BOUNCE_IMAP_URL)
KEY = ("mailbox", "folder", "uidvalidity", "uid")  # an inbound message's unique key
BOUNCE_KINDS = (InboundKind.BOUNCE, InboundKind.DELAYED)  # what comes back from mail servers, not people
TOLD = (InboundKind.REPLY, InboundKind.AUTO_REPLY, InboundKind.BOUNCE, InboundKind.UNSUBSCRIBE)


@dataclass(frozen=True)
class Where:
    """Where an inbound message was read: the mailbox key, its folder, UIDVALIDITY and UID."""

    mailbox: str
    folder: str
    uidvalidity: int
    uid: int
    rep_id: str | None  # the rep whose mailbox it is (None: the relay's bounce mailbox)


def act(
    session: Session,
    now: dt.datetime,
    where: Where,
    verdict: Verdict,
    received: dt.datetime,
    key: SecretStr | None = None,
) -> Inbound | None:
    """Record the message and act on it; None when it was recorded (and acted on) before.

    `key`: SECRET_KEY, which signs the unsubscribe tokens a List-Unsubscribe mailto carries.
    """
    row = {
        "mailbox": where.mailbox,
        "folder": where.folder,
        "uidvalidity": where.uidvalidity,
        "uid": where.uid,
        "message_id": verdict.message_id,
        "kind": verdict.kind.value,
        "from_email": verdict.from_email[:320],
        "subject": verdict.subject[:500],
        "excerpt": verdict.excerpt,
        "status": verdict.status,
        "received_at": received,
    }
    # A second worker reading the same message waits here for the first one's commit, then skips it.
    inserted = bulk.insert_many(
        session, INBOUND, [row], {"ended": []}, INBOUND.c.id, skip_existing=[INBOUND.c[name] for name in KEY]
    )
    if not inserted:
        return None
    inbound = session.get(Inbound, inserted[0][0])
    assert inbound is not None
    kind = verdict.kind
    # The List-Unsubscribe mailto was used: its signed token names the person, whatever
    # else the request says (some clients mark it Auto-Submitted, or write a body).
    if kind not in BOUNCE_KINDS and (person := mailto_person(session, verdict, key)) is not None:
        kind = InboundKind.UNSUBSCRIBE
        matched, send = _enrollments_of(session, person, None), None
    else:
        matched, send = _belongs(session, verdict, where.rep_id)
    if not matched:
        inbound.kind = InboundKind.OTHER if kind is not InboundKind.LIST else kind
        session.add(inbound)
        session.flush()
        return inbound
    first = matched[0]
    inbound.kind = kind
    inbound.rep_id = first.rep_id
    inbound.enrollment_id = first.id
    inbound.send_id = send.id if send is not None else _latest_sent_id(session, first)
    _do(session, now, inbound, verdict, matched, send)
    session.add(inbound)
    session.flush()
    if kind in TOLD and inbound.send_id is not None:
        notices.enqueue_for(session, NoticeKind.INBOUND, first.rep_id, [inbound.send_id], now, inbound_id=inbound.id)
    return inbound


def _do(
    session: Session, now: dt.datetime, inbound: Inbound, verdict: Verdict, matched: list[Enrollment], send: Send | None
) -> None:
    kind = InboundKind(inbound.kind)
    stamp = now.strftime("%Y-%m-%d %H:%M UTC")
    if kind is InboundKind.BOUNCE:
        _end_and_suppress(
            session, now, inbound, matched, EnrollmentStatus.BOUNCED, f"bounced: {verdict.status or '5.0.0'}"
        )
    elif kind is InboundKind.DELAYED:
        target = send or (session.get(Send, inbound.send_id) if inbound.send_id else None)
        if target is not None:
            target.last_error = f"delayed: {verdict.status or '4.0.0'}"
            session.add(target)
    elif kind is InboundKind.AUTO_REPLY:
        inbound.return_on = verdict.return_on
        if verdict.return_on is not None:
            for enrollment in matched:
                if enrollment.status == EnrollmentStatus.ACTIVE:
                    until = back_from_absence(verdict.return_on, ZoneInfo(enrollment.zone))
                    enrollments.pause_enrollment(session, enrollment, now, until=until)
                    inbound.resume_at = until
    elif kind is InboundKind.UNSUBSCRIBE:
        _end_and_suppress(session, now, inbound, matched, EnrollmentStatus.UNSUBSCRIBED, f"unsubscribed at {stamp}")
    elif kind is InboundKind.REPLY:
        reason = f"replied at {stamp}"
        for enrollment in _with_colleagues(session, matched):
            _end(session, inbound, enrollment, EnrollmentStatus.REPLIED, reason, now)
    # LIST: a mailing-list message from the person is not a reply; nothing changes.


def _end_and_suppress(
    session: Session,
    now: dt.datetime,
    inbound: Inbound,
    matched: list[Enrollment],
    status: EnrollmentStatus,
    reason: str,
) -> None:
    """A bounce or an unsubscribe: the enrollments end, and no campaign emails the address again."""
    for enrollment in matched:
        _end(session, inbound, enrollment, status, reason, now)
    for address in _addresses(session, matched):
        suppression.suppress(session, address, reason, now)


def _end(
    session: Session, inbound: Inbound, enrollment: Enrollment, status: EnrollmentStatus, reason: str, now: dt.datetime
) -> None:
    if enrollment.status in ACTIVE_STATUSES:
        enrollments.end_enrollment(session, enrollment, status, reason, now)
        assert enrollment.id is not None  # a stored row
        inbound.ended = [*inbound.ended, enrollment.id]


def _with_colleagues(session: Session, matched: list[Enrollment]) -> list[Enrollment]:
    """The enrollments a reply stops: with `on_reply: stop_company`, also the rep's others at the same company."""
    stopped = {enrollment.id: enrollment for enrollment in matched}
    for enrollment in matched:
        campaign = session.get(Campaign, enrollment.campaign_id)
        person = session.get(Person, enrollment.person_id)
        if campaign is None or person is None or campaign.on_reply != OnReply.STOP_COMPANY:
            continue
        domain = company_domain(person.email)
        if domain is None:
            continue  # a free-mail address is nobody's company
        colleagues = session.exec(
            select(Enrollment)
            .join(Person, col(Person.id) == col(Enrollment.person_id))
            .where(
                Enrollment.rep_id == enrollment.rep_id,
                col(Enrollment.status).in_(ACTIVE_STATUSES),
                col(Person.email).endswith("@" + domain),
            )
        )
        stopped.update((other.id, other) for other in colleagues)
    return list(stopped.values())


# --- whom it belongs to ---------------------------------------------------------------


def _belongs(session: Session, verdict: Verdict, rep_id: str | None) -> tuple[list[Enrollment], Send | None]:
    """The spec's order: our Message-IDs it answers; a bounce's Message-ID or address; the From address."""
    bounce = verdict.kind in BOUNCE_KINDS
    ids = verdict.bounced_ids + verdict.references if bounce else verdict.references
    send = _our_email(session, ids)
    if send is not None:
        enrollment = session.get(Enrollment, send.enrollment_id)
        return ([enrollment] if enrollment is not None else []), send
    if bounce:
        found = [e for address in verdict.bounced_to for e in _enrollments_of(session, address, rep_id)]
        return found, None
    if rep_id is None or not verdict.from_email:
        return [], None
    return _enrollments_of(session, verdict.from_email, rep_id), None


def _our_email(session: Session, message_ids: tuple[str, ...]) -> Send | None:
    """The latest email the bot sent among these Message-IDs."""
    if not message_ids:
        return None
    return session.exec(
        select(Send)
        .where(col(Send.message_id).in_(list(dict.fromkeys(message_ids))), Send.kind == StepKind.EMAIL)
        .order_by(col(Send.position).desc())
    ).first()


def _enrollments_of(session: Session, email: str, rep_id: str | None) -> list[Enrollment]:
    """The person's active or paused enrollments (of that rep, when one is given)."""
    query = (
        select(Enrollment)
        .join(Person, col(Person.id) == col(Enrollment.person_id))
        .where(Person.email == email.lower(), col(Enrollment.status).in_(ACTIVE_STATUSES))
        .order_by(col(Enrollment.id))
    )
    if rep_id is not None:
        query = query.where(Enrollment.rep_id == rep_id)
    return list(session.exec(query))


def _latest_sent_id(session: Session, enrollment: Enrollment) -> int | None:
    return (
        session.exec(
            select(Send.id)
            .where(Send.enrollment_id == enrollment.id, Send.status == SendStatus.SENT)
            .order_by(col(Send.position).desc())
        ).first()
        or session.exec(
            select(Send.id).where(Send.enrollment_id == enrollment.id).order_by(col(Send.position).desc())
        ).first()
    )


def _addresses(session: Session, matched: list[Enrollment]) -> list[str]:
    people = [session.get(Person, person_id) for person_id in {enrollment.person_id for enrollment in matched}]
    return sorted(person.email for person in people if person is not None)


def mailto_person(session: Session, verdict: Verdict, key: SecretStr | None) -> str | None:
    """The address of the person whose List-Unsubscribe mailto this message used (its subject's token), else None."""
    person_id = next((p for to in verdict.to if (p := person_of_mailto(to, verdict.subject, key)) is not None), None)
    person = session.get(Person, person_id) if person_id is not None else None
    return person.email if person is not None else None


# --- "Not a reply: go on" ---------------------------------------------------------------


class NotAReplyError(ServiceError):
    """The enrollments a reply ended cannot go on as asked."""


def go_on(session: Session, inbound_id: int, rep_id: str, now: dt.datetime) -> list[Enrollment]:
    """Undo a reply's stop: each enrollment it ended resumes as on resume (remaining days move later)."""
    inbound = session.get(Inbound, inbound_id)
    if inbound is None or inbound.kind != InboundKind.REPLY:
        raise NotAReplyError("That message is not a reply the bot acted on.")
    if inbound.rep_id != rep_id:
        raise NotAReplyError("Only the rep it was sent to can undo it.")
    reopened = []
    for enrollment_id in inbound.ended:
        enrollment = session.get(Enrollment, enrollment_id)
        if enrollment is not None and enrollment.status == EnrollmentStatus.REPLIED:
            try:
                enrollments.reopen(session, enrollment, now)
            except ServiceError as exc:
                raise NotAReplyError(str(exc)) from None
            reopened.append(enrollment)
    inbound.undone_at = now
    session.add(inbound)
    session.flush()
    return reopened
