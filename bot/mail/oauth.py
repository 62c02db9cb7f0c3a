"""Google Workspace and Microsoft 365 mailboxes over OAuth 2.0 (authorization code flow with PKCE).

How a rep connects one:

    Home tab "Connect Google"  -> GET PUBLIC_URL/oauth/start/google?t=...   (a link naming the rep,
                                  Fernet-sealed under SECRET_KEY, valid START_LINK_TTL)
    `begin`: a new `state` (bound to the rep and to a cookie of this browser, single-use,
             STATE_TTL) and a PKCE verifier, stored hashed / encrypted -> 302 to the consent page
    the provider -> GET PUBLIC_URL/oauth/callback/google?code=...&state=...
    `take_state` (the state used up, whatever comes next), `exchange` (code + verifier at the
             token endpoint) -> the refresh token stored encrypted in the rep's mailbox

Sending and reading log in with XOAUTH2 (bot/mail/check.py) with access tokens from
`Tokens`: kept in memory only, renewed before they expire, and once more when a server
refuses one. A renewal the provider refuses (consent revoked, password changed) is a
TokenRefused: the scheduler marks the mailbox broken and tells the rep once. A refresh
token the provider rotates on renewal is stored again, encrypted (`Keeper`).

The providers' endpoints are the table below. OAUTH_BASE_URL (tests only) puts both
providers' endpoints under one server: BASE/google/authorize, BASE/google/token,
BASE/microsoft/authorize, BASE/microsoft/token.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from cryptography.fernet import InvalidToken
from pydantic import SecretStr
from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from bot.clock import Clock
from bot.mail import credentials, mailboxes
from bot.mail.check import TokenRefused, TokenUnavailable
from bot.mail.mailboxes import Provider
from bot.mail.urls import Security
from bot.services.errors import ServiceError
from bot.store.models import OAuthState

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

STATE_TTL = dt.timedelta(minutes=10)  # from the click on Connect to the provider's redirect
START_LINK_TTL = dt.timedelta(days=1)  # a Connect or Reconnect link in Slack (the Home tab redraws it on each open)
RENEW_BEFORE = dt.timedelta(minutes=5)  # an access token this close to expiring is renewed first
TIMEOUT = 30.0  # seconds for a token endpoint to answer
COOKIE = "campaign_bot_oauth"


@dataclass(frozen=True)
class Endpoints:
    """One provider: its consent and token endpoints, scopes, and the mail servers of its mailboxes."""

    provider: Provider
    path: str  # in our URLs: /oauth/start/<path>, /oauth/callback/<path>
    name: str  # as reps read it
    authorize_url: str  # {tenant}: MICROSOFT_TENANT
    token_url: str
    scopes: tuple[str, ...]
    smtp: tuple[str, int, Security]
    imap: tuple[str, int, Security]
    extra: tuple[tuple[str, str], ...] = ()  # more parameters of the consent request


# openid + email: the id_token names the mailbox's address (the login's user).
ENDPOINTS: dict[Provider, Endpoints] = {
    Provider.GOOGLE: Endpoints(
        Provider.GOOGLE,
        "google",
        "Google",
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
        ("openid", "email", "https://mail.google.com/"),
        ("smtp.gmail.com", 587, Security.STARTTLS),
        ("imap.gmail.com", 993, Security.TLS),
        # offline: a refresh token; consent: asked again, so a reconnect gets a new refresh token too
        (("access_type", "offline"), ("prompt", "consent")),
    ),
    Provider.MICROSOFT365: Endpoints(
        Provider.MICROSOFT365,
        "microsoft",
        "Microsoft 365",
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        (
            "openid",
            "email",
            "offline_access",
            "https://outlook.office.com/SMTP.Send",
            "https://outlook.office.com/IMAP.AccessAsUser.All",
        ),
        ("smtp.office365.com", 587, Security.STARTTLS),
        ("outlook.office365.com", 993, Security.TLS),
    ),
}
BY_PATH = {endpoints.path: endpoints for endpoints in ENDPOINTS.values()}


class ConsentRefused(ServiceError):
    """A callback that is not taken: its state is missing, used, expired or another's; or the code is refused."""


