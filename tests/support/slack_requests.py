"""Requests to the app's real HTTP endpoint, signed exactly as Slack signs them.

Slack signs `v0:<timestamp>:<raw body>` with HMAC-SHA256 and the app's signing
secret, and sends the result as `X-Slack-Signature: v0=<hex>` next to
`X-Slack-Request-Timestamp`. Commands come form-encoded, interactivity as a
`payload` form field holding JSON, events as JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from slack_sdk import WebClient

from bot.slack.app import build_app
from bot.slack.context import Deps
from bot.slack.http import HttpServer
from tests.support.factories import REP_ID
from tests.support.fake_slack import REPO, TEAM_ID, FakeSlack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APP_ID = "A0APP0001"
CHANNEL_ID = "C0GENERAL"

_ids = itertools.count(1)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Slack-Signature Slack would send for `body` at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_escape(text: str) -> str:
    """Text as Slack delivers what a user typed: &, < and > escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class Reply:
    """The app's HTTP answer and how long it took."""

    status: int
    body: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class SlackRequests:
    """Posts signed commands, block actions, view submissions and events to the app."""

    def __init__(self, url: str, signing_secret: str = SIGNING_SECRET, fake: FakeSlack | None = None) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.fake = fake

    # --- the raw request --------------------------------------------------------

    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """POST `body` signed with the signing secret (or the `signature` given)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signature or sign(self.signing_secret, stamp, body),
                **(headers or {}),
            },
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, response.read().decode(), time.perf_counter() - started)
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.read().decode(), time.perf_counter() - started)

    def _form(self, fields: dict[str, Any], **options: Any) -> Reply:
        return self.post(urlencode(fields).encode(), "application/x-www-form-urlencoded", **options)

    def _interaction(self, payload: dict[str, Any], **options: Any) -> Reply:
        return self._form({"payload": json.dumps(payload)}, **options)

    def _response_url(self) -> str:
        return self.fake.response_url() if self.fake else "http://127.0.0.1:9/respond"

    # --- what Slack sends -------------------------------------------------------

    def command(
        self,
        text: str = "",
        command: str = "/campaign",
        *,
        user_id: str = REP_ID,
        channel_id: str = CHANNEL_ID,
        response_url: str | None = None,
        escaped: bool = False,
        **options: Any,
    ) -> Reply:
        """A slash command as typed by `user_id`.

        Slack escapes &, < and > in what was typed; pass `escaped=True` for text
        already in Slack's form (e.g. an address Slack turned into a mailto link).
        """
        fields = command_fields(
            text if escaped else slack_escape(text),
            command,
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url or self._response_url(),
        )
        return self._form(fields, **options)

    def block_action(
        self,
        action_id: str,
        value: str | None = None,
        *,
        user_id: str = REP_ID,
        block_id: str = "actions",
        message: dict[str, Any] | None = None,
        view: dict[str, Any] | None = None,
        response_url: str | None = None,
        **options: Any,
    ) -> Reply:
        """A button click on a `message` (channel, ts, blocks) or in a `view` (Home, modal)."""
        action: dict[str, Any] = {
            "type": "button",
            "action_id": action_id,
            "block_id": block_id,
            "action_ts": f"{time.time():.6f}",
        }
        if value is not None:
            action["value"] = value
        payload = _interaction_payload("block_actions", user_id, actions=[action])
        if message is not None:
            channel = message["channel"]
            payload.update(
                container={
                    "type": "message",
                    "message_ts": message["ts"],
                    "channel_id": channel,
                    "is_ephemeral": False,
                },
                channel={"id": channel, "name": "directmessage"},
                message={
                    "type": "message",
                    "ts": message["ts"],
                    "text": message.get("text", ""),
                    "blocks": message.get("blocks", []),
                },
                response_url=response_url or self._response_url(),
            )
        if view is not None:
            payload.update(container={"type": "view", "view_id": view.get("id")}, view=view)
        return self._interaction(payload, **options)

    def view_submission(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user_id: str = REP_ID, **options: Any
    ) -> Reply:
        """Submit `view` (as the app opened it) with input `values`: {block_id: {action_id: value}}."""
        submitted = {**view, "state": {"values": values}}
        submitted.setdefault("id", f"V{next(_ids):08d}")
        payload = _interaction_payload("view_submission", user_id, view=submitted, response_urls=[])
        return self._interaction(payload, **options)

    def event(self, event: dict[str, Any], **options: Any) -> Reply:
        """An Events API callback wrapping `event`."""
        body = {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": {"event_ts": f"{time.time():.6f}", **event},
            "type": "event_callback",
            "event_id": f"Ev{next(_ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": "U0BOT0001", "is_bot": True}],
        }
        return self.post(json.dumps(body).encode(), "application/json", **options)


def command_fields(
    text: str, command: str = "/campaign", *, user_id: str = REP_ID, channel_id: str = CHANNEL_ID, response_url: str
) -> dict[str, str]:
    """A slash command's fields as Slack sends them (a form over HTTP, a payload over Socket Mode)."""
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "fake",
        "channel_id": channel_id,
        "channel_name": "general",
        "user_id": user_id,
        "user_name": "rita.rep",
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{next(_ids)}.trigger",
    }


def _interaction_payload(kind: str, user_id: str, **fields: Any) -> dict[str, Any]:
    """What every interaction payload carries: who, where from, and a fresh trigger."""
    return {
        "type": kind,
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": user_id, "username": "rep", "name": "rep", "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "trigger_id": f"{next(_ids)}.trigger",
        **fields,
    }


def datetime_value(at: Any) -> dict[str, Any]:
    """A datetimepicker's state value for the aware datetime `at`."""
    return {"type": "datetimepicker", "selected_date_time": int(at.timestamp())}


@contextmanager
def running_app(deps: Deps, client: WebClient, threads: int = 4) -> Iterator[HttpServer]:
    """`build_app` served by waitress on 127.0.0.1 and a free port."""
    try:
        app = build_app(deps, client)
        with HttpServer(
            app, str(deps.settings.slack_signing_secret), host="127.0.0.1", port=0, threads=threads
        ) as server:
            yield server
    finally:
        deps.drain()  # work after acks ends before the fake Slack does


# --- `bot serve` as a real process ------------------------------------------------

LISTENING = re.compile(r"listening on (http://\S+)")


def bot_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a `bot` process: nothing Slack from ours, only `settings`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "DATABASE_URL", "PORT"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'bot.db'}"
    env["PYTHONPATH"] = str(REPO)
    env.update(settings)
    return env


@contextmanager
def serving(tmp_path: Path, fake: FakeSlack, database_url: str, *args: str, **settings: str) -> Iterator[str]:
    """`bot serve --port 0` running; yields its /slack/events URL; stopped with SIGTERM."""
    env = bot_env(
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-test-token",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.url,
        DATABASE_URL=database_url,
        **settings,
    )
    # The log goes to a file: a pipe nobody reads would fill up and block the server.
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", "0", "--host", "127.0.0.1", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            yield _listening_url(process, log)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
    assert process.returncode == 0, log.read_text()[-3000:]


def _listening_url(process: subprocess.Popen[str], log: Path, timeout: float = 30) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = process.stdout.readline()
        if not line:
            break
        if match := LISTENING.search(line):
            return match.group(1)
    process.kill()
    process.communicate()
    raise AssertionError(f"bot serve did not start: {log.read_text()[-3000:]}")
