"""Fixtures for the Slack app end to end: a fake Slack, the app served on loopback, signed requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.clock import FixedClock
from bot.delivery.ports import Deliverer
from bot.settings import Settings
from bot.slack.client import make_client
from bot.slack.context import Deps
from bot.slack.http import HttpServer
from bot.slack.notifier import SlackNotifier
from tests.support.factories import REP_ID
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SIGNING_SECRET, SlackRequests, running_app


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """The fake Web API, knowing the rep of tests.support.factories."""
    with FakeSlack() as fake:
        fake.add_user(REP_ID, "Rita Rep", "rita@seller.example", "Europe/Stockholm")
        yield fake


@pytest.fixture
def slack_settings(fake_slack: FakeSlack) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.url,
        feed_channel=None,
    )


@pytest.fixture
def slack_client(slack_settings: Settings) -> WebClient:
    return make_client(slack_settings)


@pytest.fixture
def notifier(engine: Engine, slack_client: WebClient, clock: FixedClock, slack_settings: Settings) -> SlackNotifier:
    return SlackNotifier(engine, slack_client, clock, slack_settings)


@pytest.fixture
def deliverer() -> Deliverer | None:
    """None: override in a test module that clicks Send."""
    return None


@pytest.fixture
def deps(engine: Engine, clock: FixedClock, slack_settings: Settings, deliverer: Deliverer | None) -> Deps:
    return Deps(engine=engine, clock=clock, settings=slack_settings, deliverer=deliverer)


@pytest.fixture
def slack_app(deps: Deps, slack_client: WebClient) -> Iterator[HttpServer]:
    """build_app served by waitress on 127.0.0.1 and a free port."""
    with running_app(deps, slack_client) as server:
        yield server


@pytest.fixture
def slack(slack_app: HttpServer, fake_slack: FakeSlack) -> SlackRequests:
    """Signed requests to the running app, as Slack sends them."""
    return SlackRequests(slack_app.url, SIGNING_SECRET, fake_slack)
