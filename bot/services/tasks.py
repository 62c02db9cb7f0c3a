"""What a rep does to a send from Slack: send, edit, schedule or skip a task, and send
again or mark sent an email that failed or may not have gone out.

Every action checks that the send is the rep's (`NotYourSend`) and changes the send
with a conditional UPDATE (`... WHERE status = <the status it was read in>`), so two
clicks racing each other, or a request Slack retries, can never both win: the loser
finds the send already moved on and returns it as it now is, changing nothing.
The caller (the listener) commits.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from bot.core.rules import StepKind
from bot.core.templates import MAX_SUBJECT
from bot.services import progress
from bot.services.drafts import Draft, draft_or_problem
from bot.services.errors import NotYourSend, ServiceError
from bot.store.models import Campaign, Enrollment, EnrollmentStatus, Send, SendStatus

WAITING_FOR_REP = (SendStatus.FAILED, SendStatus.UNCERTAIN)


class TaskError(ServiceError):
    """A task action that cannot be done as asked; str() says why."""


def send_now(session: Session, send_id: int, rep_id: str, now: dt.datetime) -> Send:
    """Turn a queued task into an email due now; the caller then asks the deliverer for it."""
    send = _mine(session, send_id, rep_id)
    if send.status != SendStatus.QUEUED:
        return send
    _check_ready(session, send)
    return _move(
        session, send, SendStatus.QUEUED, kind=StepKind.EMAIL, status=SendStatus.PLANNED, due_at=now, updated_at=now
    )


def save_edit(session: Session, send_id: int, rep_id: str, subject: str, body: str, now: dt.datetime) -> Send:
    """Keep the rep's subject and body for this task; they go out as written."""
    subject = " ".join(subject.split())  # a header is one line
    if not subject:
        raise TaskError("The subject cannot be empty.")
    if len(subject) > MAX_SUBJECT:
        raise TaskError(f"The subject is {len(subject):,} characters; it can have at most {MAX_SUBJECT}.")
    send = _mine(session, send_id, rep_id)
    if send.status == SendStatus.QUEUED and send.subject == subject and send.body == body:
        return send  # the same save, again
    _require_queued(session, send)
    return _move(session, send, SendStatus.QUEUED, subject=subject, body=body, updated_at=now)


def schedule(session: Session, send_id: int, rep_id: str, at: dt.datetime, now: dt.datetime) -> Send:
    """Turn a queued task into an email planned for `at`, which must be in the future."""
    if at.tzinfo is None:
        raise ValueError("schedule() needs an aware datetime")
    send = _mine(session, send_id, rep_id)
    if send.status == SendStatus.PLANNED and send.kind == StepKind.EMAIL and send.due_at == at:
        return send  # the same request, again
    if at <= now:
        raise TaskError("Pick a time in the future.")
    _require_queued(session, send)
    _check_ready(session, send)
    return _move(
        session, send, SendStatus.QUEUED, kind=StepKind.EMAIL, status=SendStatus.PLANNED, due_at=at, updated_at=now
    )


def skip(session: Session, send_id: int, rep_id: str, now: dt.datetime) -> Send:
    """Skip a queued task: the step is done without an email and the campaign goes on."""
    send = _mine(session, send_id, rep_id)
    if send.status != SendStatus.QUEUED:
        return send
    _check_active(session, send)
    return _finish(session, send, SendStatus.QUEUED, sent=False, now=now)


def send_again(session: Session, send_id: int, rep_id: str, now: dt.datetime) -> Send:
    """Plan a failed or uncertain email again, due now; the caller asks the deliverer for it."""
    send = _mine(session, send_id, rep_id)
    if send.status not in WAITING_FOR_REP:
        return send
    _check_active(session, send)
    return _move(
        session,
        send,
        send.status,
        status=SendStatus.PLANNED,
        due_at=now,
        attempts=0,
        lease_until=None,
        claimed_by=None,
        updated_at=now,
    )


