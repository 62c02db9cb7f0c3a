"""Campaigns in the store: import from a spec, look up, list, describe, export, preview.

An import that changes the steps adds a new *version* of them; the old version's rows
stay, because each enrollment keeps the version it was launched with (and so its
schedule). Settings (time zone, skip_weekends, ...) live on the campaign and change
in place.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.core import rules
from bot.core.inbound import OnReply
from bot.core.rules import SendIn, SendOption
from bot.services import sync
from bot.services.campaign_file import CampaignSpec, StepSpec, is_zone
from bot.services.errors import ServiceError, UnknownCampaign
from bot.services.progress import steps_of
from bot.store.models import Campaign, Enrollment, EnrollmentStatus, Rep, Step

SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


@dataclass(frozen=True)
class ImportResult:
    campaign: Campaign
    created: bool
    new_version: bool
    settings_changed: bool = False
    steps: int = 0  # in the campaign's current version

    @property
    def message(self) -> str:
        """What the import did, in one line."""
        name = self.campaign.name
        if self.created:
            return f'created campaign "{name}" ({_count(self.steps, "step")})'
        if self.new_version:
            return f'updated campaign "{name}" to version {self.campaign.version}'
        if self.settings_changed:
            return f'updated the settings of campaign "{name}" (steps unchanged, version {self.campaign.version})'
        return f'campaign "{name}" unchanged'


@dataclass(frozen=True)
class CampaignSummary:
    name: str
    owner_id: str
    version: int
    steps: int
    active: int


@dataclass(frozen=True)
class CampaignDetails:
    campaign: Campaign
    steps: list[Step]
    counts: dict[str, int]  # enrollments by status; every status present
    not_in_salesforce: list[tuple[str, str]] = field(default_factory=list)  # (email, why) the sync skipped


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def import_campaign(session: Session, spec: CampaignSpec, owner_id: str, now: dt.datetime) -> ImportResult:
    """Create the campaign named in `spec`, or update the one of that name (the caller commits).

    The time zone is the file's, else the owner's Slack time zone (from the rep
    table), else, for an update, the campaign's current one.
    """
    if not SLACK_USER_ID.fullmatch(owner_id):
        raise ServiceError(f'The owner must be a Slack user ID like U012AB3CD, not "{owner_id}".')
    campaign = session.exec(select(Campaign).where(Campaign.name == spec.name)).first()
    timezone = spec.timezone or _owner_zone(session, owner_id) or (campaign.timezone if campaign else None)
    if timezone is None:
        raise ServiceError(
            f'Campaign "{spec.name}" has no timezone and its owner {owner_id} has no known Slack time zone: '
            "add timezone: (like Europe/Stockholm) to the file."
        )
    settings: dict[str, Any] = dict(
        owner_id=owner_id,
        timezone=timezone,
        skip_weekends=spec.skip_weekends,
        send_in=spec.send_in,
        task_time=spec.task_time,
        on_reply=spec.on_reply,
        fields=list(spec.fields),
        footer=spec.footer,
    )
    if campaign is None:
        campaign = Campaign(name=spec.name, version=1, created_at=now, updated_at=now, **settings)
        session.add(campaign)
        session.flush()
        _add_steps(session, campaign, spec.steps)
        session.flush()
        return ImportResult(campaign, created=True, new_version=False, settings_changed=True, steps=len(spec.steps))

    assert campaign.id is not None
    current = [_step_spec(step) for step in steps_of(session, campaign.id, campaign.version)]
    new_version = current != list(spec.steps)
    settings_changed = any(getattr(campaign, key) != value for key, value in settings.items())
    if settings_changed:
        for key, value in settings.items():
            setattr(campaign, key, value)
    if new_version:
        campaign.version += 1
        _add_steps(session, campaign, spec.steps)
    if new_version or settings_changed:
        campaign.updated_at = now
        session.add(campaign)
        session.flush()
    return ImportResult(campaign, False, new_version, settings_changed, steps=len(spec.steps))


def _owner_zone(session: Session, owner_id: str) -> str | None:
    rep = session.get(Rep, owner_id)
    return rep.timezone if rep is not None and rep.timezone and is_zone(rep.timezone) else None


def _add_steps(session: Session, campaign: Campaign, steps: Sequence[StepSpec]) -> None:
    assert campaign.id is not None
    session.add_all(
        Step(
            campaign_id=campaign.id,
            version=campaign.version,
            position=position,
            day=step.day,
            send=step.send,
            time=step.time,
            subject=step.subject,
            body=step.body,
        )
        for position, step in enumerate(steps, start=1)
    )
    session.info.get("steps", {}).pop((campaign.id, campaign.version), None)


def _step_spec(step: Step) -> StepSpec:
    return StepSpec(day=step.day, send=SendOption(step.send), time=step.time, subject=step.subject, body=step.body)


def get_campaign(session: Session, name: str) -> Campaign:
    """The campaign called `name`, or UnknownCampaign."""
    campaign = session.exec(select(Campaign).where(Campaign.name == name)).first()
    if campaign is None:
        raise UnknownCampaign(name)
    return campaign


def list_campaigns(session: Session) -> list[CampaignSummary]:
    """Every campaign by name, with its current steps and active enrollments counted."""
    # Keyed as Campaign.id is typed (None before a flush), so that .get(c.id) type-checks.
    steps: dict[int | None, int] = dict(
        session.exec(
            select(Step.campaign_id, func.count())
            .join(Campaign, col(Campaign.id) == col(Step.campaign_id))
            .where(col(Step.version) == col(Campaign.version))
            .group_by(col(Step.campaign_id))
        ).all()
    )
    active: dict[int | None, int] = dict(
        session.exec(
            select(Enrollment.campaign_id, func.count())
            .where(Enrollment.status == EnrollmentStatus.ACTIVE)
            .group_by(col(Enrollment.campaign_id))
        ).all()
    )
    return [
        CampaignSummary(c.name, c.owner_id, c.version, steps.get(c.id, 0), active.get(c.id, 0))
        for c in session.exec(select(Campaign).order_by(col(Campaign.name)))
    ]


def campaign_details(session: Session, campaign: Campaign) -> CampaignDetails:
    """The current version's steps and the campaign's enrollments counted by status."""
    assert campaign.id is not None
    counts = {status.value: 0 for status in EnrollmentStatus}
    rows = session.exec(
        select(Enrollment.status, func.count())
        .where(Enrollment.campaign_id == campaign.id)
        .group_by(col(Enrollment.status))
    )
    for status, count in rows:
        counts[status] = count
    unmatched = sync.unmatched_people(session, campaign.id)
    return CampaignDetails(campaign, steps_of(session, campaign.id, campaign.version), counts, unmatched)


def spec_of(session: Session, campaign: Campaign) -> CampaignSpec:
    """The campaign (its current version) as a spec, to export as a file."""
    assert campaign.id is not None
    return CampaignSpec(
        name=campaign.name,
        timezone=campaign.timezone,
        skip_weekends=campaign.skip_weekends,
        send_in=SendIn(campaign.send_in),
        task_time=campaign.task_time,
        on_reply=OnReply(campaign.on_reply),
        fields=tuple(campaign.fields),
        steps=tuple(_step_spec(step) for step in steps_of(session, campaign.id, campaign.version)),
        footer=campaign.footer,
    )


# --- preview -----------------------------------------------------------------------


def preview_zone(spec: CampaignSpec, person_zone: str | None = None) -> ZoneInfo:
    """The zone a person's wall-clock times are computed in (theirs with send_in: recipient)."""
    if spec.timezone is None:
        raise ServiceError(
            f'Campaign "{spec.name}" has no timezone: add timezone: (like Europe/Stockholm) to preview it.'
        )
    if person_zone is not None and not is_zone(person_zone):
        raise ServiceError(f'Unknown time zone "{person_zone}": use an IANA name like Europe/Stockholm.')
    return rules.zone_for(spec.timezone, spec.send_in, person_zone)


def preview(
    spec: CampaignSpec, start: dt.datetime, send_at: dt.datetime | None = None, person_zone: str | None = None
) -> list[rules.Planned]:
    """Every step's due time for a person launched at `start`, each step done when due.

    Raises ServiceError for a missing or unknown zone, rules.RuleError for a launch
    the rules refuse (a `choose` first step without `send_at`, a send-at in the past).
    """
    for label, value in (("start", start), ("send-at", send_at)):
        if value is not None and value.utcoffset() is None:
            raise ServiceError(f"The {label} time {value.isoformat()} has no UTC offset.")
    calendar = rules.Calendar(
        zone=preview_zone(spec, person_zone), skip_weekends=spec.skip_weekends, task_time=spec.task_time
    )
    return rules.preview(spec.rule_steps(), calendar, start, send_at)