@dataclass(frozen=True)
class Grant:
    """What a consent gave: the refresh token, and the address it is for when the provider said."""

    refresh_token: str = ""
    email: str | None = None

    def __repr__(self) -> str:  # never shows the token
        return f"Grant(email={self.email!r})"


def urls(settings: Settings, endpoints: Endpoints) -> tuple[str, str]:
    """The provider's authorize and token URLs (under OAUTH_BASE_URL in tests)."""
    if settings.oauth_base_url:
        base = f"{settings.oauth_base_url}/{endpoints.path}"
        return f"{base}/authorize", f"{base}/token"
    tenant = settings.microsoft_tenant
    return endpoints.authorize_url.format(tenant=tenant), endpoints.token_url.format(tenant=tenant)


def client(settings: Settings, provider: Provider) -> tuple[str, str] | None:
    """The app's client id and secret with this provider, or None when the admin has not set them."""
    if provider is Provider.GOOGLE:
        pair = settings.google_client_id, settings.google_client_secret
    elif provider is Provider.MICROSOFT365:
        pair = settings.microsoft_client_id, settings.microsoft_client_secret
    else:
        return None
    if not pair[0] or pair[1] is None:
        return None
    return pair[0], pair[1].get_secret_value()


def configured(settings: Settings) -> list[Endpoints]:
    """The providers reps can connect with: client set, PUBLIC_URL and SECRET_KEY too."""
    if not settings.public_url or settings.secret_key is None:
        return []
    return [endpoints for provider, endpoints in ENDPOINTS.items() if client(settings, provider)]


def redirect_uri(settings: Settings, endpoints: Endpoints) -> str:
    """Where the provider sends the browser back: register exactly this with it."""
    return f"{settings.public_url}/oauth/callback/{endpoints.path}"


def start_url(settings: Settings, endpoints: Endpoints, rep_id: str, now: dt.datetime) -> str:
    """The Connect link of this rep: our own short address, which starts a consent when opened."""
    sealed = credentials.cipher(settings.secret_key).encrypt_at_time(
        f"{endpoints.path}:{rep_id}".encode(), int(now.timestamp())
    )
    return f"{settings.public_url}/oauth/start/{endpoints.path}?t={sealed.decode('ascii')}"


def rep_of_start(settings: Settings, endpoints: Endpoints, sealed: str, now: dt.datetime) -> str | None:
    """The rep a Connect link names, or None when it is forged, for another provider or too old."""
    try:
        opened = credentials.cipher(settings.secret_key).decrypt_at_time(
            sealed.encode("ascii"), int(START_LINK_TTL.total_seconds()), int(now.timestamp())
        )
    except (InvalidToken, UnicodeError, ValueError):
        return None
    path, _, rep_id = opened.decode("utf-8", "replace").partition(":")
    return rep_id if path == endpoints.path and rep_id else None


def begin(session: Session, settings: Settings, endpoints: Endpoints, rep_id: str, now: dt.datetime) -> tuple[str, str]:
    """Start a consent for the rep: (the provider's consent URL, the cookie to set in this browser)."""
    state, verifier, cookie = secrets.token_urlsafe(32), secrets.token_urlsafe(64), secrets.token_urlsafe(32)
    session.execute(delete(OAuthState).where(col(OAuthState.expires_at) < now))
    session.add(
        OAuthState(
            state_hash=digest(state),
            slack_user_id=rep_id,
            provider=endpoints.provider,
            browser_hash=digest(cookie),
            verifier=credentials.encrypt(verifier, settings.secret_key),
            expires_at=now + STATE_TTL,
            created_at=now,
        )
    )
    session.flush()
    authorize, _ = urls(settings, endpoints)
    url, _ = _session(settings, endpoints).create_authorization_url(
        authorize, state=state, code_verifier=verifier, **dict(endpoints.extra)
    )
    return url, cookie


