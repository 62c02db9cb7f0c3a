"""`/campaign` end to end: signed commands in, private replies and modals out."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.store.models import Enrollment, Person, Rep, Send
from tests.support.factories import REP_ID, make_campaign
from tests.support.fake_slack import FakeSlack, Response
from tests.support.slack_requests import SlackRequests, datetime_value

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TASK_FIRST = [{"day": 1, "send": "task", "subject": "Hi {{ first_name }}", "body": "Hello"}]
CHOOSE_FIRST = [
    {"day": 1, "send": "choose", "subject": "Hello {{ first_name }}", "body": "Hi"},
    {"day": 3, "send": "thread", "body": "Following up"},
]
AT_15 = [{"day": 1, "send": "at_time", "time": "15:00", "subject": "Hello", "body": "Hi"}]


def ask(slack: SlackRequests, fake: FakeSlack, text: str, **options: Any) -> Response:
    """Type `/campaign text` and wait for the private reply."""
    url = fake.response_url()
    assert slack.command(text, response_url=url, **options).status == 200
    reply = fake.response_to(url)
    assert reply.payload["response_type"] == "ephemeral"
    return reply


def enrollments_of(session: Session) -> dict[str, Enrollment]:
    session.expire_all()
    rows = session.exec(select(Person.email, Enrollment).join(Enrollment, Enrollment.person_id == Person.id)).all()
    session.commit()  # SQLite: a read holds the write lock (BEGIN IMMEDIATE) until it ends
    return {email: enrollment for email, enrollment in rows}


def first_send(session: Session, email: str) -> Send:
    enrollment = enrollments_of(session)[email]
    send = session.exec(select(Send).where(Send.enrollment_id == enrollment.id)).one()
    session.commit()
    return send


def rep_row(session: Session) -> Rep:
    session.expire_all()
    rep = session.get(Rep, REP_ID)
    session.commit()
    assert rep is not None
    return rep


# --- help, list, show ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "help", "HELP"])
def test_usage(slack: SlackRequests, fake_slack: FakeSlack, text: str) -> None:
    reply = ask(slack, fake_slack, text)
    usage = str(reply.payload["blocks"])
    for subcommand in ("list", "show NAME", "add NAME PEOPLE", "remove NAME EMAIL", "pause NAME EMAIL", "/tasks"):
        assert subcommand in usage


def test_an_unknown_subcommand_is_named_with_the_usage(slack: SlackRequests, fake_slack: FakeSlack) -> None:
    reply = ask(slack, fake_slack, "launch Q4")
    assert reply.text.startswith("“launch” is not a /campaign command.")
    assert "add NAME PEOPLE" in str(reply.payload["blocks"])


def test_list(slack: SlackRequests, fake_slack: FakeSlack, session: Session) -> None:
    assert "no campaigns yet" in ask(slack, fake_slack, "list").text
    make_campaign(session, name="Q4 outreach")
    make_campaign(session, TASK_FIRST, name="Founders")
    blocks = str(ask(slack, fake_slack, "list").payload["blocks"])
    assert blocks.index("*Founders*: 1 step, 0 active") < blocks.index("*Q4 outreach*: 2 steps, 0 active")


def test_show_lists_steps_and_counts(slack: SlackRequests, fake_slack: FakeSlack, session: Session) -> None:
    make_campaign(session, TASK_FIRST + [{"day": 2, "send": "thread", "body": "Again"}], name="Q4 outreach")
    ask(slack, fake_slack, '/campaign add "Q4 outreach" ada@example.com bob@example.com'.removeprefix("/campaign "))
    ask(slack, fake_slack, '/campaign remove "Q4 outreach" bob@example.com'.removeprefix("/campaign "))

    reply = ask(slack, fake_slack, 'show "Q4 outreach"')
    assert ask(slack, fake_slack, "show Q4 outreach").payload == reply.payload  # quotes are optional here
    blocks = str(reply.payload["blocks"])
    assert "1. Day 1 · task · “Hi {{ first_name }}”" in blocks
    assert "2. Day 2 · thread · reply in thread" in blocks
    assert "active 1, finished 0, replied 0, removed 1" in blocks
    assert reply.text == "Q4 outreach: 2 steps; active 1, finished 0, replied 0, removed 1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("show Nope", "There is no campaign named “Nope”."),
        ("show", "Say which campaign: /campaign show NAME."),
        ('show "Q4 outreach', "The campaign name opens a double quote but never closes it."),
        (
            "add Nope ada@example.com",
            "There is no campaign named “Nope”. A campaign name with spaces goes in double quotes.",
        ),
        ("add Q4", "Say which campaign and who: /campaign add NAME PEOPLE."),
        ("remove Q4", "Say which campaign and whose email: /campaign remove NAME EMAIL."),
        ("pause", "Say which campaign and whose email: /campaign pause NAME EMAIL."),
    ],
)
def test_mistakes_get_one_clear_private_message(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session, text: str, message: str
) -> None:
    make_campaign(session, TASK_FIRST, name="Q4")
    assert ask(slack, fake_slack, text).text.startswith(message)
    assert enrollments_of(session) == {}


# --- add: at once -------------------------------------------------------------------


def test_add_people_at_once(slack: SlackRequests, fake_slack: FakeSlack, session: Session, clock: FixedClock) -> None:
    make_campaign(session, TASK_FIRST, name="Q4 outreach")
    reply = ask(slack, fake_slack, 'add "Q4 outreach" Ada Lovelace <ada@example.com>, bob@example.com\nnot-an-email')

    assert reply.text == "Q4 outreach: 2 added, 0 already active, 1 invalid."
    blocks = str(reply.payload["blocks"])
    assert "ada@example.com\\nbob@example.com" in blocks
    assert "`not-an-email`: An email address must have an @-sign." in blocks
    enrolled = enrollments_of(session)
    assert set(enrolled) == {"ada@example.com", "bob@example.com"}
    # The rep who adds a person owns the enrollment; their row follows their Slack profile.
    assert {e.rep_id for e in enrolled.values()} == {REP_ID}
    rep = rep_row(session)
    assert (rep.email, rep.timezone, rep.first_name) == ("rita@seller.example", "Europe/Stockholm", "Rita")
    ada = session.exec(select(Person).where(Person.email == "ada@example.com")).one()
    session.commit()
    assert (ada.first_name, ada.last_name) == ("Ada", "Lovelace")
    # A day-1 task is queued at launch.
    assert first_send(session, "ada@example.com").due_at == clock.now()


def test_a_second_add_reports_who_is_already_active(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session
) -> None:
    make_campaign(session, TASK_FIRST, name="Q4")
    ask(slack, fake_slack, "add Q4 ada@example.com")
    reply = ask(slack, fake_slack, "add Q4 ada@example.com carl@example.com")
    assert reply.text == "Q4: 1 added, 1 already active, 0 invalid."
    assert "Already active in Q4" in str(reply.payload["blocks"])
    assert len(enrollments_of(session)) == 2


def test_only_invalid_people_adds_no_one(slack: SlackRequests, fake_slack: FakeSlack, session: Session) -> None:
    make_campaign(session, CHOOSE_FIRST, name="Q4")
    reply = ask(slack, fake_slack, "add Q4 ada-at-example.com")
    assert reply.text == "Q4: 0 added, 0 already active, 1 invalid."
    assert fake_slack.calls_to("views.open") == []


def test_a_long_list_is_cut_with_and_n_more(slack: SlackRequests, fake_slack: FakeSlack, session: Session) -> None:
    make_campaign(session, TASK_FIRST, name="Q4")
    people = " ".join(f"person.number.{n:03}@a-rather-long-company-domain.example" for n in range(120))
    reply = ask(slack, fake_slack, f"add Q4 {people}")
    assert reply.text.startswith("Q4: 120 added")
    assert "more" in str(reply.payload["blocks"])
    assert len(enrollments_of(session)) == 120


def test_the_rep_profile_is_refreshed_after_a_day(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session, clock: FixedClock
) -> None:
    ask(slack, fake_slack, "help")
    fake_slack.add_user(REP_ID, "Rita Lindqvist", "rita@new.example", "America/New_York")
    ask(slack, fake_slack, "help")
    assert len(fake_slack.calls_to("users.info")) == 1
    clock.advance(days=1, seconds=1)
    ask(slack, fake_slack, "help")
    rep = rep_row(session)
    assert (rep.name, rep.email, rep.timezone) == ("Rita Lindqvist", "rita@new.example", "America/New_York")


def test_a_long_campaign_name_and_many_people_get_their_reply(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session
) -> None:
    # `&` escapes to five characters: the list's room used to ignore the line before it.
    make_campaign(session, TASK_FIRST, name="R&D " * 10)
    people = " ".join(f"p{n}@example.com" for n in range(200))
    reply = ask(slack, fake_slack, f'add "{"R&D " * 10}" {people}')
    assert reply.text.endswith(": 200 added, 0 already active, 0 invalid.")
    listed = reply.payload["blocks"][0]["text"]["text"]
    assert listed.startswith(":white_check_mark: *Added to R&amp;D R&amp;D") and "\np0@example.com\n" in listed
    assert listed.endswith(" more")


# --- add: the launch modal -----------------------------------------------------------


def open_modal(slack: SlackRequests, fake: FakeSlack, text: str) -> tuple[dict[str, Any], str]:
    """Type the add; return the modal Slack was asked to open and the command's response_url."""
    url = fake.response_url()
    assert slack.command(text, response_url=url).status == 200
    call = fake.wait_for_call("views.open")
    assert call["trigger_id"]
    return call["view"], url


