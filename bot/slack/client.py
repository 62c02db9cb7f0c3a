"""The Web API client the whole bot shares."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler

from bot.settings import Settings

# Slack's rate limits are per method and per minute; a burst (a big add, a digest
# morning) can take several Retry-After waits in a row before it gets through.
RATE_LIMIT_RETRIES = 6
CONNECTION_RETRIES = 2


def retry_handlers() -> list[RetryHandler]:
    """Retries for 429 (honouring Retry-After) and dropped connections."""
    return [
        RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
    ]


def make_client(settings: Settings) -> WebClient:
    """A WebClient for SLACK_API_URL with the bot token and the retry handlers."""
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=15,
        retry_handlers=retry_handlers(),
    )
