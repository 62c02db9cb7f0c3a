"""A fake Slack Web API on loopback, for offline end-to-end tests.

The app's real WebClient reaches it through SLACK_API_URL. It records every call,
keeps posted messages (so chat.update can be checked), checks each call's required
parameters against Slack's own OpenAPI description (tests/support/slack_methods.py),
checks blocks and views with slack_sdk's Block Kit models and Slack's limits
(tests/support/slack_limits.py), can answer 429 with Retry-After (or 503, down), and serves
response_url endpoints. `apps.connections.open` hands out `.socket_mode_url()` (see
tests/support/fake_socket_mode.py).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from tests.support import slack_methods
from tests.support.slack_limits import message_problems, view_problems

REPO = Path(__file__).resolve().parents[2]
BOT_USER_ID = "U0BOT0001"
TEAM_ID = "T0TEAM001"
MAX_MESSAGE_BLOCKS = 50

# Methods that take the app-level token (xapp-) and refuse bot and user tokens.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


@lru_cache(maxsize=1)
def required_params() -> dict[str, frozenset[str]]:
    """Each Web API method's required parameters (but the token), as Slack describes them."""
    return slack_methods.load()


@dataclass
class Call:
    method: str
    params: dict[str, Any]


@dataclass
class Response:
    """A post to a response_url."""

    url: str
    payload: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))


@dataclass
class User:
    id: str
    name: str
    email: str | None
    tz: str | None
    first_name: str = ""
    last_name: str = ""

    def as_api(self) -> dict[str, Any]:
        first, _, last = self.name.partition(" ")
        profile = {
            "real_name": self.name,
            "display_name": self.name,
            "first_name": self.first_name or first,
            "last_name": self.last_name or last,
        }
        if self.email:
            profile["email"] = self.email
        user = {"id": self.id, "team_id": TEAM_ID, "name": self.name.lower().replace(" ", "."), "real_name": self.name}
        if self.tz:
            user["tz"] = self.tz
        return {**user, "profile": profile}


@dataclass
class _Limit:
    times: int
    retry_after: int


@dataclass
class _Failure:
    times: int
    error: str