def take_state(
    session: Session, settings: Settings, endpoints: Endpoints, state: str | None, cookie: str | None, now: dt.datetime
) -> tuple[str, str]:
    """Use up the callback's state: (the rep it was made for, the PKCE verifier); ConsentRefused if it is not good."""
    if not state:
        raise ConsentRefused("the provider's answer names no consent of ours (no state)")
    # Deleted before anything is checked: a state is good once, whatever happens next.
    row = session.execute(
        delete(OAuthState).where(col(OAuthState.state_hash) == digest(state)).returning(OAuthState)
    ).scalar()
    session.flush()
    if row is None:
        raise ConsentRefused("this consent was already used, or was never started here")
    if row.expires_at <= now:
        raise ConsentRefused(f"this consent was started more than {int(STATE_TTL.total_seconds() // 60)} minutes ago")
    if row.provider != endpoints.provider or not cookie or not secrets.compare_digest(row.browser_hash, digest(cookie)):
        raise ConsentRefused("this consent was started by someone else, or in another browser")
    return row.slack_user_id, credentials.decrypt(row.verifier, settings.secret_key)


def exchange(settings: Settings, endpoints: Endpoints, code: str, verifier: str) -> Grant:
    """Trade the callback's code (and the PKCE verifier) for a refresh token; ConsentRefused if the provider will not."""
    _, token_url = urls(settings, endpoints)
    try:
        token = _session(settings, endpoints).fetch_token(
            token_url, grant_type="authorization_code", code=code, code_verifier=verifier, timeout=TIMEOUT
        )
    except OAuthError as exc:
        raise ConsentRefused(f"{endpoints.name} did not take the consent: {_said(exc)}") from None
    except (requests.RequestException, ValueError) as exc:
        raise ConsentRefused(f"could not reach {endpoints.name}'s token endpoint: {type(exc).__name__}") from None
    refresh_token = token.get("refresh_token")
    if not refresh_token:
        raise ConsentRefused(f"{endpoints.name} gave no refresh token (was offline access left out of the consent?)")
    return Grant(refresh_token, email_of(token.get("id_token")))


def email_of(id_token: str | None) -> str | None:
    """The address an OpenID id_token names (`email`, else Microsoft's `preferred_username`).

    Not checked for its signature: it came straight from the token endpoint over TLS
    (OpenID Connect Core 3.1.3.7), and it only names the login's user, not who may log in.
    """
    try:
        payload = (id_token or "").split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return None
    address = claims.get("email") or claims.get("preferred_username") if isinstance(claims, dict) else None
    return address if isinstance(address, str) and "@" in address else None


# Where a refresh token the provider rotated goes: keep(rep id, the refresh token it replaces, the new one).
Keep = Callable[[str, str, str], None]


