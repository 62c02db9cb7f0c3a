"""Emails due to go out, straight into the store: one for a unit test, thousands for e2e and bench."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, insert
from sqlmodel import Session, select

from bot.store.models import Campaign, Enrollment, Person, Rep, Send, Step
from tests.support.factories import REP_ID, make_campaign, make_rep
from tests.support.sends import enroll, make_person, make_send

ONE_EMAIL = [
    {
        "day": 1,
        "send": "at_time",
        "time": "09:00",
        "subject": "Hello {{ first_name }}",
        "body": "Hi {{ first_name }},\n\nshall we talk?",
    }
]


def due_email(
    session: Session,
    due_at: dt.datetime,
    email: str = "pat@buyer.example",
    *,
    campaign: Campaign | None = None,
    rep_id: str = REP_ID,
    **person: Any,
) -> Send:
    """A new person's first email (the default campaign: day 1 email, day 3 thread), due at `due_at`."""
    if session.get(Rep, REP_ID) is None:
        make_rep(session)
    if session.get(Rep, rep_id) is None:
        make_rep(session, rep_id, name=f"Rep {rep_id}", email=f"{rep_id.lower()}@seller.example")
    if campaign is None:
        campaign = session.exec(select(Campaign).where(Campaign.name == "Q4 outreach")).first() or make_campaign(
            session
        )
    person.setdefault("first_name", "Pat")
    person.setdefault("last_name", "Buyer")
    person.setdefault("company", "Acme")
    enrollment = enroll(session, campaign, make_person(session, email, **person), rep_id=rep_id, launched_at=due_at)
    return make_send(session, enrollment, 1, due_at=due_at, status="planned")


def reload(session: Session, send: Send) -> Send:
    """The send as stored now; ends the read, so that SQLite's write lock is free for a scheduler."""
    session.expire_all()
    fresh = session.get(Send, send.id)
    session.commit()
    assert fresh is not None
    return fresh


def seed_due_emails(
    engine: Engine, count: int, due_at: dt.datetime, *, steps: list[dict[str, Any]] | None = None, reps: int = 1
) -> list[int]:
    """`count` people enrolled in a one-email campaign by `reps` reps in turn, each email due at `due_at`; the send ids."""
    with Session(engine, expire_on_commit=False) as session:
        if session.get(Rep, REP_ID) is None:
            make_rep(session)
        rep_ids = [REP_ID] + [f"U0BULK{n:04d}" for n in range(1, reps)]
        for rep_id in rep_ids[1:]:
            if session.get(Rep, rep_id) is None:
                make_rep(session, rep_id, name=f"Rep {rep_id}", email=f"{rep_id.lower()}@seller.example")
        campaign = make_campaign(session, steps or ONE_EMAIL, name=f"Bulk {count} {due_at.isoformat()}")
        step = session.exec(select(Step).where(Step.campaign_id == campaign.id, Step.position == 1)).one()
        tag = f"{campaign.id}"
        person_ids = session.scalars(
            insert(Person).returning(Person.id, sort_by_parameter_order=True),
            [
                {
                    "email": f"person{i}.{tag}@buyer.example",
                    "first_name": f"Person{i}",
                    "fields": {},
                    "created_at": due_at,
                }
                for i in range(count)
            ],
        ).all()
        enrollment_ids = session.scalars(
            insert(Enrollment).returning(Enrollment.id, sort_by_parameter_order=True),
            [
                dict(
                    campaign_id=campaign.id,
                    version=1,
                    person_id=person_id,
                    rep_id=rep_ids[i % reps],
                    zone=campaign.timezone,
                    launched_at=due_at,
                    day_one=due_at.date(),
                    created_at=due_at,
                )
                for i, person_id in enumerate(person_ids)
            ],
        ).all()
        send_ids = session.scalars(
            insert(Send).returning(Send.id, sort_by_parameter_order=True),
            [
                dict(
                    enrollment_id=e,
                    step_id=step.id,
                    position=1,
                    rep_id=rep_ids[i % reps],
                    kind="email",
                    status="planned",
                    due_at=due_at,
                    created_at=due_at,
                    updated_at=due_at,
                )
                for i, e in enumerate(enrollment_ids)
            ],
        ).all()
        session.commit()
        return list(send_ids)