def picker(view: dict[str, Any]) -> dict[str, Any]:
    (block,) = [b for b in view["blocks"] if b["type"] == "input"]
    assert block["element"]["type"] == "datetimepicker"
    return block["element"]


def test_choose_asks_for_the_send_at_time(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session, clock: FixedClock
) -> None:
    make_campaign(session, CHOOSE_FIRST, name="Q4 outreach")
    view, url = open_modal(slack, fake_slack, 'add "Q4 outreach" Ada <ada@example.com> bob@example.com oops')
    assert "initial_date_time" not in picker(view)
    assert "Add 2 people to *Q4 outreach*" in str(view["blocks"])
    assert enrollments_of(session) == {}  # nothing before the rep picks a time

    send_at = dt.datetime(2026, 12, 2, 15, 0, tzinfo=STOCKHOLM)
    reply = slack.view_submission(view, {"send_at": {"send_at": datetime_value(send_at)}})
    assert reply.status == 200 and reply.body == ""  # the modal closes

    result = fake_slack.response_to(url)
    assert result.text == "Q4 outreach: 2 added, 0 already active, 1 invalid."
    assert set(enrollments_of(session)) == {"ada@example.com", "bob@example.com"}
    assert first_send(session, "ada@example.com").due_at == send_at


def test_a_send_at_time_in_the_past_is_refused_on_the_field(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session, clock: FixedClock
) -> None:
    make_campaign(session, CHOOSE_FIRST, name="Q4")
    view, _ = open_modal(slack, fake_slack, "add Q4 ada@example.com")
    reply = slack.view_submission(view, {"send_at": {"send_at": datetime_value(clock.now() - dt.timedelta(hours=1))}})
    assert reply.json() == {
        "response_action": "errors",
        "errors": {"send_at": "That time is in the past: pick a later one."},
    }
    assert enrollments_of(session) == {}