def mark_sent(session: Session, send_id: int, rep_id: str, now: dt.datetime) -> Send:
    """Record a failed or uncertain email as sent (the rep knows it arrived) and go on."""
    send = _mine(session, send_id, rep_id)
    if send.status not in WAITING_FOR_REP:
        return send
    _check_active(session, send)
    subject, body = send.subject, send.body
    if subject is None or body is None:
        # A thread step after this one quotes what was sent: keep it on the send.
        draft = _draft(session, send)
        subject = subject if subject is not None else draft.subject
        body = body if body is not None else draft.full_body
    return _finish(session, send, send.status, sent=True, now=now, subject=subject, body=body)


def _mine(session: Session, send_id: int, rep_id: str) -> Send:
    send = session.get(Send, send_id, populate_existing=True)
    if send is None:
        raise TaskError("This task no longer exists.")
    if send.rep_id != rep_id:
        raise NotYourSend()
    if send.status in (SendStatus.PAUSED, SendStatus.CANCELLED):
        _check_active(session, send)
        raise TaskError(f"This task was {describe(send)}.")
    return send


def _enrollment(session: Session, send: Send) -> Enrollment:
    enrollment = session.get(Enrollment, send.enrollment_id, populate_existing=True)
    assert enrollment is not None
    return enrollment


def _check_active(session: Session, send: Send) -> None:
    """Refuse with a clear sentence when the enrollment is paused or over."""
    enrollment = _enrollment(session, send)
    if enrollment.status == EnrollmentStatus.ACTIVE:
        return
    campaign = session.get(Campaign, enrollment.campaign_id)
    name = campaign.name if campaign else "this campaign"
    if enrollment.status == EnrollmentStatus.PAUSED:
        raise TaskError(f"This person is paused in “{name}”: resume them to act on this task.")
    raise TaskError(f"This person is no longer in “{name}” ({enrollment.status}): nothing to do.")


def _check_ready(session: Session, send: Send) -> None:
    """An email must not go out half-filled: fields with no value need the rep's edit first."""
    _check_active(session, send)
    if send.subject is not None and send.body is not None:
        return
    draft = _draft(session, send)
    if draft.missing:
        raise TaskError(f"This email has no value for {', '.join(draft.missing)}: edit it first.")


def _draft(session: Session, send: Send) -> Draft:
    """The send's draft; one that cannot be built is refused with the reason (Skip still works)."""
    draft, problem = draft_or_problem(session, send)
    if draft is None:
        raise TaskError(f"This email cannot go out: {problem}. Skip this step to go on.")
    return draft


def _require_queued(session: Session, send: Send) -> None:
    if send.status == SendStatus.QUEUED:
        return
    raise TaskError(f"This task is no longer waiting for you: it is {describe(send)}.")


def describe(send: Send) -> str:
    """A few words on where a send stands, for refusals."""
    if send.status == SendStatus.PLANNED:
        return "scheduled"
    if send.status == SendStatus.CANCELLED and send.reason:
        return f"cancelled ({send.reason})"
    return str(send.status)


def _move(session: Session, send: Send, expected: str, **values: Any) -> Send:
    """Change the send only if it is still in `expected`; either way return it as it now is."""
    assert send.id is not None
    session.execute(
        update(Send).where(col(Send.id) == send.id, col(Send.status) == expected).values(**values),
        execution_options={"synchronize_session": False},
    )
    session.refresh(send)
    return send


def _finish(
    session: Session,
    send: Send,
    expected: str,
    *,
    sent: bool,
    now: dt.datetime,
    subject: str | None = None,
    body: str | None = None,
) -> Send:
    """Mark the send done (first click wins) and plan the enrollment's next step."""
    assert send.id is not None
    done = SendStatus.SENT if sent else SendStatus.SKIPPED
    values: dict[str, Any] = {"status": done, "done_at": now, "updated_at": now}
    if subject is not None:
        values.update(subject=subject, body=body)
    won = session.execute(
        update(Send).where(col(Send.id) == send.id, col(Send.status) == expected).values(**values),
        execution_options={"synchronize_session": False},
    )
    session.refresh(send)
    if won.rowcount == 1:  # type: ignore[attr-defined]
        progress.complete(session, send, sent=sent, at=now)
    return send
