"""`/campaign`: help, list, show, add, remove, pause, resume.

Every reply is private (ephemeral, through the command's response_url). Adding
people to a campaign whose first step is `choose` or `at_time` opens the launch
modal instead (bot/slack/listeners/views/launch.py adds them on submit).
"""

from __future__ import annotations

import datetime as dt
import html
import io
import logging
import shlex
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View
from sqlmodel import Session

from bot.core import rules
from bot.core.rules import SendOption
from bot.services import campaigns, enrollments
from bot.services.enrollments import AddLine, AddResult
from bot.services.errors import ServiceError, UnknownCampaign
from bot.services.people import parse_people
from bot.services.progress import calendar_of, rule_steps, steps_of
from bot.slack.blocks import commands as blocks
from bot.slack.blocks.common import Message, error_message
from bot.slack.context import Deps
from bot.slack.listeners.views.launch import LaunchRequest
from bot.slack.profiles import ensure_rep
from bot.slack.replies import after_ack, tell
from bot.store.db import session_scope
from bot.store.models import Campaign

logger = logging.getLogger(__name__)

Command = dict[str, Any]


class UsageError(ServiceError):
    """What was typed is not a /campaign command; shown with the usage."""


def register(app: App, deps: Deps) -> None:
    @app.command("/campaign")
    def campaign_command(ack: Ack, command: Command, client: WebClient) -> None:
        ack()
        after_ack(deps, client, command, lambda: reply(deps, client, command))


def reply(deps: Deps, client: WebClient, command: Command) -> None:
    """Answer one /campaign command privately (unless a modal took over)."""
    message = run(deps, client, command)
    if message is not None:
        tell(client, command, message)


def run(deps: Deps, client: WebClient, command: Command) -> Message | None:
    """The reply to one /campaign command, or None when a modal took over."""
    verb, _, rest = command.get("text", "").strip().partition(" ")
    handler = HANDLERS.get(verb.lower() or "help")
    try:
        if handler is None:
            raise UsageError(f"“{html.unescape(verb)}” is not a /campaign command.")
        with session_scope(deps.engine) as session:
            ensure_rep(session, client, command["user_id"], deps.clock.now())
        return handler(deps, client, command, rest.strip())
    except UsageError as exc:
        return blocks.usage(str(exc))
    except (ServiceError, rules.RuleError) as exc:
        return error_message(str(exc))


def find_campaign(session: Session, name: str, rest: str) -> Campaign:
    """The campaign called `name`; when there is none and more words follow, a hint about quotes."""
    try:
        return campaigns.get_campaign(session, name)
    except UnknownCampaign as exc:
        if rest:
            raise ServiceError(f"{exc} A campaign name with spaces goes in double quotes.") from None
        raise


def split_name(text: str) -> tuple[str, str]:
    """The campaign name (in double quotes when it has spaces) and the raw text after it."""
    text = text.replace("“", '"').replace("”", '"')
    stream = io.StringIO(text)  # as shlex would make of `text`, but typed: we read the rest below
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.quotes, lexer.escape, lexer.commenters = '"', "", ""
    try:
        name = lexer.get_token()
    except ValueError:
        raise UsageError("The campaign name opens a double quote but never closes it.") from None
    rest = stream.read() if name is not None else ""
    return html.unescape(name or ""), rest.strip()


# --- the subcommands ----------------------------------------------------------------


def show_help(deps: Deps, client: WebClient, command: Command, rest: str) -> Message:
    return blocks.usage()


def list_campaigns(deps: Deps, client: WebClient, command: Command, rest: str) -> Message:
    with session_scope(deps.engine) as session:
        return blocks.campaign_list(campaigns.list_campaigns(session))


def show(deps: Deps, client: WebClient, command: Command, rest: str) -> Message:
    # Only a name follows `show`: quotes are welcome but not needed.
    name = split_name(rest)[0] if rest.startswith(('"', "“")) else html.unescape(rest)
    if not name:
        raise UsageError("Say which campaign: /campaign show NAME.")
    with session_scope(deps.engine) as session:
        return blocks.campaign_details(campaigns.campaign_details(session, campaigns.get_campaign(session, name)))