def test_at_time_presets_the_step_time_and_keeping_it_follows_the_rules(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session
) -> None:
    make_campaign(session, AT_15, name="Q4")
    view, url = open_modal(slack, fake_slack, "add Q4 ada@example.com")
    today_15 = dt.datetime(2026, 12, 2, 15, 0, tzinfo=STOCKHOLM)
    assert picker(view)["initial_date_time"] == int(today_15.timestamp())
    assert "15:00 (Europe/Stockholm)" in str(view["blocks"])

    slack.view_submission(view, {"send_at": {"send_at": datetime_value(today_15)}})
    assert fake_slack.response_to(url).text.startswith("Q4: 1 added")
    assert first_send(session, "ada@example.com").due_at == today_15
    assert enrollments_of(session)["ada@example.com"].send_at is None  # no override


def test_at_time_lets_the_rep_pick_another_time(slack: SlackRequests, fake_slack: FakeSlack, session: Session) -> None:
    make_campaign(session, AT_15, name="Q4")
    view, url = open_modal(slack, fake_slack, "add Q4 ada@example.com")
    tomorrow_8 = dt.datetime(2026, 12, 3, 8, 0, tzinfo=STOCKHOLM)
    slack.view_submission(view, {"send_at": {"send_at": datetime_value(tomorrow_8)}})
    fake_slack.response_to(url)
    assert first_send(session, "ada@example.com").due_at == tomorrow_8


