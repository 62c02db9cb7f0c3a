"""Campaigns in the store: import, versions, listing, details, export and preview."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, func, select

from bot.clock import FixedClock
from bot.core.rules import RuleError, SendIn
from bot.services import campaigns
from bot.services.campaign_file import CampaignFileError, CampaignSpec, parse_campaign
from bot.services.errors import ServiceError, UnknownCampaign
from bot.services.progress import steps_of
from bot.store.models import Campaign, Enrollment, EnrollmentStatus, Person, Step
from tests.support.factories import REP_ID, make_rep

STOCKHOLM = ZoneInfo("Europe/Stockholm")

WORKED_EXAMPLE = """\
name: Worked example
timezone: Europe/Stockholm
steps:
  - {day: 1, send: choose, subject: "Hello {{ first_name }}", body: "Hi {{ first_name }}"}
  - {day: 2, send: at_time, time: "08:30", subject: Two, body: Second}
  - {day: 2, send: same_as_previous, subject: Three, body: Third}
  - {day: 4, send: thread, body: Fourth}
  - {day: 4, send: task, subject: Five, body: Fifth}
"""


def spec(**changes: object) -> CampaignSpec:
    return dataclasses.replace(parse_campaign(WORKED_EXAMPLE), **changes)  # type: ignore[arg-type]


def enroll(session: Session, campaign: Campaign, email: str, status: str = EnrollmentStatus.ACTIVE) -> Enrollment:
    """An enrollment straight into the store, on the campaign's current version."""
    person = Person(email=email)
    session.add(person)
    session.flush()
    assert campaign.id is not None and person.id is not None
    enrollment = Enrollment(
        campaign_id=campaign.id,
        version=campaign.version,
        person_id=person.id,
        rep_id=REP_ID,
        status=status,
        zone="Europe/Stockholm",
        launched_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    )
    session.add(enrollment)
    session.commit()
    return enrollment


def count(session: Session, table: type) -> int:
    return session.exec(select(func.count()).select_from(table)).one()


def test_an_import_is_kept_only_when_its_caller_commits(session: Session, clock: FixedClock) -> None:
    campaigns.import_campaign(session, spec(), REP_ID, clock.now())
    session.rollback()  # e.g. the command failed after the import

    assert count(session, Campaign) == count(session, Step) == 0


def test_an_import_creates_the_campaign_and_its_steps(session: Session, clock: FixedClock) -> None:
    result = campaigns.import_campaign(session, spec(), REP_ID, clock.now())

    assert (result.created, result.new_version) == (True, False)
    assert result.message == 'created campaign "Worked example" (5 steps)'
    stored = campaigns.get_campaign(session, "Worked example")
    assert (stored.owner_id, stored.timezone, stored.version) == (REP_ID, "Europe/Stockholm", 1)
    steps = steps_of(session, stored.id, 1)  # type: ignore[arg-type]
    assert [(s.position, s.day, s.send, s.time) for s in steps] == [
        (1, 1, "choose", None),
        (2, 2, "at_time", dt.time(8, 30)),
        (3, 2, "same_as_previous", None),
        (4, 4, "thread", None),
        (5, 4, "task", None),
    ]
    assert steps[0].subject == "Hello {{ first_name }}"


def test_changed_steps_make_a_new_version_and_keep_the_old_one(session: Session, clock: FixedClock) -> None:
    first = campaigns.import_campaign(session, spec(), REP_ID, clock.now()).campaign
    enrollment = enroll(session, first, "ada@example.com")
    changed = spec()
    changed = dataclasses.replace(
        changed, steps=(*changed.steps[:3], dataclasses.replace(changed.steps[3], body="New"))
    )

    result = campaigns.import_campaign(session, changed, REP_ID, clock.advance(days=1))

    assert (result.created, result.new_version) == (False, True)
    assert result.message == 'updated campaign "Worked example" to version 2'
    campaign = campaigns.get_campaign(session, "Worked example")
    assert campaign.version == 2
    assert campaign.updated_at == clock.now()
    old = session.exec(select(Step).where(Step.version == 1).order_by(Step.position)).all()
    new = session.exec(select(Step).where(Step.version == 2).order_by(Step.position)).all()
    assert [s.body for s in old] == ["Hi {{ first_name }}", "Second", "Third", "Fourth", "Fifth"]
    assert [s.body for s in new] == ["Hi {{ first_name }}", "Second", "Third", "New"]
    session.refresh(enrollment)
    assert enrollment.version == 1  # the person already in the campaign keeps their schedule
    assert campaigns.spec_of(session, campaign) == changed


def test_an_unchanged_import_keeps_the_version(session: Session, clock: FixedClock) -> None:
    campaigns.import_campaign(session, spec(), REP_ID, clock.now())

    result = campaigns.import_campaign(session, spec(), REP_ID, clock.advance(days=1))

    assert (result.created, result.new_version, result.settings_changed) == (False, False, False)
    assert result.message == 'campaign "Worked example" unchanged'
    assert result.campaign.version == 1
    assert result.campaign.updated_at == dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
    assert count(session, Step) == 5


