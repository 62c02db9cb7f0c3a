"""Which response_urls the bot calls: Slack's own, and the Web API's origin (a fake in tests)."""

from __future__ import annotations

import pytest

from bot.slack.replies import is_slack_url

API = "https://slack.com/api/"


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/commands/T0001/1234/abcd",
        "https://hooks.slack.com/actions/T0001/1234/abcd",
        "https://hooks.slack.com:443/actions/T0001/1234/abcd",
        "https://slack.com/api/whatever",
    ],
)
def test_slack_hosts_are_called(url: str) -> None:
    assert is_slack_url(url, API)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/commands/T0001/1234/abcd",  # not https
        "https://hooks.slack.com.evil.example/commands/T0001",
        "https://evilslack.com/commands/T0001",
        "https://hooks.slack.com@evil.example/commands/T0001",
        "https://user:pw@hooks.slack.com/commands/T0001",
        "https://hooks.slack.com:8443/commands/T0001",
        "https://hooks.slack.com:99999/commands/T0001",
        "http://127.0.0.1:9/respond",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "",
        "not a url",
    ],
)
def test_other_hosts_are_not(url: str) -> None:
    assert not is_slack_url(url, API)


def test_the_web_apis_own_origin_is_called_and_only_it() -> None:
    fake = "http://127.0.0.1:4567/api/"
    assert is_slack_url("http://127.0.0.1:4567/respond/1", fake)
    assert not is_slack_url("http://127.0.0.1:4568/respond/1", fake)
    assert not is_slack_url("https://127.0.0.1:4567/respond/1", fake)