def test_at_time_already_passed_today_sends_right_away_when_kept(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session, clock: FixedClock
) -> None:
    make_campaign(session, [{**AT_15[0], "time": "08:00"}], name="Q4")
    view, url = open_modal(slack, fake_slack, "add Q4 ada@example.com")
    clock.advance(minutes=2)  # the rep took a moment: the preset is now in the past, and kept
    preset = dt.datetime.fromtimestamp(picker(view)["initial_date_time"], dt.UTC)
    slack.view_submission(view, {"send_at": {"send_at": datetime_value(preset)}})
    fake_slack.response_to(url)
    assert first_send(session, "ada@example.com").due_at == clock.now()


# --- remove, pause, resume ------------------------------------------------------------


def test_remove_pause_resume(slack: SlackRequests, fake_slack: FakeSlack, session: Session, clock: FixedClock) -> None:
    make_campaign(session, TASK_FIRST, name="Q4 outreach")
    ask(slack, fake_slack, 'add "Q4 outreach" ada@example.com bob@example.com')

    assert (
        ask(slack, fake_slack, 'pause "Q4 outreach" ada@example.com').text
        == "ada@example.com was paused in Q4 outreach."
    )
    assert enrollments_of(session)["ada@example.com"].status == "paused"
    assert ask(slack, fake_slack, 'pause "Q4 outreach" ada@example.com').text == (
        "ada@example.com is already paused in campaign “Q4 outreach”."
    )
    clock.advance(days=2)
    assert (
        ask(slack, fake_slack, 'resume "Q4 outreach" ada@example.com').text
        == "ada@example.com was resumed in Q4 outreach."
    )
    assert enrollments_of(session)["ada@example.com"].status == "active"

    # Slack may hand an address over as a mailto link.
    reply = ask(slack, fake_slack, 'remove "Q4 outreach" <mailto:bob@example.com|bob@example.com>', escaped=True)
    assert reply.text == "bob@example.com was removed from Q4 outreach."
    assert enrollments_of(session)["bob@example.com"].status == "removed"
    assert ask(slack, fake_slack, 'remove "Q4 outreach" not-an-address').text.startswith("“not-an-address”: ")
    assert ask(slack, fake_slack, "remove Q4 outreach ada@example.com").text == (
        "There is no campaign named “Q4”. A campaign name with spaces goes in double quotes."
    )


# --- Slack pushing back, and failures ------------------------------------------------


def test_rate_limits_are_retried_and_nothing_is_lost(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session
) -> None:
    make_campaign(session, CHOOSE_FIRST, name="Q4")
    fake_slack.rate_limit("views.open", times=2)
    fake_slack.rate_limit("response_url", times=2)
    view, url = open_modal(slack, fake_slack, "add Q4 ada@example.com")
    slack.view_submission(
        view, {"send_at": {"send_at": datetime_value(dt.datetime(2026, 12, 3, 9, 0, tzinfo=STOCKHOLM))}}
    )
    assert fake_slack.response_to(url).text.startswith("Q4: 1 added")
    assert fake_slack.limited == ["views.open", "views.open", "response_url", "response_url"]
    assert len(fake_slack.calls_to("views.open")) == 1 and len(fake_slack.responses) == 1


def test_a_failing_listener_is_logged_and_the_rep_told(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    make_campaign(session, CHOOSE_FIRST, name="Q4")
    fake_slack.fail("views.open", "internal_error")
    with caplog.at_level(logging.ERROR):
        reply = ask(slack, fake_slack, "add Q4 ada@example.com")
    assert reply.text.startswith("Sorry, that did not work")
    (record,) = [r for r in caplog.records if r.name == "bot.slack.replies"]
    assert record.exc_info and "internal_error" in str(record.exc_info[1])


def test_a_trigger_that_expired_while_the_bot_was_busy(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session
) -> None:
    make_campaign(session, CHOOSE_FIRST, name="Q4")
    fake_slack.fail("views.open", "expired_trigger_id")
    reply = ask(slack, fake_slack, "add Q4 ada@example.com")
    assert reply.text == "Slack stopped waiting for the send-at form: please type the command again."


def test_too_many_people_for_the_form_get_one_clear_message(
    slack: SlackRequests, fake_slack: FakeSlack, session: Session
) -> None:
    make_campaign(session, CHOOSE_FIRST, name="Q4")
    people = " ".join(f"person.number.{n:03}@a-rather-long-company-domain.example" for n in range(120))
    reply = ask(slack, fake_slack, f"add Q4 {people}")
    assert reply.text == "That is too many people to add with a send-at time in one go: add them in smaller groups."
    assert fake_slack.calls_to("views.open") == [] and enrollments_of(session) == {}
