"""Adding people to a campaign; removing, pausing and resuming one of them."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.core.rules import RuleError, SendOption
from bot.services import enrollments, progress
from bot.services.enrollments import add_people, end_enrollment, find_active, first_step_option, pause, remove, resume
from bot.services.errors import EnrollmentError
from bot.services.people import PersonInput, parse_people
from bot.store.models import Enrollment, Person, Send
from tests.support.factories import REP_ID, make_campaign

UTC = dt.UTC
OTHER_REP = "U0OTHER01"
NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # the `clock` fixture: Wed 10:00 in Stockholm

CHOOSE = [
    {"day": 1, "send": "choose", "subject": "Hi", "body": "Hi"},
    {"day": 3, "send": "thread", "body": "Again"},
]
TASK_FIRST = [
    {"day": 1, "send": "task", "subject": "Hi", "body": "Hi"},
    {"day": 2, "send": "at_time", "time": "10:00", "subject": "S", "body": "B"},
]
AT_14 = [
    {"day": 1, "send": "at_time", "time": "14:00", "subject": "Hi", "body": "Hi"},
    {"day": 2, "send": "same_as_previous", "subject": "S", "body": "B"},
]


def any_address() -> None:
    """As the outbox folder answers: every address can be emailed."""
    return None


def add(
    session: Session,
    campaign,
    text: str,
    *,
    rep_id: str = REP_ID,
    now: dt.datetime = NOW,
    send_at=None,
    smtputf8=any_address,
):
    people, invalid = parse_people(text)
    result = add_people(session, campaign, rep_id, people, now=now, send_at=send_at, invalid=invalid, smtputf8=smtputf8)
    session.commit()
    return result


def counts(session: Session) -> dict[str, int]:
    return {
        model.__name__: session.exec(select(func.count()).select_from(model)).one()
        for model in (Person, Enrollment, Send)
    }


def sends_of(session: Session, email: str, campaign) -> list[Send]:
    enrollment = find_active(session, campaign, email)
    assert enrollment is not None
    return list(session.exec(select(Send).where(Send.enrollment_id == enrollment.id).order_by(col(Send.id))))


def the_send(session: Session, email: str, campaign) -> Send:
    (send,) = sends_of(session, email, campaign)
    return send


# --- adding ----------------------------------------------------------------------


def test_adding_people_enrolls_each_and_plans_only_their_first_step(session: Session):
    campaign = make_campaign(session, AT_14)
    result = add(session, campaign, "Ada Lovelace <ada@example.com>, bob@example.com")

    assert [(line.email_or_text, line.outcome) for line in result.lines] == [
        ("ada@example.com", "added"),
        ("bob@example.com", "added"),
    ]
    enrollment = find_active(session, campaign, "ada@example.com")
    assert enrollment is not None
    assert (enrollment.status, enrollment.rep_id, enrollment.version, enrollment.position) == ("active", REP_ID, 1, 1)
    assert (enrollment.zone, enrollment.launched_at, enrollment.day_one) == (
        "Europe/Stockholm",
        NOW,
        dt.date(2026, 12, 2),
    )
    send = the_send(session, "ada@example.com", campaign)
    assert (send.position, send.kind, send.status, send.rep_id) == (1, "email", "planned", REP_ID)
    assert send.due_at == dt.datetime(2026, 12, 2, 13, 0, tzinfo=UTC)  # 14:00 in Stockholm
    assert counts(session) == {"Person": 2, "Enrollment": 2, "Send": 2}
    assert sorted(result.send_ids) == sorted(s.id for s in session.exec(select(Send)))
    person = session.exec(select(Person).where(Person.email == "ada@example.com")).one()
    assert (person.first_name, person.last_name) == ("Ada", "Lovelace")


def test_choose_is_due_at_the_send_at_the_rep_picked(session: Session):
    campaign = make_campaign(session, CHOOSE)
    send_at = dt.datetime(2026, 12, 5, 14, 0, tzinfo=UTC)  # a Saturday: honoured as picked
    add(session, campaign, "ada@example.com", send_at=send_at)
    enrollment = find_active(session, campaign, "ada@example.com")
    assert enrollment is not None and (enrollment.send_at, enrollment.day_one) == (send_at, dt.date(2026, 12, 5))
    assert the_send(session, "ada@example.com", campaign).due_at == send_at


def test_at_time_is_due_at_its_time_or_at_once_when_that_time_has_passed(session: Session):
    passed = make_campaign(session, name="morning")  # day 1 at 09:00 Stockholm; it is 10:00 there
    later = make_campaign(session, AT_14, name="afternoon")
    add(session, passed, "ada@example.com")
    add(session, later, "ada@example.com")
    assert the_send(session, "ada@example.com", passed).due_at == NOW
    assert the_send(session, "ada@example.com", later).due_at == dt.datetime(2026, 12, 2, 13, 0, tzinfo=UTC)


def test_the_rep_may_override_a_first_at_time_step(session: Session):
    campaign = make_campaign(session, AT_14)
    send_at = dt.datetime(2026, 12, 3, 7, 30, tzinfo=UTC)
    add(session, campaign, "ada@example.com", send_at=send_at)
    assert the_send(session, "ada@example.com", campaign).due_at == send_at


def test_a_first_task_is_queued_for_the_rep_at_launch(session: Session):
    campaign = make_campaign(session, TASK_FIRST)
    add(session, campaign, "ada@example.com")
    send = the_send(session, "ada@example.com", campaign)
    assert (send.kind, send.status, send.due_at) == ("task", "planned", NOW)


def test_send_in_recipient_plans_in_the_persons_own_time_zone(session: Session):
    campaign = make_campaign(session, AT_14, send_in="recipient")
    people = [PersonInput("ada@example.com", timezone="America/New_York"), PersonInput("bob@example.com")]
    add_people(session, campaign, REP_ID, people, now=NOW, smtputf8=any_address)
    session.commit()
    assert find_active(session, campaign, "ada@example.com").zone == "America/New_York"  # type: ignore[union-attr]
    assert the_send(session, "ada@example.com", campaign).due_at == dt.datetime(2026, 12, 2, 19, 0, tzinfo=UTC)
    assert the_send(session, "bob@example.com", campaign).due_at == dt.datetime(2026, 12, 2, 13, 0, tzinfo=UTC)


def test_a_person_with_an_unknown_time_zone_is_invalid_and_others_are_added(session: Session):
    campaign = make_campaign(session, AT_14, send_in="recipient")
    people = [PersonInput("ada@example.com", timezone="Mars/Olympus"), PersonInput("bob@example.com")]
    result = add_people(session, campaign, REP_ID, people, now=NOW, smtputf8=any_address)
    assert [(line.email_or_text, line.outcome, line.reason) for line in result.lines] == [
        ("ada@example.com", "invalid", "“Mars/Olympus” is not a known time zone."),
        ("bob@example.com", "added", ""),
    ]


def test_a_unicode_domain_is_added_in_its_ascii_form_and_the_mail_server_is_not_asked(session: Session):
    campaign = make_campaign(session)

    def never() -> str:
        raise AssertionError("only an address with non-ASCII before the @ needs SMTPUTF8")

    result = add(session, campaign, "ana@bücher.example", smtputf8=never)

    assert [(line.email_or_text, line.outcome) for line in result.lines] == [("ana@xn--bcher-kva.example", "added")]
    assert find_active(session, campaign, "ana@bücher.example") is not None  # the rep may type it either way


def test_a_unicode_local_part_is_added_only_when_it_can_be_emailed(session: Session):
    campaign = make_campaign(session)
    refusal = "the mail server (SMTP_URL) does not take them"

    refused = add(session, campaign, "josé@example.com, ada@example.com", smtputf8=lambda: refusal)
    accepted = add(session, campaign, "josé@example.com", smtputf8=any_address)

    assert [(line.email_or_text, line.outcome, line.reason) for line in refused.lines] == [
        ("josé@example.com", "invalid", f"this address cannot be emailed: {refusal}."),
        ("ada@example.com", "added", ""),
    ]
    assert [(line.email_or_text, line.outcome) for line in accepted.lines] == [("josé@example.com", "added")]


def test_invalid_entries_are_reported_and_never_stop_valid_ones(session: Session):
    campaign = make_campaign(session)
    result = add(session, campaign, "ada@example.com, not-an-address, Bob <bob@example>")
    assert [line.email_or_text for line in result.added] == ["ada@example.com"]
    assert [(line.email_or_text, line.reason) for line in result.invalid] == [
        ("not-an-address", "An email address must have an @-sign."),
        ("Bob <bob@example>", "The part after the @-sign is not valid. It should have a period."),
    ]
    assert counts(session) == {"Person": 1, "Enrollment": 1, "Send": 1}


@pytest.mark.parametrize(
    ("steps", "send_at", "message"),
    [
        (CHOOSE, None, "send-at date and time is required"),
        (CHOOSE, NOW - dt.timedelta(minutes=1), "in the past"),
        (TASK_FIRST, NOW + dt.timedelta(hours=1), "applies only when the first step is choose or at_time"),
    ],
)
def test_a_refused_add_changes_nothing(session: Session, steps, send_at, message):
    campaign = make_campaign(session, steps)
    add(session, campaign, "ada@example.com", send_at=NOW + dt.timedelta(hours=1) if steps is CHOOSE else None)
    before = counts(session)
    with pytest.raises(RuleError, match=message):
        add(session, campaign, "ada@example.com, Bob Builder <bob@example.com>", send_at=send_at)
    session.rollback()
    assert counts(session) == before
    assert session.exec(select(Person).where(Person.email == "bob@example.com")).first() is None


def test_a_second_add_of_an_active_person_is_refused_and_nothing_else_changes(session: Session):
    campaign = make_campaign(session)
    add(session, campaign, "Ada Lovelace <ada@example.com>")
    before = counts(session)
    result = add(session, campaign, "Augusta King <ada@example.com>", rep_id=OTHER_REP, now=NOW + dt.timedelta(days=1))
    assert [(line.outcome, line.reason) for line in result.lines] == [
        ("already_active", "ada@example.com is already active in campaign “Q4 outreach”.")
    ]
    assert counts(session) == before
    enrollment = find_active(session, campaign, "ada@example.com")
    assert enrollment is not None and (enrollment.rep_id, enrollment.launched_at) == (REP_ID, NOW)
    person = session.exec(select(Person)).one()
    assert (person.first_name, person.last_name) == ("Ada", "Lovelace")


def test_a_paused_person_is_not_added_again(session: Session):
    campaign = make_campaign(session)
    add(session, campaign, "ada@example.com")
    pause(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW)
    session.commit()
    result = add(session, campaign, "ada@example.com")
    assert result.already_active[0].reason == "ada@example.com is already paused in campaign “Q4 outreach”."


def test_an_add_that_loses_a_race_reports_already_active(session: Session, monkeypatch):
    campaign = make_campaign(session)
    add(session, campaign, "ada@example.com")
    # As if the other add committed between our check and our insert.
    monkeypatch.setattr(enrollments, "_active_people", lambda *args: {})
    result = add(session, campaign, "ada@example.com, bob@example.com")
    assert [(line.email_or_text, line.outcome) for line in result.lines] == [
        ("ada@example.com", "already_active"),
        ("bob@example.com", "added"),
    ]
    assert counts(session) == {"Person": 2, "Enrollment": 2, "Send": 2}


def test_a_person_stored_by_another_add_meanwhile_is_used_not_duplicated(session: Session, monkeypatch):
    first = make_campaign(session, name="first")
    second = make_campaign(session, name="second")
    add(session, first, "ada@example.com")
    looked_up = enrollments._stored_people
    calls = []

    def stored_people(*args):  # the first look-up ran before the other add committed
        calls.append(args)
        return {} if len(calls) == 1 else looked_up(*args)

    monkeypatch.setattr(enrollments, "_stored_people", stored_people)
    assert add(session, second, "ada@example.com").lines[0].outcome == "added"
    assert counts(session) == {"Person": 1, "Enrollment": 2, "Send": 2}


def test_an_address_given_twice_in_one_add_counts_once(session: Session):
    campaign = make_campaign(session)
    result = add(session, campaign, "ada@example.com, Ada Lovelace <ada@EXAMPLE.com>")
    assert [(line.email_or_text, line.outcome) for line in result.lines] == [("ada@example.com", "added")]
    assert counts(session) == {"Person": 1, "Enrollment": 1, "Send": 1}
    assert session.exec(select(Person.first_name)).one() == "Ada"  # the second mention filled the blank


def test_a_known_person_keeps_their_data_and_gains_what_was_blank(session: Session):
    first = make_campaign(session, name="first")
    second = make_campaign(session, name="second")
    add_people(
        session,
        first,
        REP_ID,
        [PersonInput("ada@example.com", "Ada", company="", fields={"team": "R&D"})],
        now=NOW,
        smtputf8=any_address,
    )
    add_people(
        session,
        second,
        REP_ID,
        [
            PersonInput(
                "ada@example.com", "Augusta", "King", company="Analytical", fields={"team": "Ops", "city": "London"}
            )
        ],
        now=NOW,
        smtputf8=any_address,
    )
    session.commit()
    session.expire_all()
    person = session.exec(select(Person)).one()
    assert (person.first_name, person.last_name, person.company) == ("Ada", "King", "Analytical")
    assert person.fields == {"team": "R&D", "city": "London"}


def test_a_person_can_be_in_two_campaigns(session: Session):
    first = make_campaign(session, name="first")
    second = make_campaign(session, AT_14, name="second")
    assert add(session, first, "ada@example.com").lines[0].outcome == "added"
    assert add(session, second, "ada@example.com").lines[0].outcome == "added"
    assert counts(session) == {"Person": 1, "Enrollment": 2, "Send": 2}


def test_first_step_option_tells_whether_a_send_at_is_needed(session: Session):
    assert first_step_option(session, make_campaign(session, CHOOSE, name="a")) is SendOption.CHOOSE
    assert first_step_option(session, make_campaign(session, TASK_FIRST, name="b")) is SendOption.TASK


# --- removing ------------------------------------------------------------------------


def test_removing_ends_the_enrollment_and_cancels_its_send_with_the_reason(session: Session):
    campaign = make_campaign(session)
    add(session, campaign, "ada@example.com")
    send = the_send(session, "ada@example.com", campaign)
    enrollment = remove(session, campaign, "ada@Example.COM", rep_id=REP_ID, now=NOW + dt.timedelta(hours=1))
    session.commit()
    assert (enrollment.status, enrollment.end_reason, enrollment.ended_at) == (
        "removed",
        f"removed by rep {REP_ID}",
        NOW + dt.timedelta(hours=1),
    )
    session.refresh(send)
    assert (send.status, send.reason) == ("cancelled", f"removed by rep {REP_ID}")
    assert find_active(session, campaign, "ada@example.com") is None


def test_only_the_adding_rep_or_the_campaign_owner_may_act(session: Session):
    campaign = make_campaign(session)  # owned by REP_ID
    add(session, campaign, "ada@example.com", rep_id=OTHER_REP)
    add(session, campaign, "bob@example.com", rep_id="U0THIRD01")
    refusal = "^Only the rep who added bob@example.com or the owner of campaign “Q4 outreach” can pause them.$"
    with pytest.raises(EnrollmentError, match=refusal):
        pause(session, campaign, "bob@example.com", rep_id=OTHER_REP, now=NOW)
    remove(session, campaign, "ada@example.com", rep_id=OTHER_REP, now=NOW)  # the adding rep
    remove(session, campaign, "bob@example.com", rep_id=REP_ID, now=NOW)  # the owner
    session.commit()
    assert find_active(session, campaign, "bob@example.com") is None


def test_removing_someone_not_in_the_campaign_says_so(session: Session):
    campaign = make_campaign(session, name="Q4")
    with pytest.raises(EnrollmentError, match="^ada@example.com is not in campaign “Q4”.$"):
        remove(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW)
    with pytest.raises(EnrollmentError, match="is not a valid email address: An email address must have an @-sign."):
        remove(session, campaign, "ada", rep_id=REP_ID, now=NOW)


def test_a_removed_person_can_be_added_again(session: Session):
    campaign = make_campaign(session)
    add(session, campaign, "ada@example.com")
    remove(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW)
    session.commit()
    assert add(session, campaign, "ada@example.com", now=NOW + dt.timedelta(days=2)).lines[0].outcome == "added"
    assert session.exec(select(Enrollment.status).order_by(col(Enrollment.id))).all() == ["removed", "active"]
    assert len(sends_of(session, "ada@example.com", campaign)) == 1


def test_ending_leaves_a_send_being_handed_to_the_mail_server_alone(session: Session):
    campaign = make_campaign(session)
    add(session, campaign, "ada@example.com")
    send = the_send(session, "ada@example.com", campaign)
    send.status = "sending"
    session.commit()
    enrollment = find_active(session, campaign, "ada@example.com")
    assert enrollment is not None
    assert end_enrollment(session, enrollment, "replied", "ada@example.com replied", NOW) == []
    session.commit()
    session.refresh(send)
    assert (enrollment.status, send.status, send.reason) == ("replied", "sending", None)


# --- pausing and resuming --------------------------------------------------------------


def test_pause_holds_the_planned_send_and_resume_moves_it_by_the_paused_days(session: Session):
    campaign = make_campaign(session, AT_14)
    add(session, campaign, "ada@example.com")
    pause(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW)
    session.commit()
    send = the_send(session, "ada@example.com", campaign)
    assert send.status == "paused"

    enrollment = resume(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW + dt.timedelta(days=3))
    session.commit()
    session.refresh(send)
    assert (enrollment.status, enrollment.shift_days, enrollment.paused_at) == ("active", 3, None)
    assert (send.status, send.reason) == ("planned", None)
    assert send.due_at == dt.datetime(2026, 12, 5, 13, 0, tzinfo=UTC)  # Wed 14:00 + 3 days, at 14:00


def test_the_next_step_after_resume_keeps_the_paused_days(session: Session):
    campaign = make_campaign(session, AT_14)
    add(session, campaign, "ada@example.com")
    pause(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW)
    enrollment = resume(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW + dt.timedelta(days=3))
    send = the_send(session, "ada@example.com", campaign)
    following = progress.complete(session, send, sent=True, at=send.due_at)
    session.commit()
    assert enrollment.shift_days == 3
    assert following is not None and following.due_at == dt.datetime(2026, 12, 6, 13, 0, tzinfo=UTC)  # day 2 + 3


def test_a_posted_task_goes_back_to_its_rep_on_resume(session: Session):
    campaign = make_campaign(session, TASK_FIRST)
    add(session, campaign, "ada@example.com")
    task = the_send(session, "ada@example.com", campaign)
    task.status = "queued"  # posted to the rep in Slack
    session.commit()
    pause(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW + dt.timedelta(hours=1))
    session.commit()
    session.refresh(task)
    assert task.status == "paused"
    resume(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW + dt.timedelta(hours=2))
    session.commit()
    session.refresh(task)
    assert (task.status, task.reason) == ("queued", None)


def test_pause_and_resume_refuse_the_wrong_state(session: Session):
    campaign = make_campaign(session)
    add(session, campaign, "ada@example.com")
    with pytest.raises(EnrollmentError, match="^ada@example.com is not paused in campaign “Q4 outreach”.$"):
        resume(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW)
    pause(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW)
    with pytest.raises(EnrollmentError, match="^ada@example.com is already paused in campaign “Q4 outreach”.$"):
        pause(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW)


def test_removing_a_paused_person_cancels_the_held_send(session: Session):
    campaign = make_campaign(session)
    add(session, campaign, "ada@example.com")
    pause(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW)
    send = the_send(session, "ada@example.com", campaign)
    remove(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW)
    session.commit()
    session.refresh(send)
    assert (send.status, send.reason) == ("cancelled", f"removed by rep {REP_ID}")


def test_a_send_that_went_out_during_a_pause_is_followed_on_resume(session: Session):
    campaign = make_campaign(session, AT_14)
    add(session, campaign, "ada@example.com")
    send = the_send(session, "ada@example.com", campaign)
    send.status = "sending"  # a worker is handing it to the mail server
    pause(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW)
    assert progress.complete(session, send, sent=True, at=NOW + dt.timedelta(minutes=1)) is None  # paused: nothing next
    resume(session, campaign, "ada@example.com", rep_id=REP_ID, now=NOW + dt.timedelta(days=2))
    session.commit()
    sends = sends_of(session, "ada@example.com", campaign)
    assert [(s.position, s.status) for s in sends] == [(1, "sent"), (2, "planned")]
