"""Connecting a Google or Microsoft 365 mailbox over OAuth 2.0, through `bot serve`'s real pages.

A browser (urllib with a cookie jar) follows the Home tab's Connect link: our start
page, the fake authorization server's consent (real HTTP on loopback), and the
redirect back to our callback, which trades the code and PKCE verifier for a refresh
token at the fake's token endpoint.
"""

from __future__ import annotations

import http.cookiejar
import json
import logging
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from cryptography.fernet import Fernet
from slack_sdk import WebClient
from sqlalchemy import Engine, text
from sqlmodel import Session

from bot.clock import FixedClock
from bot.settings import Settings
from bot.slack.context import Deps
from bot.slack.http import HttpServer
from bot.slack.notifier import SlackNotifier
from bot.slack.oauth_pages import OAuthPages
from bot.store.models import Mailbox, MailboxAuth, MailboxState
from tests.support.dovecot import free_port
from tests.support.due_emails import due_email
from tests.support.factories import REP_ID, make_rep
from tests.support.fake_oauth import CLIENT_ID, CLIENT_SECRET, FakeAuthServer
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SIGNING_SECRET, SlackRequests, running_app

OTHER_REP = "U0OTHER01"
# The address the consent is for: not the rep's Slack address, so the test shows it comes from the id_token.
MAILBOX = "rita.sales@seller.example"


@pytest.fixture
def fake_auth() -> Iterator[FakeAuthServer]:
    with FakeAuthServer(consenting=MAILBOX) as fake:
        yield fake


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def slack_settings(fake_slack: FakeSlack, fake_auth: FakeAuthServer, port: int) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.url,
        feed_channel=None,
        secret_key=Fernet.generate_key().decode(),
        google_client_id=CLIENT_ID,
        google_client_secret=CLIENT_SECRET,
        microsoft_client_id=CLIENT_ID,
        microsoft_client_secret=CLIENT_SECRET,
        public_url=f"http://127.0.0.1:{port}",
        oauth_base_url=fake_auth.url,
    )


@pytest.fixture
def slack_app(deps: Deps, slack_client: WebClient, notifier: SlackNotifier, port: int) -> Iterator[HttpServer]:
    """`bot serve`'s HTTP server with the consent pages, as serve.py wires them."""
    pages = OAuthPages(deps.engine, deps.clock, deps.settings, notifier.publish_home)
    with running_app(deps, slack_client, port=port, oauth=pages) as server:
        yield server


