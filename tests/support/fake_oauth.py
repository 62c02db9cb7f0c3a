"""A fake OAuth 2.0 authorization server on loopback, over real HTTP, for Google and Microsoft alike.

    with FakeAuthServer(users={"rita@seller.example": ...}) as fake:
        Settings(oauth_base_url=fake.url, google_client_id=fake.client_id, ...)

- GET  /<provider>/authorize: checks the client, the redirect URI and the PKCE
  challenge (S256), "consents" as `fake.consenting` (an address), and redirects to the
  redirect URI with a one-time code and the state.
- POST /<provider>/token: `authorization_code` (the code once, its redirect URI, and a
  verifier matching its challenge) or `refresh_token`; a revoked grant answers
  `invalid_grant` as Google and Microsoft do. With `rotating`, a renewal also hands a new
  refresh token, the old one staying good until retired, as Microsoft does. Every token it hands out is random;
  `fake.user_of(access_token)` says whose a current one is (the SMTP server asks).
- POST /introspect (RFC 7662): `{"active": true, "email": ...}` for a current access
  token, for Dovecot's oauth2 passdb.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "campaign-bot-test-client"
CLIENT_SECRET = "fake-client-secret-0123456789"


@dataclass
class Code:
    user: str
    redirect_uri: str
    challenge: str
    scope: str


@dataclass
class FakeAuthServer:
    consenting: str = "rita@seller.example"  # whose account "logs in" at the consent page
    expires_in: int = 3600
    rotating: bool = False  # a renewal hands a new refresh token too (Microsoft)
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    refreshes: int = 0
    codes: dict[str, Code] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    access_tokens: dict[str, str] = field(default_factory=dict)  # current token -> user
    issued: list[str] = field(default_factory=list)  # every token handed out (to look for in logs, the DB, Slack)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    # --- what tests do ---------------------------------------------------------------
    def user_of(self, access_token: str) -> str | None:
        with self._lock:
            return self.access_tokens.get(access_token)

    def expire_access_tokens(self) -> None:
        """Every access token handed out so far stops working (their hour is up)."""
        with self._lock:
            self.access_tokens.clear()

    def retire(self, refresh_token: str) -> None:
        """That refresh token's lifetime is up (Microsoft's: 90 days); the ones it was renewed into are not."""
        with self._lock:
            self.refresh_tokens.pop(refresh_token, None)

    def revoke(self, user: str) -> None:
        """The user withdrew consent (or changed their password): their grants and tokens are gone."""
        with self._lock:
            self.refresh_tokens = {t: u for t, u in self.refresh_tokens.items() if u != user}
            self.access_tokens = {t: u for t, u in self.access_tokens.items() if u != user}

    # --- the endpoints ---------------------------------------------------------------
    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        self.authorize_requests.append(query)
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {}, {"error": "invalid_request"}
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, {}, {"error": "invalid_request", "error_description": "PKCE S256 is required"}
        code = self._new()
        with self._lock:
            self.codes[code] = Code(
                self.consenting, query["redirect_uri"], query["code_challenge"], query.get("scope", "")
            )
        location = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        return 302, {"Location": location}, None

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type")
        with self._lock:
            if grant == "authorization_code":
                code = self.codes.pop(form.get("code", ""), None)  # once
                if code is None or code.redirect_uri != form.get("redirect_uri"):
                    return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
                if s256(form.get("code_verifier", "")) != code.challenge:
                    return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
                refresh = self._new()
                self.refresh_tokens[refresh] = code.user
                answer = self._access(code.user)
                answer["refresh_token"] = refresh
                answer["id_token"] = id_token(code.user)
                return 200, answer
            if grant == "refresh_token":
                user = self.refresh_tokens.get(form.get("refresh_token", ""))
                if user is None:
                    return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                self.refreshes += 1
                answer = self._access(user)
                if self.rotating:
                    answer["refresh_token"] = self._new()
                    self.refresh_tokens[answer["refresh_token"]] = user
                return 200, answer
        return 400, {"error": "unsupported_grant_type"}

    def introspect(self, form: dict[str, str]) -> dict[str, Any]:
        user = self.user_of(form.get("token", ""))
        return {"active": True, "email": user} if user else {"active": False}

    def _access(self, user: str) -> dict[str, Any]:
        access = self._new()
        self.access_tokens[access] = user
        return {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in}

    def _new(self) -> str:
        token = secrets.token_urlsafe(24)
        self.issued.append(token)
        return token

    # --- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> FakeAuthServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path.endswith("/authorize"):
                    status, headers, body = fake.authorize(_flat(parse_qs(parts.query)))
                    self._answer(status, body, headers)
                else:
                    self._answer(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = _flat(parse_qs(self.rfile.read(length).decode()))
                if self.path.endswith("/token"):
                    status, body = fake.token(form)
                    self._answer(status, body)
                elif self.path.endswith("/introspect"):
                    self._answer(200, fake.introspect(form))
                else:
                    self._answer(404, {"error": "not found"})

            def _answer(self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="fake-oauth", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def id_token(email: str) -> str:
    """An (unsigned) id_token naming `email`, as the bot reads it."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part({'email': email, 'sub': '1234'})}.c2lnbmF0dXJl"


def _flat(query: dict[str, list[str]]) -> dict[str, str]:
    return {name: values[-1] for name, values in query.items()}