def test_changed_settings_update_the_campaign_in_place(session: Session, clock: FixedClock) -> None:
    campaigns.import_campaign(session, spec(), REP_ID, clock.now())

    result = campaigns.import_campaign(
        session, spec(skip_weekends=True, timezone="Europe/Oslo", send_in=SendIn.RECIPIENT), "U0OTHER01", clock.now()
    )

    assert (result.new_version, result.settings_changed) == (False, True)
    assert result.message == 'updated the settings of campaign "Worked example" (steps unchanged, version 1)'
    campaign = campaigns.get_campaign(session, "Worked example")
    assert (campaign.skip_weekends, campaign.timezone, campaign.send_in, campaign.owner_id) == (
        True,
        "Europe/Oslo",
        "recipient",
        "U0OTHER01",
    )
    assert count(session, Step) == 5


def test_without_a_timezone_the_owners_slack_time_zone_is_used(session: Session, clock: FixedClock) -> None:
    make_rep(session, timezone="America/Chicago")

    campaign = campaigns.import_campaign(session, spec(timezone=None), REP_ID, clock.now()).campaign

    assert campaign.timezone == "America/Chicago"


def test_without_any_time_zone_the_import_is_refused_and_stores_nothing(session: Session, clock: FixedClock) -> None:
    with pytest.raises(ServiceError) as caught:
        campaigns.import_campaign(session, spec(timezone=None), REP_ID, clock.now())

    assert str(caught.value) == (
        'Campaign "Worked example" has no timezone and its owner U0REP0001 has no known Slack time zone: '
        "add timezone: (like Europe/Stockholm) to the file."
    )
    assert count(session, Campaign) == 0


def test_an_owner_that_is_not_a_slack_user_id_is_refused(session: Session, clock: FixedClock) -> None:
    with pytest.raises(ServiceError, match='The owner must be a Slack user ID like U012AB3CD, not "rita"'):
        campaigns.import_campaign(session, spec(), "rita", clock.now())

    assert count(session, Campaign) == 0


def test_a_bad_file_stores_nothing(session: Session, clock: FixedClock) -> None:
    campaigns.import_campaign(session, spec(), REP_ID, clock.now())
    # A good first step, a bad last one: the file is refused whole.
    bad = WORKED_EXAMPLE.replace("send: task, subject: Five", "send: task, time: '25:00', subject: Five")

    with pytest.raises(CampaignFileError):
        campaigns.import_campaign(session, parse_campaign(bad), REP_ID, clock.now())

    assert campaigns.get_campaign(session, "Worked example").version == 1
    assert (count(session, Campaign), count(session, Step)) == (1, 5)


def test_an_unknown_name_is_refused(session: Session) -> None:
    with pytest.raises(UnknownCampaign, match="There is no campaign named “Q5”."):
        campaigns.get_campaign(session, "Q5")


def test_details_count_enrollments_by_status(session: Session, clock: FixedClock) -> None:
    campaign = campaigns.import_campaign(session, spec(), REP_ID, clock.now()).campaign
    for n, status in enumerate(["active", "active", "paused", "replied", "finished", "active"]):
        enroll(session, campaign, f"p{n}@example.com", status)

    details = campaigns.campaign_details(session, campaign)

    assert details.counts == {
        "active": 3,
        "paused": 1,
        "finished": 1,
        "removed": 0,
        "replied": 1,
        "bounced": 0,
        "unsubscribed": 0,
    }
    assert [step.position for step in details.steps] == [1, 2, 3, 4, 5]


def test_the_list_counts_current_steps_and_active_people(session: Session, clock: FixedClock) -> None:
    worked = campaigns.import_campaign(session, spec(), REP_ID, clock.now()).campaign
    enroll(session, worked, "ada@example.com")
    enroll(session, worked, "bob@example.com", EnrollmentStatus.REMOVED)
    shorter = spec(name="Another")
    campaigns.import_campaign(session, shorter, REP_ID, clock.now())
    campaigns.import_campaign(session, dataclasses.replace(shorter, steps=shorter.steps[:2]), REP_ID, clock.now())

    assert campaigns.list_campaigns(session) == [
        campaigns.CampaignSummary("Another", REP_ID, 2, 2, 0),
        campaigns.CampaignSummary("Worked example", REP_ID, 1, 5, 1),
    ]


def test_export_of_a_stored_campaign_is_the_imported_spec(session: Session, clock: FixedClock) -> None:
    original = parse_campaign(
        WORKED_EXAMPLE.replace(
            "timezone: Europe/Stockholm", "timezone: Asia/Tokyo\nfields: [deal]\nfooter: 'Box 1, {{ unsubscribe_url }}'"
        )
    )
    campaign = campaigns.import_campaign(session, original, REP_ID, clock.now()).campaign

    assert campaigns.spec_of(session, campaign) == original
    assert campaign.footer == "Box 1, {{ unsubscribe_url }}"