class Browser:
    """A browser: cookies kept, redirects followed (each one noted), pages read."""

    def __init__(self, follow_to_callback: bool = True) -> None:
        self.cookies = http.cookiejar.CookieJar()
        self.redirects: list[str] = []
        self.follow_to_callback = follow_to_callback
        browser = self

        class Noting(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
                browser.redirects.append(newurl)
                if "/oauth/callback/" in newurl and not browser.follow_to_callback:
                    return None  # stop at the provider's redirect: the test follows it later
                return super().redirect_request(req, fp, code, msg, headers, newurl)

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), Noting())

    def get(self, url: str) -> tuple[int, str]:
        try:
            with self.opener.open(url, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    @property
    def callback(self) -> str:
        return next(url for url in self.redirects if "/oauth/callback/" in url)


def open_home(fake: FakeSlack, slack: SlackRequests, user: str = REP_ID) -> dict[str, Any]:
    published = len(fake.calls_to("views.publish"))
    assert slack.event({"type": "app_home_opened", "user": user, "channel": "D0REP0001", "tab": "home"}).status == 200
    fake.wait_for(lambda: len(fake.calls_to("views.publish")) > published)
    return fake.home[user]


def buttons(view: dict[str, Any]) -> dict[str, str]:
    """The Home tab's link buttons: text -> url."""
    return {
        element["text"]["text"]: element["url"]
        for block in view["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if "url" in element
    }


def mailbox_of(engine: Engine, rep_id: str = REP_ID) -> Mailbox | None:
    with Session(engine) as session:
        return session.get(Mailbox, rep_id)


def states(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM oauthstate")).scalar_one()


@pytest.mark.parametrize(
    ("button", "provider", "smtp", "imap", "scopes"),
    [
        ("Connect Google", "google", ("smtp.gmail.com", 587), ("imap.gmail.com", 993), {"https://mail.google.com/"}),
        (
            "Connect Microsoft 365",
            "microsoft365",
            ("smtp.office365.com", 587),
            ("outlook.office365.com", 993),
            {
                "offline_access",
                "https://outlook.office.com/SMTP.Send",
                "https://outlook.office.com/IMAP.AccessAsUser.All",
            },
        ),
    ],
)
def test_a_rep_connects_their_mailbox_from_the_home_tab(
    session: Session,
    engine: Engine,
    fake_slack: FakeSlack,
    fake_auth: FakeAuthServer,
    slack: SlackRequests,
    button: str,
    provider: str,
    smtp: tuple[str, int],
    imap: tuple[str, int],
    scopes: set[str],
) -> None:
    make_rep(session)
    session.commit()
    home = open_home(fake_slack, slack)
    assert "Your mailbox" in json.dumps(home) and button in buttons(home)

    status, page = Browser().get(buttons(home)[button])

    assert status == 200 and "You can close this tab" in page and MAILBOX in page
    [asked] = fake_auth.authorize_requests
    assert scopes <= set(asked["scope"].split()) and asked["code_challenge_method"] == "S256"
    assert asked["redirect_uri"].endswith(f"/oauth/callback/{'google' if provider == 'google' else 'microsoft'}")
    mailbox = mailbox_of(engine)
    assert mailbox is not None
    assert (mailbox.auth, mailbox.provider, mailbox.state) == (MailboxAuth.OAUTH, provider, MailboxState.CONNECTED)
    assert (mailbox.smtp_host, mailbox.smtp_port, mailbox.smtp_security) == (*smtp, "starttls")
    assert (mailbox.imap_host, mailbox.imap_port, mailbox.imap_security) == (*imap, "tls")
    assert mailbox.smtp_user == mailbox.imap_user == MAILBOX, "the address the consent is for, from the id_token"
    assert states(engine) == 0, "the state is used up"
    # The Home tab is redrawn: the mailbox is connected, and can be reconnected.
    fake_slack.wait_for(lambda: "Connected:" in json.dumps(fake_slack.home[REP_ID]))
    assert button.replace("Connect", "Reconnect") in buttons(fake_slack.home[REP_ID])


def test_the_refresh_token_is_stored_only_encrypted_and_no_token_shows_anywhere(
    session: Session,
    engine: Engine,
    fake_slack: FakeSlack,
    fake_auth: FakeAuthServer,
    slack: SlackRequests,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_rep(session)
    session.commit()
    caplog.set_level(logging.DEBUG)
    browser = Browser()
    assert browser.get(buttons(open_home(fake_slack, slack))["Connect Google"])[0] == 200
    fake_slack.wait_for(lambda: "Connected:" in json.dumps(fake_slack.home[REP_ID]))

    answer = dict(p.split("=", 1) for p in urlsplit(browser.callback).query.split("&"))
    secrets_seen = [
        *fake_auth.issued,
        CLIENT_SECRET,
        answer["code"],
        answer["state"],
        *(c.value for c in browser.cookies),
    ]
    with engine.connect() as connection:
        raw = json.dumps([list(map(str, row)) for row in connection.execute(text("SELECT * FROM mailbox"))])
    slack_calls = json.dumps([fake_slack.calls_to(m) for m in ("views.publish", "chat.postMessage")])
    for secret in secrets_seen:
        assert secret not in raw, "never in the database in clear"
        assert secret not in caplog.text, "never in the logs"
        assert secret not in slack_calls, "never in Slack"


def test_a_state_is_good_once(
    session: Session, engine: Engine, fake_slack: FakeSlack, fake_auth: FakeAuthServer, slack: SlackRequests
) -> None:
    make_rep(session)
    session.commit()
    browser = Browser()
    assert browser.get(buttons(open_home(fake_slack, slack))["Connect Google"])[0] == 200
    before = mailbox_of(engine)
    exchanges = len(fake_auth.token_requests)

    status, page = browser.get(browser.callback)  # the same redirect again (a replay)

    assert status == 400 and "already used" in page and "Nothing was connected" in page
    assert len(fake_auth.token_requests) == exchanges, "the code is not even tried"
    after = mailbox_of(engine)
    assert after is not None and before is not None and after.updated_at == before.updated_at


def test_a_forged_or_missing_state_is_refused_and_nothing_is_stored(
    session: Session, engine: Engine, fake_auth: FakeAuthServer, slack_app: HttpServer, port: int
) -> None:
    base = f"http://127.0.0.1:{port}/oauth/callback/google"
    forged = Browser().get(f"{base}?{urlencode({'code': 'a-code', 'state': secrets.token_urlsafe(32)})}")
    missing = Browser().get(f"{base}?{urlencode({'code': 'a-code'})}")

    assert forged[0] == missing[0] == 400
    assert "never started here" in forged[1] and "no state" in missing[1]
    assert fake_auth.token_requests == [] and mailbox_of(engine) is None


def test_an_expired_state_is_refused(
    session: Session,
    engine: Engine,
    clock: FixedClock,
    fake_slack: FakeSlack,
    fake_auth: FakeAuthServer,
    slack: SlackRequests,
) -> None:
    make_rep(session)
    session.commit()
    browser = Browser(follow_to_callback=False)
    browser.get(buttons(open_home(fake_slack, slack))["Connect Google"])
    clock.advance(minutes=11)  # the rep took too long at the consent page

    status, page = browser.get(browser.callback)

    assert status == 400 and "more than 10 minutes ago" in page
    assert fake_auth.token_requests == [] and mailbox_of(engine) is None and states(engine) == 0


def test_another_users_state_is_refused(
    session: Session, engine: Engine, fake_slack: FakeSlack, fake_auth: FakeAuthServer, slack: SlackRequests
) -> None:
    """Rita's consent, finished in another browser (someone who got hold of her redirect), connects nothing."""
    make_rep(session)
    make_rep(session, OTHER_REP, name="Otto Other", email="otto@seller.example")
    session.commit()
    ritas = Browser(follow_to_callback=False)
    ritas.get(buttons(open_home(fake_slack, slack))["Connect Google"])
    ottos = Browser(follow_to_callback=False)
    ottos.get(buttons(open_home(fake_slack, slack, OTHER_REP))["Connect Google"])  # Otto has a cookie of his own

    status, page = ottos.get(ritas.callback)

    assert status == 400 and "someone else" in page
    assert mailbox_of(engine) is None and mailbox_of(engine, OTHER_REP) is None
    assert fake_auth.token_requests == []


def test_a_forged_or_foreign_connect_link_is_refused(
    session: Session, engine: Engine, fake_slack: FakeSlack, fake_auth: FakeAuthServer, slack: SlackRequests, port: int
) -> None:
    make_rep(session)
    session.commit()
    google = buttons(open_home(fake_slack, slack))["Connect Google"]
    forged = Browser().get(f"http://127.0.0.1:{port}/oauth/start/google?t=" + Fernet.generate_key().decode())
    foreign = Browser().get(google.replace("/oauth/start/google", "/oauth/start/microsoft"))

    assert forged[0] == foreign[0] == 400 and "not valid" in forged[1] and "not valid" in foreign[1]
    assert fake_auth.authorize_requests == [] and states(engine) == 0


def test_a_refused_consent_connects_nothing(
    session: Session, engine: Engine, fake_slack: FakeSlack, fake_auth: FakeAuthServer, slack: SlackRequests
) -> None:
    make_rep(session)
    session.commit()
    browser = Browser(follow_to_callback=False)
    browser.get(buttons(open_home(fake_slack, slack))["Connect Microsoft 365"])
    state = dict(p.split("=", 1) for p in urlsplit(browser.callback).query.split("&"))["state"]
    denied = browser.callback.split("?")[0] + "?" + urlencode({"error": "access_denied", "state": state})

    status, page = browser.get(denied)

    assert status == 400 and "access_denied" in page and mailbox_of(engine) is None


def test_the_broken_mailbox_notice_has_a_reconnect_button(
    session: Session,
    engine: Engine,
    fake_slack: FakeSlack,
    fake_auth: FakeAuthServer,
    slack: SlackRequests,
    notifier: SlackNotifier,
    clock: FixedClock,
) -> None:
    make_rep(session)
    session.commit()
    assert Browser().get(buttons(open_home(fake_slack, slack))["Connect Google"])[0] == 200
    send = due_email(session, clock.now())
    session.commit()

    notifier.mailbox_broken(
        send.id, "your mailbox refused the login: Google refused to renew the mailbox's access (invalid_grant)"
    )  # type: ignore[arg-type]

    message = fake_slack.calls_to("chat.postMessage")[-1]
    shown = json.dumps(message)
    assert "invalid_grant" in shown and "Reconnect Google" in shown
    [url] = [e["url"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert Browser().get(url)[0] == 200, "the button starts a consent again"
    assert not any(token in shown for token in fake_auth.issued)


def test_connect_buttons_show_only_for_providers_set_up(
    session: Session,
    engine: Engine,
    clock: FixedClock,
    slack_settings: Settings,
    slack_client: WebClient,
    fake_slack: FakeSlack,
) -> None:
    make_rep(session)
    session.commit()
    only_google = slack_settings.model_copy(update={"microsoft_client_id": None})
    SlackNotifier(engine, slack_client, clock, only_google).publish_home(REP_ID)
    assert list(buttons(fake_slack.home[REP_ID])) == ["Connect Google"]

    nothing = slack_settings.model_copy(update={"public_url": None})
    SlackNotifier(engine, slack_client, clock, nothing).publish_home(REP_ID)
    shown = json.dumps(fake_slack.home[REP_ID])
    assert "Connect Google" not in shown and "Connect Microsoft 365" not in shown, "without PUBLIC_URL: no OAuth links"
