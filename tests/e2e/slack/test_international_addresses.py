"""International addresses end to end: `/campaign add` in Slack, then the scheduler and a real SMTP relay."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.clock import FixedClock
from bot.delivery.routes import Relay
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import SmtpTransport, offers_smtputf8
from bot.settings import Settings, load_settings
from bot.slack.profiles import ensure_rep
from tests.support.factories import make_campaign
from tests.support.fake_slack import FakeSlack
from tests.support.notifier import RecordingNotifier
from tests.support.slack_requests import SlackRequests, datetime_value
from tests.support.smtp_sink import SmtpSink

CHOOSE_FIRST = [{"day": 1, "send": "choose", "subject": "Hej {{ first_name }}", "body": "Hej!"}]
PEOPLE = "José Núñez <josé@buyer.example>, Ana <ana@bücher.example>"


@pytest.fixture(params=[True, False], ids=["relay with SMTPUTF8", "relay without"])
def relay(request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    offers_smtputf8.cache_clear()  # a relay the bot has not asked before
    with SmtpSink(smtputf8=request.param) as sink:
        yield sink


@pytest.fixture
def slack_settings(slack_settings: Settings, relay: SmtpSink) -> Settings:
    return slack_settings.model_copy(update={"smtp_url": relay.url})


def add_and_send(
    slack: SlackRequests, fake: FakeSlack, engine: Engine, clock: FixedClock, relay: SmtpSink
) -> tuple[str, str]:
    """Add PEOPLE to Q4 with a send-at time in an hour, run the scheduler then; the add's reply (text, blocks)."""
    url = fake.response_url()
    assert slack.command(f"add Q4 {PEOPLE}", response_url=url).status == 200
    view = fake.wait_for_call("views.open")["view"]
    send_at = clock.now().astimezone(ZoneInfo("Europe/Stockholm")) + dt.timedelta(hours=1)
    slack.view_submission(view, {"send_at": {"send_at": datetime_value(send_at)}})
    reply = fake.response_to(url)
    clock.advance(hours=1)
    Scheduler(
        engine,
        clock,
        Relay(lambda: SmtpTransport(relay.url, timeout=5)),
        RecordingNotifier(),
        load_settings(digest_cron="0 0 1 1 *"),
    ).tick()
    return reply.text, str(reply.payload["blocks"]).replace("\\n", "\n")


def test_a_unicode_domain_goes_out_in_ascii_and_a_unicode_local_part_with_smtputf8(
    slack: SlackRequests, fake_slack: FakeSlack, session, engine: Engine, clock: FixedClock, relay: SmtpSink
) -> None:
    make_campaign(session, CHOOSE_FIRST, name="Q4")

    summary, reply = add_and_send(slack, fake_slack, engine, clock, relay)

    [ana] = relay.to("ana@xn--bcher-kva.example")
    assert "SMTPUTF8" not in ana.mail_options and ana.message["Subject"] == "Hej Ana"
    if relay.smtputf8:
        assert summary == "Q4: 2 added, 0 already active, 0 invalid."
        [jose] = relay.to("josé@buyer.example")
        assert "SMTPUTF8" in jose.mail_options
        received = email.message_from_string(jose.data.decode("utf-8"), policy=email.policy.SMTPUTF8)
        assert str(received["To"]) == "José Núñez <josé@buyer.example>"
    else:
        assert summary == "Q4: 1 added, 0 already active, 1 invalid."
        assert (
            "`josé@buyer.example`: this address cannot be emailed: the mail server (SMTP_URL) does not take "
            "addresses with non-ASCII characters before the @ (it offers no SMTPUTF8)." in reply
        )
        assert len(relay.messages) == 1


@pytest.mark.parametrize("relay", [True], indirect=True)
def test_a_rep_whose_slack_address_has_a_unicode_domain_sends_from_its_ascii_form(
    fake_slack: FakeSlack, slack_client: WebClient, session, clock: FixedClock
) -> None:
    fake_slack.add_user("U0ASA", "Åsa Öberg", "Asa@Bücher.example")

    rep = ensure_rep(session, slack_client, "U0ASA", clock.now())

    assert (rep.name, rep.email) == ("Åsa Öberg", "asa@xn--bcher-kva.example")
