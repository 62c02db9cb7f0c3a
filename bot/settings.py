"""Settings from the environment (and a `.env` file), in one place."""

from __future__ import annotations

from urllib.parse import urlsplit

from croniter import croniter
from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.mail.credentials import NOT_A_KEY
from bot.mail.urls import parse_imap_url, parse_smtp_url

DEFAULT_DATABASE_URL = "sqlite:///campaign-bot.db"
SLACK_API_URL = "https://slack.com/api/"


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
    # Encrypts the reps' mailbox credentials at rest; without it none can be stored.
    secret_key: SecretStr | None = None
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
    digest_cron: str = "0 8 * * 1-5"
    port: int = 3000
    host: str = "0.0.0.0"
    scheduler_interval: float = 5.0
    # How long a worker holds the sends it claimed; one that dies is taken over after it.
    scheduler_lease_seconds: float = Field(default=300.0, gt=0)

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

    def require(self, *names: str) -> None:
        """Stop with one line naming the first setting that is needed but missing."""
        for name in names:
            if not getattr(self, name):
                raise SettingsError(f"{name.upper()} is not set")


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a malformed one becomes a SettingsError naming it."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "SETTINGS"
        raise SettingsError(f"{name}: {error['msg'].removeprefix('Value error, ')}") from None
