"""IMAP over XOAUTH2 against a real Dovecot whose oauth2 passdb checks each token at the fake's introspection endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.clock import FixedClock
from bot.mail.check import LoginFailed, check_imap, open_imap
from bot.mail.mailboxes import Provider
from bot.mail.oauth import Tokens
from bot.mail.urls import IMAP, Security, ServerUrl
from bot.settings import Settings, load_settings
from tests.support.dovecot import Dovecot
from tests.support.fake_oauth import CLIENT_ID, CLIENT_SECRET, FakeAuthServer
from tests.support.tls import Certificate

USER = "rita@seller.example"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAuthServer]:
    with FakeAuthServer(consenting=USER) as fake:
        yield fake


@pytest.fixture(scope="module")
def dovecot(cert: Certificate, fake: FakeAuthServer) -> Iterator[Dovecot]:
    with Dovecot(users={USER: ""}, cert=cert, introspection_url=f"{fake.url}/introspect") as server:
        yield server


@pytest.fixture
def settings(fake: FakeAuthServer) -> Settings:
    return load_settings(
        _env_file=None, google_client_id=CLIENT_ID, google_client_secret=CLIENT_SECRET, oauth_base_url=fake.url
    )


def server(dovecot: Dovecot, tokens: Tokens, refresh_token: str) -> ServerUrl:
    bearer = tokens.bearer(Provider.GOOGLE, refresh_token)
    return ServerUrl(IMAP, "127.0.0.1", dovecot.tls_port or 0, Security.TLS, USER, timeout=10, bearer=bearer)


def grant(fake: FakeAuthServer) -> str:
    token = f"refresh-{len(fake.refresh_tokens)}"
    fake.refresh_tokens[token] = USER
    return token


def test_imap_logs_in_with_xoauth2_and_renews_a_token_the_server_refuses(
    trusted: Certificate, dovecot: Dovecot, fake: FakeAuthServer, settings: Settings, clock: FixedClock
) -> None:
    tokens = Tokens(settings, clock)
    login = server(dovecot, tokens, grant(fake))
    check_imap(login)
    refreshes = fake.refreshes
    fake.expire_access_tokens()  # the cached token's hour is up on the server's side

    client = open_imap(login)
    try:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    finally:
        client.logout()
    assert fake.refreshes == refreshes + 1, "renewed once, when Dovecot refused the cached one"


def test_imap_with_a_revoked_consent_says_so(
    trusted: Certificate, dovecot: Dovecot, fake: FakeAuthServer, settings: Settings, clock: FixedClock
) -> None:
    refresh_token = grant(fake)
    fake.refresh_tokens.pop(refresh_token)  # revoked
    with pytest.raises(LoginFailed, match="invalid_grant") as refused:
        check_imap(server(dovecot, Tokens(settings, clock), refresh_token))
    assert refresh_token not in str(refused.value)
