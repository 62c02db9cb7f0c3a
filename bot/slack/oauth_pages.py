"""The two web pages of a mailbox's OAuth 2.0 consent, served by `bot serve` (bot/mail/oauth.py has the flow).

    GET /oauth/start/<google|microsoft>?t=LINK   a rep's Connect link: a new state, a cookie
                                                 for this browser, 302 to the provider's consent
    GET /oauth/callback/<google|microsoft>       the provider's redirect: the code traded for a
                                                 refresh token, stored; "You can close this tab"

Anything refused (a link forged or too old, a state missing, used, expired or started in
another browser, a code the provider will not take) gets a plain page saying why, and
nothing is stored. The pages never show or log a code, state or token.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import Engine
from sqlmodel import Session

from bot.clock import Clock
from bot.mail import mailboxes, oauth
from bot.mail.oauth import ConsentRefused, Endpoints
from bot.settings import Settings
from bot.store.models import Rep

logger = logging.getLogger(__name__)

PREFIX = "/oauth/"
AGAIN = "Open the bot's Home tab in Slack and click Connect again."


class OAuthPages:
    """A WSGI app for PREFIX; `publish_home(rep_id)` redraws a rep's Home tab once their mailbox is connected."""

    def __init__(self, engine: Engine, clock: Clock, settings: Settings, publish_home: Callable[[str], None]) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.publish_home = publish_home

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        kind, _, path = environ.get("PATH_INFO", "").removeprefix(PREFIX).partition("/")
        endpoints = oauth.BY_PATH.get(path)
        if environ.get("REQUEST_METHOD") != "GET" or kind not in ("start", "callback") or endpoints is None:
            return page(start_response, "404 Not Found", "Not found", "There is nothing here.")
        if endpoints not in oauth.configured(self.settings):
            return page(
                start_response,
                "404 Not Found",
                "Not set up",
                f"{endpoints.name} mailboxes are not set up for this bot.",
            )
        query = {name: values[-1] for name, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if kind == "start":
            return self.start(endpoints, query, start_response)
        return self.callback(endpoints, query, cookie_of(environ), start_response)

    def start(self, endpoints: Endpoints, query: dict[str, str], start_response: Callable[..., Any]) -> Iterable[bytes]:
        now = self.clock.now()
        rep_id = oauth.rep_of_start(self.settings, endpoints, query.get("t", ""), now)
        if rep_id is None:
            return page(
                start_response, "400 Bad Request", "Link not valid", f"This link is not valid (any more). {AGAIN}"
            )
        with Session(self.engine) as session:
            url, cookie = oauth.begin(session, self.settings, endpoints, rep_id, now)
            session.commit()
        secure = "; Secure" if (self.settings.public_url or "").startswith("https:") else ""
        max_age = int(oauth.STATE_TTL.total_seconds())
        # Lax: sent on the provider's redirect (a top-level GET), never on other sites' requests.
        set_cookie = f"{oauth.COOKIE}={cookie}; Path={PREFIX}callback/{endpoints.path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        start_response("302 Found", [("Location", url), ("Set-Cookie", set_cookie), ("Cache-Control", "no-store")])
        return [b""]

    def callback(
        self, endpoints: Endpoints, query: dict[str, str], cookie: str | None, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        now = self.clock.now()
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                rep_id, verifier = oauth.take_state(session, self.settings, endpoints, query.get("state"), cookie, now)
                session.commit()  # used up, whatever the provider says next
                if "code" not in query:
                    # The rep said no, or the admin has not allowed the app: the provider's own code (access_denied ...).
                    raise ConsentRefused(f"{endpoints.name} gave no access ({query.get('error', 'no code')[:100]})")
                grant = oauth.exchange(self.settings, endpoints, query["code"], verifier)
                rep = session.get(Rep, rep_id)
                user = grant.email or (rep.email if rep is not None else None)
                if not user:
                    raise ConsentRefused(f"{endpoints.name} did not say which address this mailbox has")
                mailboxes.set_oauth_mailbox(
                    session,
                    rep_id,
                    provider=endpoints.provider,
                    user=user,
                    refresh_token=grant.refresh_token,
                    smtp=endpoints.smtp,
                    imap=endpoints.imap,
                    key=self.settings.secret_key,
                    now=now,
                )
                session.commit()
            except ConsentRefused as exc:
                session.commit()
                logger.warning("a %s consent was refused: %s", endpoints.path, exc)
                return page(
                    start_response, "400 Bad Request", "Not connected", f"{exc}. Nothing was connected. {AGAIN}"
                )
        logger.info("%s connected a %s mailbox", rep_id, endpoints.path)
        try:
            self.publish_home(rep_id)
        except Exception:  # the mailbox is connected: a Slack hiccup only delays the Home tab's redraw
            logger.exception("could not redraw the Home tab of %s", rep_id)
        return page(
            start_response,
            "200 OK",
            "Mailbox connected",
            f"Your {endpoints.name} mailbox {user} is connected: your emails go out from it. You can close this tab.",
        )


def cookie_of(environ: dict[str, Any]) -> str | None:
    try:
        morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get(oauth.COOKIE)
    except CookieError:
        return None
    return morsel.value if morsel is not None else None


def page(start_response: Callable[..., Any], status: str, title: str, text: str) -> list[bytes]:
    """A plain HTML page saying one thing."""
    body = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>\n"
    )
    data = body.encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [data]