class FakeSlack:
    """The Web API on 127.0.0.1:0; use as a context manager.

    `.url` is the base URL (ends with "/api/"), `.calls` every answered call,
    `.messages` the messages as they stand, `.responses` the response_url posts.
    A missing required parameter or an invalid block fails the test at exit
    (and the call gets an error, as Slack would answer).
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.home: dict[str, dict[str, Any]] = {}
        self.responses: list[Response] = []
        self.users: dict[str, User] = {}
        self.problems: list[str] = []
        self.limited: list[str] = []
        self.refused: list[str] = []  # calls answered 503 during an outage
        self._down = False
        self._limits: dict[str, _Limit] = {}
        self._failures: dict[str, _Failure] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self.socket_mode_url: Callable[[], str] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api/"

    # --- life cycle -------------------------------------------------------------

    def __enter__(self) -> FakeSlack:
        required_params()  # load the spec once, before any call needs it
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if exc_type is None:
            self.check()

    def check(self) -> None:
        """Fail if any call was malformed."""
        assert not self.problems, "malformed Slack calls:\n" + "\n".join(self.problems)

    # --- set-up -----------------------------------------------------------------

    def add_user(
        self, user_id: str, name: str, email: str | None, tz: str | None = "Europe/Stockholm", **names: str
    ) -> None:
        """A Slack user users.info will describe (first_name/last_name optional)."""
        self.users[user_id] = User(user_id, name, email, tz, **names)

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 0) -> None:
        """The next `times` calls to `method` ("response_url" for those) get 429."""
        self._limits[method] = _Limit(times, retry_after)

    def outage(self, down: bool = True) -> None:
        """Until `outage(False)`, every Web API call is answered 503 service_unavailable."""
        self._down = down

    def fail(self, method: str, error: str, times: int = 1) -> None:
        """The next `times` calls to `method` answer ok: false with `error`."""
        self._failures[method] = _Failure(times, error)

    def response_url(self) -> str:
        """A fresh response_url; posts to it land in `.responses`."""
        return f"http://127.0.0.1:{self.port}/respond/{next(self._ids)}"

    # --- reading what happened --------------------------------------------------

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with self._changed:
            return [call.params for call in self.calls if call.method == method]

    def wait_for(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `condition()` is truthy (listeners run after the ack); return it."""
        with self._changed:
            result = self._changed.wait_for(condition, timeout=timeout)
        assert result, "Slack never saw what the test waited for"
        return result

    def wait_for_call(self, method: str, count: int = 1, timeout: float = 10.0) -> dict[str, Any]:
        """The `count`-th call to `method`, once it has come."""
        self.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
        return self.calls_to(method)[count - 1]

    def wait_for_response(self, count: int = 1, timeout: float = 10.0) -> Response:
        """The `count`-th post to any response_url, once it has come."""
        self.wait_for(lambda: len(self.responses) >= count, timeout)
        return self.responses[count - 1]

    def response_to(self, url: str, timeout: float = 10.0) -> Response:
        """The first post to the response_url `url`, once it has come."""
        return self.wait_for(lambda: next((r for r in self.responses if r.url == url), None), timeout)

    # --- answering --------------------------------------------------------------

    def _limit(self, method: str) -> int | None:
        limit = self._limits.get(method)
        if limit is None or limit.times <= 0:
            return None
        limit.times -= 1
        self.limited.append(method)
        return limit.retry_after

    def _answer(self, method: str, params: dict[str, Any], token: str) -> dict[str, Any]:
        if method not in required_params():
            self.problems.append(f"{method}: no such Web API method")
            return {"ok": False, "error": "unknown_method"}
        if not token:
            self.problems.append(f"{method}: no token")
            return {"ok": False, "error": "not_authed"}
        if token.startswith("xapp-") != (method in APP_TOKEN_METHODS):
            self.problems.append(f"{method}: called with a {token.split('-')[0]}- token")
            return {"ok": False, "error": "not_allowed_token_type"}
        missing = sorted(name for name in required_params()[method] if params.get(name) in (None, ""))
        if missing:
            self.problems.append(f"{method}: missing required {', '.join(missing)}")
            return {"ok": False, "error": "invalid_arguments", "missing": missing}
        failure = self._failures.get(method)
        if failure and failure.times > 0:
            failure.times -= 1
            self.calls.append(Call(method, params))
            return {"ok": False, "error": failure.error}
        self.calls.append(Call(method, params))
        answer = getattr(self, "_" + method.replace(".", "_"), None)
        return answer(params) if answer else {"ok": True}

    def _blocks_problem(self, method: str, blocks: Any) -> str | None:
        if blocks in (None, ""):
            return None
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        if len(blocks) > MAX_MESSAGE_BLOCKS:
            return f"{method}: {len(blocks)} blocks (at most {MAX_MESSAGE_BLOCKS})"
        try:
            for block in Block.parse_all(blocks):
                block.to_dict()  # validates the block and everything in it
        except (SlackObjectFormationError, KeyError, TypeError) as exc:
            return f"{method}: invalid blocks: {exc}"
        over = message_problems({"blocks": blocks})  # the limits slack_sdk does not check
        return f"{method}: {'; '.join(over)}" if over else None

    def _message(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        problem = self._blocks_problem(method, params.get("blocks"))
        if not params.get("text"):
            problem = problem or f"{method}: no fallback text"
        if problem:
            self.problems.append(problem)
            return {"ok": False, "error": "invalid_blocks"}
        return None

    def _view(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        view = params["view"]
        view = json.loads(view) if isinstance(view, str) else view
        try:
            View(**view).to_dict()  # validates the view and its blocks
        except (SlackObjectFormationError, KeyError, TypeError) as exc:
            self.problems.append(f"{method}: invalid view: {exc}")
        self.problems += [f"{method}: {problem}" for problem in view_problems(view)]
        return view

    def _new_ts(self) -> str:
        return f"1767000000.{next(self._ts):06d}"

    @staticmethod
    def _channel(channel: str) -> str:
        # Posting to a user ID writes to the app's direct message with them.
        return "D" + channel[1:] if channel.startswith("U") else channel

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "campaignbot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": "B0BOT0001",
        }

    def _chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        if error := self._message("chat.postMessage", params):
            return error
        channel, ts = self._channel(params["channel"]), self._new_ts()
        message = {**params, "channel": channel, "ts": ts}
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        if error := self._message("chat.update", params):
            return error
        key = (params["channel"], params["ts"])
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        self.messages[key] = {**self.messages[key], **params, "updated": True}
        return {"ok": True, "channel": key[0], "ts": key[1], "text": params.get("text", "")}

    def _chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if error := self._message("chat.postEphemeral", params):
            return error
        self.ephemerals.append(params)
        return {"ok": True, "message_ts": self._new_ts()}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._view("views.open", params)
        view_id = f"V{next(self._ids):08d}"
        stored = {**view, "id": view_id, "hash": f"h{view_id}", "state": {"values": {}}}
        self.views[view_id] = stored
        return {"ok": True, "view": stored}

    def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._views_open(params)

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view_id = params.get("view_id")
        if not view_id:
            self.problems.append("views.update: needs view_id or external_id")
            return {"ok": False, "error": "invalid_arguments"}
        if view_id not in self.views:
            return {"ok": False, "error": "not_found"}
        view = self._view("views.update", params)
        self.views[view_id] = {**view, "id": view_id, "hash": f"h{view_id}", "state": {"values": {}}}
        return {"ok": True, "view": self.views[view_id]}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._view("views.publish", params)
        view_id = f"V{next(self._ids):08d}"
        self.home[params["user_id"]] = {**view, "id": view_id}
        return {"ok": True, "view": self.home[params["user_id"]]}

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.socket_mode_url is None:
            self.problems.append("apps.connections.open: no fake Socket Mode server (FakeSocketMode.serve_for)")
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": self.socket_mode_url()}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(params.get("user", ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user.as_api()}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = str(params.get("users", "")).split(",")
        if not users[0]:
            return {"ok": False, "error": "users_list_not_supplied"}
        return {"ok": True, "channel": {"id": self._channel(users[0])}}

    def _respond(self, url: str, payload: dict[str, Any]) -> None:
        problem = self._blocks_problem("response_url", payload.get("blocks"))
        if not payload.get("text") and not payload.get("delete_original"):
            problem = problem or "response_url: no fallback text"
        if problem:
            self.problems.append(problem)
        self.responses.append(Response(url, payload))


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            params: dict[str, Any] = dict(parse_qsl(parts.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            kind = self.headers.get("Content-Type", "")
            if raw and "json" in kind:
                params.update(json.loads(raw))
            elif raw:
                params.update(parse_qsl(raw.decode()))
            if parts.path.startswith("/respond/"):
                method = "response_url"
            else:
                method = parts.path.removeprefix("/api/")
            with fake._changed:
                if fake._down and method != "response_url":
                    fake.refused.append(method)
                    self._send(503, {"ok": False, "error": "service_unavailable"})
                    return
                retry_after = fake._limit(method)
                if retry_after is not None:
                    self._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
                    return
                if method == "response_url":
                    fake._respond(f"http://127.0.0.1:{fake.port}{parts.path}", params)
                    answer: dict[str, Any] | None = None
                else:
                    bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    token = str(params.get("token") or bearer)
                    answer = fake._answer(method, params, token)
                fake._changed.notify_all()
            if answer is None:
                self._send_text(200, "ok")
            else:
                self._send(200, answer)

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_text(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
