"""Only requests signed by Slack, recently, get in."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from bot.slack.context import Deps
from bot.slack.http import MAX_BODY_BYTES, HttpServer
from tests.support.bystander import Bystander
from tests.support.factories import REP_ID
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SlackRequests, sign


def test_a_signed_command_is_answered(slack: SlackRequests, fake_slack: FakeSlack) -> None:
    reply = slack.command("help")
    assert reply.status == 200
    assert "/campaign add" in str(fake_slack.wait_for_response().payload["blocks"])


def test_a_wrong_signature_gets_401_and_nothing_happens(slack: SlackRequests, fake_slack: FakeSlack) -> None:
    forged = SlackRequests(slack.url, "not-the-signing-secret", fake_slack)
    assert forged.command("help").status == 401
    assert slack.command("help", signature="v0=" + "0" * 64).status == 401
    assert fake_slack.responses == [] and fake_slack.calls_to("views.open") == []


def test_a_stale_signature_gets_401(slack: SlackRequests, fake_slack: FakeSlack) -> None:
    # Slack's replay protection: a correctly signed request older than five minutes.
    stale = int(time.time()) - 6 * 60
    assert slack.command("help", timestamp=stale).status == 401
    assert fake_slack.responses == []


def test_a_body_changed_after_signing_gets_401(slack: SlackRequests) -> None:
    stamp = str(int(time.time()))
    signature = sign(slack.signing_secret, stamp, b"text=help")
    reply = slack.post(b"text=list", "application/x-www-form-urlencoded", timestamp=int(stamp), signature=signature)
    assert reply.status == 401


def test_health_check(slack_app: HttpServer) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{slack_app.port}/healthz") as response:
        assert response.status == 200


# --- forged requests: 401 (or another 4xx), and nothing is called ------------------

NOW = int(time.time())
FORGED: dict[str, dict[str, Any]] = {
    "a timestamp that is not a number": {"headers": {"X-Slack-Request-Timestamp": "abc"}},
    "a timestamp too long for a number": {"headers": {"X-Slack-Request-Timestamp": "9" * 5000}},
    "no signature": {"headers": {"X-Slack-Signature": ""}},
    "a signature that is not ASCII": {"headers": {"X-Slack-Signature": "v0=\u00e9"}},
    "a wrong signature": {"signature": "v0=" + "0" * 64},
    "a stale timestamp": {"timestamp": NOW - 6 * 60},
}


def settled(slack_app: HttpServer, deps: Deps) -> None:
    """Wait until every listener and every piece of work after an ack has finished."""
    slack_app.drain()
    deps.drain()


@pytest.mark.parametrize("forgery", FORGED.values(), ids=FORGED.keys())
def test_a_forged_command_gets_401_and_calls_nothing(
    slack: SlackRequests, slack_app: HttpServer, deps: Deps, fake_slack: FakeSlack, forgery: dict[str, Any]
) -> None:
    reply = slack.command("help", **forgery)
    settled(slack_app, deps)
    assert reply.status == 401
    assert fake_slack.responses == [] and fake_slack.calls == []


FORGED_BODIES: dict[str, tuple[bytes, str]] = {
    "not form-encoded": (b"\x00\x01 hello <!channel>", "text/plain"),
    "not UTF-8": (b"payload=\xff\xfe&response_url=http%3A%2F%2F127.0.0.1%3A9%2F", "application/x-www-form-urlencoded"),
    "a payload that is not JSON": (b"payload=%7B%22type%22%3A&response_url=x", "application/x-www-form-urlencoded"),
    "JSON that does not parse": (b'{"type": "event_callback", "event": ', "application/json"),
}


@pytest.mark.parametrize("body", FORGED_BODIES.values(), ids=FORGED_BODIES.keys())
def test_an_unsigned_body_of_any_shape_gets_401_and_calls_nothing(
    slack: SlackRequests, slack_app: HttpServer, deps: Deps, fake_slack: FakeSlack, body: tuple[bytes, str]
) -> None:
    reply = slack.post(*body, signature="v0=" + "0" * 64)
    settled(slack_app, deps)
    assert reply.status == 401
    assert fake_slack.responses == [] and fake_slack.calls == []


UNPARSED = ("a payload that is not JSON", "JSON that does not parse")


@pytest.mark.parametrize("body", [FORGED_BODIES[name] for name in UNPARSED], ids=UNPARSED)
def test_a_signed_body_that_does_not_parse_gets_400_and_calls_nothing(
    slack: SlackRequests, slack_app: HttpServer, deps: Deps, fake_slack: FakeSlack, body: tuple[bytes, str]
) -> None:
    reply = slack.post(*body)
    settled(slack_app, deps)
    assert reply.status == 400
    assert fake_slack.responses == [] and fake_slack.calls == []


def test_slacks_unsigned_ssl_check_is_answered_and_calls_nothing(
    slack: SlackRequests, slack_app: HttpServer, deps: Deps, fake_slack: FakeSlack
) -> None:
    reply = slack.post(
        b"ssl_check=1&token=legacy&response_url=" + fake_slack.response_url().encode(),
        "application/x-www-form-urlencoded",
        signature="",
    )
    settled(slack_app, deps)
    assert reply.status == 200
    assert fake_slack.responses == [] and fake_slack.calls == []


def test_a_huge_body_gets_413_without_being_read(slack: SlackRequests, fake_slack: FakeSlack) -> None:
    request = urllib.request.Request(
        slack.url,
        data=b"x" * 100,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(MAX_BODY_BYTES)},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert fake_slack.calls == []


# --- response_urls: only Slack's are called --------------------------------------


def test_a_response_url_off_slack_is_never_called_and_the_rep_is_told_by_dm(
    slack: SlackRequests, slack_app: HttpServer, deps: Deps, fake_slack: FakeSlack
) -> None:
    with Bystander() as bystander:
        assert slack.command("help", response_url=bystander.url).status == 200
        dm = fake_slack.wait_for_call("chat.postMessage")
        settled(slack_app, deps)
    assert bystander.hits == [] and fake_slack.responses == []
    assert dm["channel"] == REP_ID and "/campaign add" in dm["text"] + str(dm["blocks"])