def add(deps: Deps, client: WebClient, command: Command, rest: str) -> Message | None:
    name, people_text = split_name(rest)
    if not name or not people_text:
        raise UsageError("Say which campaign and who: /campaign add NAME PEOPLE.")
    now = deps.clock.now()
    with session_scope(deps.engine) as session:
        campaign = find_campaign(session, name, people_text)
        people, invalid = parse_people(people_text)
        option = enrollments.first_step_option(session, campaign)
        if people and option in (SendOption.CHOOSE, SendOption.AT_TIME):
            modal = launch_modal(session, command, campaign, people_text, [p.email for p in people], now)
        elif people:
            modal = None
            result = enrollments.add_people(
                session,
                campaign,
                command["user_id"],
                people,
                now=now,
                invalid=invalid,
                smtputf8=deps.smtputf8_refusal(session, command["user_id"]),
            )
        else:  # nothing to launch: no send-at time to ask for or check
            modal = None
            result = AddResult(lines=[AddLine(entry.text, "invalid", entry.reason) for entry in invalid])
    if modal is None:
        return blocks.add_result(campaign.name, result)
    try:  # after the session: no database lock is held while Slack is asked
        client.views_open(trigger_id=command["trigger_id"], view=modal)
    except SlackApiError as exc:
        if exc.response.get("error") != "expired_trigger_id":
            raise
        # A trigger lasts 3 seconds: only a very busy bot misses it.
        raise ServiceError("Slack stopped waiting for the send-at form: please type the command again.") from None
    return None


def launch_modal(
    session: Session, command: Command, campaign: Campaign, people_text: str, emails: list[str], now: dt.datetime
) -> View:
    """The modal asking the send-at date and time; for `at_time`, preset to the step's own time."""
    assert campaign.id is not None
    steps = steps_of(session, campaign.id, campaign.version)
    preset = None
    hint = "The first step is “choose”: pick when the first email goes out (in your time zone)."
    if steps[0].send == SendOption.AT_TIME:
        preset, _ = rules.first_due(rule_steps(steps), calendar_of(campaign, campaign.timezone), now)
        hint = (
            f"The first step goes out at {steps[0].time:%H:%M} ({campaign.timezone}); "
            "keep it, or pick another time for these people."
        )
    request = LaunchRequest(
        campaign=campaign.name,
        people=people_text,
        response_url=command["response_url"],
        preset=int(preset.timestamp()) if preset else None,
    )
    return blocks.launch_modal(campaign.name, emails, metadata=request.to_metadata(), preset=preset, hint=hint)


def change(action: str) -> Callable[[Deps, WebClient, Command, str], Message]:
    """remove, pause or resume one person's enrollment."""
    service = getattr(enrollments, action)
    past = {"remove": "removed from", "pause": "paused in", "resume": "resumed in"}[action]

    def handler(deps: Deps, client: WebClient, command: Command, rest: str) -> Message:
        name, email_text = split_name(rest)
        if not name or not email_text:
            raise UsageError(f"Say which campaign and whose email: /campaign {action} NAME EMAIL.")
        with session_scope(deps.engine) as session:
            campaign = find_campaign(session, name, email_text)
            email = one_email(email_text, action)
            service(session, campaign, email, rep_id=command["user_id"], now=deps.clock.now())
        return blocks.done(f"{email} was {past} {campaign.name}.")

    return handler


def one_email(text: str, action: str) -> str:
    """The one address in `text` (plain or as Slack links it), normalized."""
    people, invalid = parse_people(text)
    if invalid:
        raise ServiceError(f"“{invalid[0].text}”: {invalid[0].reason}")
    if len(people) != 1:
        raise UsageError(f"Give one email: /campaign {action} NAME EMAIL.")
    return people[0].email


HANDLERS: dict[str, Callable[[Deps, WebClient, Command, str], Message | None]] = {
    "help": show_help,
    "list": list_campaigns,
    "show": show,
    "add": add,
    "remove": change("remove"),
    "pause": change("pause"),
    "resume": change("resume"),
}
