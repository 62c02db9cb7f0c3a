"""Build campaigns and reps straight into the store, for tests of everything else."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session

from bot.store.models import Campaign, Rep, Step

REP_ID = "U0REP0001"


def hhmm(value: str | None) -> dt.time | None:
    return dt.time.fromisoformat(value) if value else None


def make_rep(session: Session, slack_user_id: str = REP_ID, **profile: Any) -> Rep:
    """A rep as their Slack profile would describe them."""
    values: dict[str, Any] = dict(
        name="Rita Rep", first_name="Rita", last_name="Rep", email="rita@seller.example", timezone="Europe/Stockholm"
    )
    values.update(profile)
    rep = Rep(slack_user_id=slack_user_id, **values)
    session.add(rep)
    session.commit()
    return rep


def make_campaign(
    session: Session,
    steps: list[dict[str, Any]] | None = None,
    *,
    name: str = "Q4 outreach",
    owner_id: str = REP_ID,
    timezone: str = "Europe/Stockholm",
    skip_weekends: bool = False,
    send_in: str = "campaign",
    task_time: str = "09:00",
    fields: list[str] | None = None,
) -> Campaign:
    """A campaign (version 1) with steps given as dicts: day, send, time, subject, body."""
    steps = steps or [
        {
            "day": 1,
            "send": "at_time",
            "time": "09:00",
            "subject": "Hello {{ first_name }}",
            "body": "Hi {{ first_name }}",
        },
        {"day": 3, "send": "thread", "body": "Following up"},
    ]
    campaign = Campaign(
        name=name,
        owner_id=owner_id,
        timezone=timezone,
        skip_weekends=skip_weekends,
        send_in=send_in,
        task_time=dt.time.fromisoformat(task_time),
        fields=fields or [],
    )
    session.add(campaign)
    session.flush()
    for position, step in enumerate(steps, start=1):
        session.add(
            Step(
                campaign_id=campaign.id,
                version=1,
                position=position,
                day=step["day"],
                send=step["send"],
                time=hhmm(step.get("time")),
                subject=step.get("subject"),
                body=step.get("body", ""),
            )
        )
    session.commit()
    return campaign