class Tokens:
    """Access tokens of every OAuth mailbox of this process, in memory only, renewed as needed.

    A provider may hand a new refresh token with a renewal (Microsoft does, and the first
    one ends 90 days after the consent): it is used from then on, and handed to `keep`
    to be stored in the rep's mailbox.
    """

    def __init__(self, settings: Settings, clock: Clock, keep: Keep | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.keep = keep
        self._lock = threading.Lock()
        # by digest of the refresh token: (access token, expires at, the refresh token to use next)
        self._cache: dict[str, tuple[str, dt.datetime, str]] = {}

    def bearer(self, provider: Provider, refresh_token: str, rep_id: str = "") -> Callable[[str | None], str]:
        """The access token of `rep_id`'s mailbox as a login needs it: `bearer(refused)`."""

        def token(refused: str | None = None) -> str:
            return self.access_token(provider, refresh_token, refused=refused, rep_id=rep_id)

        return token

    def access_token(
        self, provider: Provider, refresh_token: str, *, refused: str | None = None, rep_id: str = ""
    ) -> str:
        """A current access token, renewed when it expires soon or is `refused`, the one a server just refused.

        One renewal serves every connection of the mailbox: a connection refused the token
        another one has renewed since gets the new one.
        """
        key = digest(refresh_token)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] != refused and self.clock.now() < cached[1] - RENEW_BEFORE:
                return cached[0]
            latest = cached[2] if cached is not None else refresh_token
            access, expires_at, rotated = self._renew(ENDPOINTS[provider], latest)
            newest = rotated or latest
            self._cache[key] = (access, expires_at, newest)
            if newest != latest:  # the mailbox read from the store once `keep` has it: no renewal then
                self._cache[digest(newest)] = (access, expires_at, newest)
        if newest != latest and self.keep is not None and rep_id:
            self.keep(rep_id, refresh_token, newest)
        return access

    def _renew(self, endpoints: Endpoints, refresh_token: str) -> tuple[str, dt.datetime, str | None]:
        _, token_url = urls(self.settings, endpoints)
        try:
            token = _session(self.settings, endpoints).refresh_token(
                token_url, refresh_token=refresh_token, timeout=TIMEOUT
            )
        except OAuthError as exc:
            raise TokenRefused(
                f"{endpoints.name} refused to renew the mailbox's access ({_said(exc)}): consent was revoked or "
                "the password changed; reconnect the mailbox"
            ) from None
        except (requests.RequestException, ValueError) as exc:
            raise TokenUnavailable(f"could not reach {endpoints.name}'s token endpoint: {type(exc).__name__}") from None
        access = token.get("access_token")
        if not access:
            raise TokenUnavailable(f"{endpoints.name}'s token endpoint gave no access token")
        expires_in = int(token.get("expires_in") or 3600)
        return access, self.clock.now() + dt.timedelta(seconds=expires_in), token.get("refresh_token")


class Keeper:
    """A `Keep` that stores each rotated refresh token in the rep's mailbox, so a restart starts from it.

    Each is stored in a short transaction of its own, on a thread of its own: the login
    that renewed may run while this process's scheduler holds the database (SQLite) or
    the mailbox's row and waits for that login. One that cannot be stored is logged; the
    token stays in use in memory, and the next renewal hands another.
    """

    def __init__(self, engine: Engine, key: SecretStr | None) -> None:
        self.engine = engine
        self.key = key
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __call__(self, rep_id: str, old: str, new: str) -> None:
        thread = threading.Thread(target=self._store, args=(rep_id, old, new), name="keep-refresh-token", daemon=True)
        with self._lock:
            self._threads = [*(t for t in self._threads if t.is_alive()), thread]
        thread.start()

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the tokens handed so far are stored."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _store(self, rep_id: str, old: str, new: str) -> None:
        try:
            with Session(self.engine) as session:
                mailboxes.keep_rotated(session, rep_id, old, new, self.key)
                session.commit()
        except (SQLAlchemyError, ServiceError) as exc:
            log.warning("%s's renewed refresh token could not be stored (%s)", rep_id, type(exc).__name__)


def digest(secret: str) -> str:
    """The sha256 of a secret, to store or key by instead of the secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _session(settings: Settings, endpoints: Endpoints) -> OAuth2Session:
    pair = client(settings, endpoints.provider)
    if pair is None:
        raise ConsentRefused(f"{endpoints.name} is not set up: its client id and secret are not set")
    client_id, client_secret = pair
    return OAuth2Session(
        client_id,
        client_secret,
        scope=" ".join(endpoints.scopes),
        redirect_uri=redirect_uri(settings, endpoints),
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    )


def _said(exc: OAuthError) -> str:
    """The provider's error code and words, on one line and short (never a token: it sends none back)."""
    text = " ".join(f"{exc.error or ''}: {exc.description or ''}".split()).strip(": ")
    return text[:200] or "no reason given"
