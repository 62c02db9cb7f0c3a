"""People, enrollments and sends straight into the store, for tests of tasks and agendas."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.delivery.ports import Notifier
from bot.services import progress
from bot.store.db import session_scope
from bot.store.models import Campaign, Enrollment, Person, Send, Step
from tests.support.factories import REP_ID, make_campaign

TASK_STEPS = [
    {"day": 1, "send": "task", "subject": "Hello {{ first_name }}", "body": "Hi {{ first_name }},\nshall we talk?"},
    {"day": 3, "send": "at_time", "time": "09:00", "subject": "Still there?", "body": "Just checking in."},
]


def make_person(session: Session, email: str = "ada@example.com", **values: Any) -> Person:
    fields: dict[str, Any] = dict(first_name="Ada", last_name="Lovelace", company="Analytical Engines")
    fields.update(values)
    person = Person(email=email, **fields)
    session.add(person)
    session.flush()
    return person


def enroll(
    session: Session,
    campaign: Campaign,
    person: Person,
    *,
    rep_id: str = REP_ID,
    launched_at: dt.datetime,
    status: str = "active",
) -> Enrollment:
    enrollment = Enrollment(
        campaign_id=campaign.id,  # type: ignore[arg-type]
        version=campaign.version,
        person_id=person.id,  # type: ignore[arg-type]
        rep_id=rep_id,
        status=status,
        zone=campaign.timezone,
        launched_at=launched_at,
        day_one=launched_at.astimezone(dt.UTC).date(),
    )
    session.add(enrollment)
    session.flush()
    return enrollment


def make_send(
    session: Session,
    enrollment: Enrollment,
    position: int = 1,
    *,
    due_at: dt.datetime,
    status: str = "queued",
    **values: Any,
) -> Send:
    step = session.exec(
        select(Step).where(
            Step.campaign_id == enrollment.campaign_id, Step.version == enrollment.version, Step.position == position
        )
    ).one()
    values.setdefault("kind", "task" if step.send == "task" else "email")
    send = Send(
        enrollment_id=enrollment.id,  # type: ignore[arg-type]
        step_id=step.id,
        position=position,
        rep_id=enrollment.rep_id,
        status=status,
        due_at=due_at,
        **values,
    )
    session.add(send)
    session.commit()
    return send


def make_task(
    session: Session,
    *,
    due_at: dt.datetime,
    email: str = "ada@example.com",
    campaign: Campaign | None = None,
    rep_id: str = REP_ID,
    status: str = "queued",
    **person: Any,
) -> Send:
    """A queued task (step 1 of a task campaign, “Q4” unless given) for a new person."""
    if campaign is None:
        campaign = session.exec(select(Campaign).where(Campaign.name == "Q4")).first() or make_campaign(
            session, TASK_STEPS, name="Q4"
        )
    enrollment = enroll(session, campaign, make_person(session, email, **person), rep_id=rep_id, launched_at=due_at)
    return make_send(session, enrollment, 1, due_at=due_at, status=status)


class RecordingDeliverer:
    """A Deliverer as the contract says: each planned send goes out once, however often asked.

    It claims a send with a conditional UPDATE, records it as delivered, completes it,
    and tells the notifier (when given one), as the scheduler does.
    """

    def __init__(self, engine: Engine, clock: Clock, notifier: Notifier | None = None) -> None:
        self.engine, self.clock, self.notifier = engine, clock, notifier
        self.delivered: list[int] = []
        self._lock = threading.Lock()

    def deliver(self, send_ids: Sequence[int]) -> None:
        sent = []
        for send_id in send_ids:
            with session_scope(self.engine) as session:
                won = session.execute(
                    update(Send).where(col(Send.id) == send_id, col(Send.status) == "planned").values(status="sending")
                )
                if won.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                send = session.get(Send, send_id, populate_existing=True)
                assert send is not None
                progress.complete(session, send, sent=True, at=self.clock.now())
            sent.append(send_id)
        with self._lock:
            self.delivered += sent
        if sent and self.notifier is not None:
            self.notifier.email_sent(sent)
