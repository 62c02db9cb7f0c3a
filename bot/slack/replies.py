"""Private replies to a rep: through the request's response_url, else by direct message."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.core.rules import RuleError
from bot.services.errors import ServiceError
from bot.slack.blocks.common import Message, error_message
from bot.slack.client import retry_handlers
from bot.slack.context import Deps

logger = logging.getLogger(__name__)

FAILURE_TEXT = "Sorry, that did not work: something went wrong on our side. It has been logged; please try again."


class ReplyError(Exception):
    """Slack did not take a reply posted to a response_url."""


def is_slack_url(url: str, api_url: str) -> bool:
    """Whether `url` is Slack's to call: https on slack.com or a host under it, or on the Web API's own origin.

    A response_url comes in the request's body: one on any other host is refused
    rather than called. The Web API's origin (SLACK_API_URL) lets tests use a fake.
    """
    parts, api = urlsplit(url), urlsplit(api_url)
    try:
        port = parts.port
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    if (parts.scheme, parts.netloc) == (api.scheme, api.netloc):
        return True
    host = parts.hostname or ""
    return parts.scheme == "https" and port in (None, 443) and (host == "slack.com" or host.endswith(".slack.com"))


def respond(client: WebClient, response_url: str, message: Message, *, replace_original: bool = False) -> None:
    """Post an ephemeral reply to `response_url`, retrying 429s (Bolt's respond() does not).

    Raises ReplyError when Slack does not take it, or when the URL is not Slack's
    (see is_slack_url; `client` is the Web API the bot trusts).
    """
    if not is_slack_url(response_url, client.base_url):
        raise ReplyError(f"response_url is not on a Slack host: {urlsplit(response_url).hostname}")
    webhook = WebhookClient(url=response_url, timeout=15, retry_handlers=retry_handlers())
    payload: dict[str, Any] = {"response_type": "ephemeral", **message.as_kwargs()}
    if replace_original:
        payload["replace_original"] = True
    response = webhook.send_dict(payload)
    if response.status_code != 200:
        raise ReplyError(f"response_url answered {response.status_code}: {response.body[:200]}")


def response_url_of(body: dict[str, Any]) -> str | None:
    """The response_url of a command, a message action or a view with one."""
    if body.get("response_url"):
        return str(body["response_url"])
    urls = body.get("response_urls") or []
    return str(urls[0]["response_url"]) if urls else None


def user_id_of(body: dict[str, Any]) -> str | None:
    if body.get("user_id"):
        return str(body["user_id"])
    user = body.get("user") or {}
    return user.get("id") if isinstance(user, dict) else None


def tell(client: WebClient, body: dict[str, Any], message: Message) -> None:
    """Tell the rep behind `body` privately, wherever the request came from.

    A response_url keeps the reply next to the command or message; without one
    (App Home, modals) the bot writes to the rep's direct messages with the app.
    """
    url = response_url_of(body)
    if url:
        try:
            respond(client, url, message)
            return
        except ReplyError:
            # An expired response_url (30 minutes, 5 uses) should not lose the reply.
            logger.warning("response_url refused the reply; sending it by direct message", exc_info=True)
    user = user_id_of(body)
    if user is None:
        logger.error("no response_url and no user to tell: %s", message.text)
        return
    try:
        client.chat_postMessage(channel=user, **message.as_kwargs())
    except SlackApiError:
        logger.exception("could not tell %s privately", user)


def report_failure(error: Exception, body: dict[str, Any], client: WebClient) -> None:
    """A listener failed after its ack: log it with its traceback and tell the rep privately.

    A refusal the listener did not catch (a ServiceError, a RuleError) is meant for
    the rep as is, and is no failure of ours.
    """
    if isinstance(error, (ServiceError, RuleError)):
        logger.info("refused: %s", error)
        tell(client, body, error_message(str(error)))
        return
    kind = body.get("type") or body.get("command") or "unknown"
    logger.error("listener failed on a %s request", kind, exc_info=error)
    tell(client, body, error_message(FAILURE_TEXT))


def after_ack(deps: Deps, client: WebClient, body: dict[str, Any], work: Callable[[], None]) -> None:
    """Run `work` on the work pool, reporting a failure as Bolt would."""

    def guarded() -> None:
        try:
            work()
        except Exception as error:
            report_failure(error, body, client)

    deps.work.submit(guarded)
