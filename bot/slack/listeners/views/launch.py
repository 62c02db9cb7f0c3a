"""The launch modal's submission: add the people with the send-at time the rep picked."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.clock import UTC
from bot.core.rules import RuleError
from bot.services import campaigns, enrollments
from bot.services.errors import ServiceError
from bot.services.people import parse_people
from bot.slack.blocks import commands as blocks
from bot.slack.blocks.common import Message, error_message
from bot.slack.context import Deps
from bot.slack.profiles import ensure_rep
from bot.slack.replies import after_ack, tell
from bot.store.db import session_scope

METADATA_MAX = 3000


@dataclass(frozen=True)
class LaunchRequest:
    """What the modal carries in private_metadata from the command to the submission."""

    campaign: str
    people: str  # as typed: parsed again on submit, so invalid entries are reported then
    response_url: str  # the command's, so the result lands where the rep typed it
    preset: int | None = None  # the at_time step's own time, as a Unix timestamp

    def to_metadata(self) -> str:
        metadata = json.dumps(asdict(self), separators=(",", ":"))
        if len(metadata) > METADATA_MAX:
            raise ServiceError(
                "That is too many people to add with a send-at time in one go: add them in smaller groups."
            )
        return metadata

    @classmethod
    def from_metadata(cls, metadata: str) -> LaunchRequest:
        return cls(**json.loads(metadata))


def register(app: App, deps: Deps) -> None:
    @app.view(blocks.LAUNCH_CALLBACK)
    def launch_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        request = LaunchRequest.from_metadata(view["private_metadata"])
        picked = picked_time(view)
        now = deps.clock.now()
        unchanged = request.preset is not None and picked is not None and picked // 60 == request.preset // 60
        problem = None
        if picked is None:
            problem = "Pick the date and the time of the first email."
        elif not unchanged and picked < now.timestamp():
            problem = "That time is in the past: pick a later one."
        if problem:
            ack(response_action="errors", errors={blocks.SEND_AT_BLOCK: problem})
            return
        ack()
        assert picked is not None
        # Keeping the at_time step's own time is no override: the rules apply as for any add.
        send_at = None if unchanged else dt.datetime.fromtimestamp(picked, UTC)
        reply_to = {"response_url": request.response_url, "user": body["user"]}

        def add_people() -> None:
            tell(client, reply_to, launch(deps, client, body["user"]["id"], request, send_at))

        after_ack(deps, client, reply_to, add_people)


def picked_time(view: dict[str, Any]) -> int | None:
    """The datetimepicker's value, a Unix timestamp, or None when left empty."""
    value = view["state"]["values"].get(blocks.SEND_AT_BLOCK, {}).get(blocks.SEND_AT_ACTION, {})
    picked = value.get("selected_date_time")
    return int(picked) if picked is not None else None


def launch(deps: Deps, client: WebClient, rep_id: str, request: LaunchRequest, send_at: dt.datetime | None) -> Message:
    """Add the people of `request`; the result (or the refusal) for the rep."""
    now = deps.clock.now()
    try:
        with session_scope(deps.engine) as session:
            ensure_rep(session, client, rep_id, now)
            campaign = campaigns.get_campaign(session, request.campaign)
            people, invalid = parse_people(request.people)
            result = enrollments.add_people(
                session,
                campaign,
                rep_id,
                people,
                now=now,
                send_at=send_at,
                invalid=invalid,
                smtputf8=deps.smtputf8_refusal(session, rep_id),
            )
    except (ServiceError, RuleError) as exc:
        return error_message(str(exc))
    return blocks.add_result(campaign.name, result, send_at)
