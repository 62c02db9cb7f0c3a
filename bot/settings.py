"""Settings from the environment (and a `.env` file), in one place."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from croniter import croniter
from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.mail.credentials import NOT_A_KEY
from bot.mail.urls import parse_imap_url, parse_smtp_url

DEFAULT_DATABASE_URL = "sqlite:///campaign-bot.db"
SLACK_API_URL = "https://slack.com/api/"


class NoMatch(StrEnum):
    """What the Salesforce sync does with a person who is neither a Contact nor a Lead there."""

    SKIP = "skip"  # nothing is written; listed with why in `bot salesforce status`
    LEAD = "lead"  # a Lead is created for them


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    slack_bot_token: str | None = Field(default=None, repr=False)
    slack_signing_secret: str | None = Field(default=None, repr=False)
    slack_app_token: str | None = Field(default=None, repr=False)
    slack_api_url: str = SLACK_API_URL
    feed_channel: str | None = None
    smtp_url: str | None = Field(default=None, repr=False)
    # Encrypts the reps' mailbox credentials at rest (without it none can be stored), and
    # signs the unsubscribe links (without it emails carry none).
    secret_key: SecretStr | None = None
    # The bot's public https address (https://bot.example.com): OAuth redirects come back to
    # it, and with SECRET_KEY every email carries List-Unsubscribe headers to its /unsubscribe/ page.
    public_url: str | None = None
    # Where the List-Unsubscribe mailto goes: a mailbox the bot watches. Unset: the rep's own address.
    unsubscribe_mailto: str | None = None
    # The relay's limits (../shared/spec/mail.md, Limits): connections open at once, and
    # emails per minute and per rolling 24 hours (unset: none).
    smtp_max_connections: int = Field(default=10, ge=1)
    smtp_per_minute: int | None = Field(default=None, ge=1)
    smtp_per_day: int | None = Field(default=None, ge=1)
    # Where the relay's bounces arrive (imap://, imaps://): read for bounces only.
    bounce_imap_url: str | None = Field(default=None, repr=False)
    # Mailboxes whose server offers no IDLE are read this often (mail.md: within a minute).
    listen_poll_seconds: float = Field(default=60.0, gt=0, le=60)
    # How long a worker holds a mailbox it watches; a dead worker's mailboxes are taken over after it.
    listen_lease_seconds: float = Field(default=120.0, gt=0)
    outbox_dir: str = "outbox"
    # OAuth 2.0 for reps' Google Workspace and Microsoft 365 mailboxes (bot/mail/oauth.py).
    # A provider's Connect button shows once its client, PUBLIC_URL and SECRET_KEY are set.
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    microsoft_client_id: str | None = None
    microsoft_client_secret: SecretStr | None = None
    microsoft_tenant: str = "organizations"  # or the tenant's id / domain, for a single-tenant app
    # (PUBLIC_URL, above, is where browsers reach `bot serve`: redirect URIs are PUBLIC_URL/oauth/callback/...)
    # Tests only: the providers' authorize and token endpoints under one fake server.
    oauth_base_url: str | None = None
    digest_cron: str = "0 8 * * 1-5"
    port: int = 3000
    host: str = "0.0.0.0"
    scheduler_interval: float = 5.0
    # How long a worker holds the sends it claimed; one that dies is taken over after it.
    scheduler_lease_seconds: float = Field(default=300.0, gt=0)
    # Salesforce (bot/salesforce/): the login URL and either the JWT bearer flow (client
    # id, user name, private key file) or a user name, password and security token.
    salesforce_url: str | None = None
    salesforce_client_id: str | None = None
    salesforce_username: str | None = None
    salesforce_private_key_file: Path | None = None
    salesforce_password: SecretStr | None = None
    salesforce_security_token: SecretStr | None = None
    salesforce_no_match: NoMatch = NoMatch.SKIP
    salesforce_interval: float = Field(default=30.0, gt=0)  # seconds between sync passes

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            scheme = make_url(value).drivername
        except (ArgumentError, ValueError):  # not echoed: the URL may hold a password
            scheme = ""
        if not scheme.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("xoxb-"):
            raise ValueError("must start with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("xapp-"):
            raise ValueError("must start with xapp-")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_smtp_url(value)
        return value

    @field_validator("oauth_base_url")
    @classmethod
    def _oauth_base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
            raise ValueError("must be an http(s) URL, e.g. https://bot.example.com")
        return value.rstrip("/")

    @field_validator("google_client_id", "microsoft_client_id")
    @classmethod
    def _client_id(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("google_client_secret", "microsoft_client_secret")
    @classmethod
    def _client_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("bounce_imap_url")
    @classmethod
    def _bounce_imap_url(cls, value: str | None) -> str | None:
        if value:
            parse_imap_url(value)
        return value or None

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        try:
            Fernet(value.get_secret_value())
        except ValueError:
            raise ValueError(NOT_A_KEY) from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        # RFC 8058: the one-click URL must be https; mail clients ignore any other. (Plain
        # http only on this machine, for tests.)
        secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost"))
        if not secure or not parts.hostname or parts.query or parts.fragment or not value.isascii():
            raise ValueError("must be the bot's https address, like https://bot.example.com")
        return value.rstrip("/")

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _unsubscribe_mailto(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value.count("@") != 1 or not all(value.split("@")) or any(c in value for c in " <>?,"):
            raise ValueError("must be an email address, like unsubscribe@seller.example")
        return value

    @field_validator("digest_cron")
    @classmethod
    def _digest_cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError("is not a valid cron expression")
        return value

    @field_validator("feed_channel")
    @classmethod
    def _feed_channel(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("salesforce_url")
    @classmethod
    def _salesforce_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
            raise ValueError("must be a URL like https://login.salesforce.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _salesforce_login(self) -> Settings:
        if self.salesforce_url is None:
            return self
        if not self.salesforce_username:
            raise ValueError("SALESFORCE_USERNAME is not set (SALESFORCE_URL is)")
        jwt = self.salesforce_client_id or self.salesforce_private_key_file
        if jwt:
            if not (self.salesforce_client_id and self.salesforce_private_key_file):
                raise ValueError("the JWT bearer flow needs SALESFORCE_CLIENT_ID and SALESFORCE_PRIVATE_KEY_FILE")
            if not self.salesforce_private_key_file.is_file():
                raise ValueError(f"SALESFORCE_PRIVATE_KEY_FILE: no file {self.salesforce_private_key_file}")
        elif not (self.salesforce_password and self.salesforce_security_token):
            raise ValueError(
                "set SALESFORCE_CLIENT_ID and SALESFORCE_PRIVATE_KEY_FILE (JWT bearer flow), "
                "or SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN"
            )
        return self

    @property
    def salesforce(self) -> bool:
        """Whether Salesforce sync is set up (SALESFORCE_URL and a login)."""
        return self.salesforce_url is not None

    def require(self, *names: str) -> None:
        """Stop with one line naming the first setting that is needed but missing."""
        for name in names:
            if not getattr(self, name):
                raise SettingsError(f"{name.upper()} is not set")


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a malformed one becomes a SettingsError naming it."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # pydantic validates the overrides, by field name
    except ValidationError as exc:
        error = exc.errors()[0]
        if not error["loc"]:  # a rule across several settings: its message names them
            raise SettingsError(error["msg"].removeprefix("Value error, ")) from None
        name = str(error["loc"][0]).upper()
        raise SettingsError(f"{name}: {error['msg'].removeprefix('Value error, ')}") from None