def test_a_new_footer_changes_the_campaign_in_place_not_its_steps(session: Session, clock: FixedClock) -> None:
    campaigns.import_campaign(session, spec(), REP_ID, clock.now())

    result = campaigns.import_campaign(session, dataclasses.replace(spec(), footer="Box 1"), REP_ID, clock.now())

    assert (result.new_version, result.settings_changed, result.campaign.version) == (False, True, 1)
    assert result.campaign.footer == "Box 1"


# --- preview ------------------------------------------------------------------------


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=STOCKHOLM)


def test_preview_of_the_worked_example() -> None:
    planned = campaigns.preview(spec(), start=local(2026, 12, 2, 10, 0), send_at=local(2026, 12, 2, 15, 0))

    assert [(p.position, p.due.astimezone(STOCKHOLM), p.thread_of) for p in planned] == [
        (1, local(2026, 12, 2, 15, 0), None),
        (2, local(2026, 12, 3, 8, 30), None),
        (3, local(2026, 12, 3, 15, 0), None),
        (4, local(2026, 12, 5, 15, 0), 3),
        (5, local(2026, 12, 5, 15, 0), None),
    ]


def test_preview_of_a_stored_campaign_matches_its_file(session: Session, clock: FixedClock) -> None:
    campaign = campaigns.import_campaign(session, spec(), REP_ID, clock.now()).campaign
    launch = dict(start=local(2026, 12, 2, 10, 0), send_at=local(2026, 12, 2, 15, 0))

    assert campaigns.preview(campaigns.spec_of(session, campaign), **launch) == campaigns.preview(spec(), **launch)


def test_preview_in_the_recipients_zone() -> None:
    recipient = spec(send_in=SendIn.RECIPIENT)
    new_york = ZoneInfo("America/New_York")

    planned = campaigns.preview(
        recipient,
        start=local(2026, 12, 2, 10, 0),
        send_at=dt.datetime(2026, 12, 2, 9, 0, tzinfo=new_york),
        person_zone="America/New_York",
    )

    assert campaigns.preview_zone(recipient, "America/New_York") == new_york
    assert planned[1].due == dt.datetime(2026, 12, 3, 8, 30, tzinfo=new_york)  # 08:30 where the person is
    assert campaigns.preview_zone(spec(), "America/New_York") == STOCKHOLM  # send_in: campaign


def test_preview_across_spring_forward_keeps_the_wall_time() -> None:
    # Europe/Stockholm moves from +01:00 to +02:00 on Sunday 2027-03-28.
    planned = campaigns.preview(spec(), start=local(2027, 3, 26, 9, 0), send_at=local(2027, 3, 26, 10, 0))

    assert [p.due.astimezone(STOCKHOLM).isoformat() for p in planned] == [
        "2027-03-26T10:00:00+01:00",
        "2027-03-27T08:30:00+01:00",
        "2027-03-27T10:00:00+01:00",
        "2027-03-29T10:00:00+02:00",
        "2027-03-29T10:00:00+02:00",
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(), RuleError, "the first step is choose: a send-at date and time is required"),
        (dict(send_at=local(2026, 12, 1, 15, 0)), RuleError, "the send-at time is in the past"),
        (
            dict(send_at=local(2026, 12, 2, 15, 0), person_zone="Mars/Olympus"),
            ServiceError,
            'Unknown time zone "Mars/Olympus"',
        ),
        (dict(send_at=dt.datetime(2026, 12, 2, 15, 0)), ServiceError, "has no UTC offset"),
    ],
)
def test_preview_refusals(kwargs: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        campaigns.preview(spec(), start=local(2026, 12, 2, 10, 0), **kwargs)


def test_a_file_without_a_time_zone_cannot_be_previewed() -> None:
    with pytest.raises(ServiceError, match='Campaign "Worked example" has no timezone'):
        campaigns.preview(spec(timezone=None), start=local(2026, 12, 2, 10, 0), send_at=local(2026, 12, 2, 15, 0))


def test_on_reply_is_stored_changed_in_place_and_exported(session, clock):
    import dataclasses

    from bot.core.inbound import OnReply

    first = campaigns.import_campaign(
        session, dataclasses.replace(spec(), on_reply=OnReply.STOP_COMPANY), REP_ID, clock.now()
    )
    assert first.campaign.on_reply == OnReply.STOP_COMPANY
    assert campaigns.spec_of(session, first.campaign).on_reply is OnReply.STOP_COMPANY
    again = campaigns.import_campaign(session, spec(), REP_ID, clock.now())
    assert (again.settings_changed, again.new_version, again.campaign.on_reply) == (True, False, OnReply.STOP_PERSON)
