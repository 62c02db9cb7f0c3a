"""The Salesforce REST API through simple-salesforce: log in, query, create, update, describe.

Logging in: the OAuth 2.0 JWT bearer flow (a connected app's consumer key, the user
name and the private key of the certificate uploaded to the app), posted to
SALESFORCE_URL's token endpoint; or a user name, password and security token
(simple-salesforce's SOAP login, which needs a `*.salesforce.com` SALESFORCE_URL).
An expired session (INVALID_SESSION_ID) logs in again, once per call.

Every failure is one of two kinds, for the syncer to decide on:
`SalesforceDown` (at its limit, down, unreachable, or refusing our login: try again
later, never give up) and `SalesforceRefused` (refused what was asked for what it is).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
import requests
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)
from simple_salesforce.format import format_soql

from bot.settings import Settings

log = logging.getLogger(__name__)

API_VERSION = "59.0"
TIMEOUT = 30.0  # seconds to wait for Salesforce's answer
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
BUSY_CODES = {"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW"}

T = TypeVar("T")


class SalesforceDown(Exception):
    """Salesforce did not do it now (limit, outage, no answer, login refused): try later."""


class LoginRefused(SalesforceDown):
    """Salesforce refused the login; str() has its reason (never the key or password)."""


class SalesforceRefused(Exception):
    """Salesforce refused the request itself (a bad field, no access ...)."""


class _Http(requests.Session):
    """requests with a timeout on every call: simple-salesforce passes none."""

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(method, url, *args, **kwargs)


class Client:
    """One logged-in connection to Salesforce, logging in when first used."""

    def __init__(self, settings: Settings) -> None:
        assert settings.salesforce_url is not None
        self.settings = settings
        self.http = _Http()
        self._sf: Salesforce | None = None
        self.user_id: str | None = None  # the integration user's Id, once logged in

    # --- the calls ---------------------------------------------------------------------
    def query(self, soql: str, *args: Any) -> list[dict[str, Any]]:
        """The records a SOQL query finds (every page); values in `args` are quoted by format_soql."""
        text = format_soql(soql, *args)
        return self._call(lambda sf: list(sf.query_all(text)["records"]))

    def create(self, sobject: str, fields: dict[str, Any]) -> str:
        """Create a record; its Id."""
        return self._call(lambda sf: str(getattr(sf, sobject).create(fields)["id"]))

    def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        self._call(lambda sf: getattr(sf, sobject).update(record_id, fields))

    def describe(self, sobject: str) -> dict[str, Any]:
        """The object's describe: `queryable`, `createable`, `updateable`, its fields ..."""
        return self._call(lambda sf: dict(getattr(sf, sobject).describe()))

    def login(self) -> None:
        """Log in now (the calls do it when needed)."""
        self._sf = self._login()

    # --- logging in, errors ------------------------------------------------------------
    def _call(self, call: Callable[[Salesforce], T]) -> T:
        for attempt in (1, 2):
            if self._sf is None:
                self._sf = self._login()
            try:
                return call(self._sf)
            except SalesforceExpiredSession:
                self._sf = None  # INVALID_SESSION_ID: log in again and repeat the call, once
                if attempt == 2:
                    raise SalesforceDown("Salesforce refused the new session too (INVALID_SESSION_ID)") from None
            except SalesforceError as exc:
                raise _translated(exc) from None
            except requests.RequestException as exc:
                raise SalesforceDown(f"no answer from Salesforce: {type(exc).__name__}") from None
        raise AssertionError("unreachable")

    def _login(self) -> Salesforce:
        settings = self.settings
        url = str(settings.salesforce_url)
        try:
            if settings.salesforce_private_key_file is not None:
                token, instance_url = self._jwt_login(url)
                sf = Salesforce(instance_url=instance_url, session_id=token, session=self.http, version=API_VERSION)
            else:
                host = urlsplit(url).hostname or ""
                if not host.endswith(".salesforce.com"):
                    raise LoginRefused(
                        "a password login needs SALESFORCE_URL on salesforce.com (or use the JWT bearer flow)"
                    )
                assert settings.salesforce_password and settings.salesforce_security_token
                token, instance = SalesforceLogin(
                    username=settings.salesforce_username,
                    password=settings.salesforce_password.get_secret_value(),
                    security_token=settings.salesforce_security_token.get_secret_value(),
                    domain=host.removesuffix(".salesforce.com"),
                    session=self.http,
                    sf_version=API_VERSION,
                )
                sf = Salesforce(instance=instance, session_id=token, session=self.http, version=API_VERSION)
        except SalesforceAuthenticationFailed as exc:
            raise LoginRefused(f"Salesforce refused the login ({exc.code}): {exc.auth_message}") from None
        except requests.RequestException as exc:
            raise SalesforceDown(f"no answer from Salesforce's login: {type(exc).__name__}") from None
        log.info("logged in to Salesforce at %s as %s", sf.sf_instance, settings.salesforce_username)
        return sf

    def _jwt_login(self, url: str) -> tuple[str, str]:
        """The JWT bearer flow: a signed assertion for the user, exchanged for an access token."""
        settings = self.settings
        assert settings.salesforce_private_key_file is not None
        key = settings.salesforce_private_key_file.read_bytes()
        claims = {
            "iss": settings.salesforce_client_id,
            "sub": settings.salesforce_username,
            "aud": url,
            "exp": int((dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3)).timestamp()),
        }
        assertion = jwt.encode(claims, key, algorithm="RS256")
        answer = self.http.post(f"{url}/services/oauth2/token", data={"grant_type": JWT_GRANT, "assertion": assertion})
        if answer.status_code >= 500:
            raise SalesforceDown(f"Salesforce's login answered {answer.status_code}")
        body = _json(answer)
        if answer.status_code != 200 or "access_token" not in body:
            why = body.get("error_description") or body.get("error") or f"HTTP {answer.status_code}"
            raise LoginRefused(f"Salesforce refused the login: {why}")
        return str(body["access_token"]), str(body["instance_url"])


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _translated(exc: SalesforceError) -> Exception:
    """simple-salesforce's error as down (try later) or refused, with Salesforce's own words."""
    errors: list[Any] = exc.content if isinstance(exc.content, list) else []
    codes = {str(error.get("errorCode")) for error in errors if isinstance(error, dict)}
    words = "; ".join(
        f"{error.get('errorCode')}: {error.get('message')}" for error in errors if isinstance(error, dict)
    )
    reason = words or f"HTTP {exc.status}"
    if exc.status >= 500 or codes & BUSY_CODES:
        return SalesforceDown(reason)
    if isinstance(exc, SalesforceRefusedRequest) and not codes:
        return SalesforceDown(reason)  # a 403 without Salesforce's error body: a proxy or an outage page
    return SalesforceRefused(reason)
