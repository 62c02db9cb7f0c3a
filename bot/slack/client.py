"""The Web API client the whole bot shares, and how to read Slack's refusals."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler

from bot.settings import Settings

# Slack's rate limits are per method and per minute; a burst (a big add, a digest
# morning) can take several Retry-After waits in a row before it gets through.
RATE_LIMIT_RETRIES = 6
CONNECTION_RETRIES = 2
# Answers that say Slack is having trouble, not that the call is wrong (with HTTP 200).
BUSY_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def retry_handlers(rate_limit_retries: int = RATE_LIMIT_RETRIES) -> list[RetryHandler]:
    """Retries for 429 (honouring Retry-After) and dropped connections."""
    return [
        RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
        ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
    ]


def make_client(settings: Settings, *, rate_limit_retries: int = RATE_LIMIT_RETRIES) -> WebClient:
    """A WebClient for SLACK_API_URL with the bot token and the retry handlers.

    `rate_limit_retries=0` for a caller with a queue of its own (the notice poster):
    it is told of a 429 at once and comes back at Retry-After, instead of sleeping.
    """
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=15,
        retry_handlers=retry_handlers(rate_limit_retries),
    )


def busy(exc: BaseException) -> bool:
    """Slack is rate limiting, failing or out of reach: the same call may well work later."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        return status == 429 or status >= 500 or exc.response.get("error") in BUSY_ERRORS
    return isinstance(exc, OSError)  # refused, reset, timed out


def retry_after(exc: BaseException) -> float | None:
    """The seconds a 429 asks to wait, if it says."""
    if not isinstance(exc, SlackApiError) or exc.response.status_code != 429:
        return None
    headers = {name.lower(): value for name, value in (exc.response.headers or {}).items()}
    value = headers.get("retry-after")
    value = value[0] if isinstance(value, list) else value
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
