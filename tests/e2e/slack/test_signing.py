"""Only requests signed by Slack, recently, get in."""

from __future__ import annotations

import time
import urllib.request

from bot.slack.http import HttpServer
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
