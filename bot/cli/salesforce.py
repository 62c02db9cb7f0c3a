"""`bot salesforce check|status|sync`: the Salesforce login and its permissions, the sync queue, one pass now."""

from __future__ import annotations

import argparse

from sqlmodel import Session, col, select

from bot.cli import CommandError
from bot.cli.campaign import database, one_line_errors, table
from bot.clock import SystemClock
from bot.salesforce.client import Client, SalesforceDown, SalesforceRefused
from bot.salesforce.sync import Syncer
from bot.settings import NoMatch, Settings, load_settings
from bot.store.db import connect
from bot.store.models import Enrollment, Person, SalesforceSync, Send


def register(commands: argparse._SubParsersAction) -> None:
    """Adds `bot salesforce` and its three actions."""
    parser = commands.add_parser("salesforce", help="check the Salesforce login, show the sync queue, sync now")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "check", help="log in; say whether the user may read Contacts, Leads and Users and create and edit Tasks"
    ).set_defaults(handler=check_command)
    actions.add_parser("status", help="sync work waiting, failed, and people not matched").set_defaults(
        handler=status_command
    )
    actions.add_parser("sync", help="one sync pass now").set_defaults(handler=sync_command)


def _settings() -> Settings:
    settings = load_settings()
    settings.require("salesforce_url")
    return settings


def needed(settings: Settings) -> dict[str, list[tuple[str, str]]]:
    """What the sync does with each object: (describe flag, what an admin grants)."""
    lead = [("queryable", "Read")] + (
        [("createable", "Create")] if settings.salesforce_no_match == NoMatch.LEAD else []
    )
    return {
        "Contact": [("queryable", "Read")],
        "Lead": lead,
        "User": [("queryable", "Read")],
        "Task": [("queryable", "Read"), ("createable", "Create"), ("updateable", "Edit")],
    }


def check_command(args: argparse.Namespace) -> int:
    settings = _settings()
    client = Client(settings)
    try:
        client.login()
    except SalesforceDown as exc:
        raise CommandError(str(exc)) from None
    print(f"logged in to {settings.salesforce_url} as {settings.salesforce_username}")
    missing: list[str] = []
    for sobject, wanted in needed(settings).items():
        try:
            describe = client.describe(sobject)
        except (SalesforceDown, SalesforceRefused) as exc:
            print(f"{sobject}: cannot describe it: {exc}")
            missing += [f"{grant} on {sobject}" for _, grant in wanted]
            continue
        lacking = [grant for flag, grant in wanted if not describe.get(flag)]
        granted = [grant for flag, grant in wanted if describe.get(flag)]
        print(f"{sobject}: {', '.join(granted) or 'nothing'}" + (f"; missing: {', '.join(lacking)}" if lacking else ""))
        missing += [f"{grant} on {sobject}" for grant in lacking]
    if missing:
        raise CommandError(f"the Salesforce user lacks {', '.join(missing)}")
    print("ok: the sync can do everything it needs")
    return 0


@one_line_errors
def status_command(args: argparse.Namespace) -> int:
    _settings()
    from bot.services import sync

    with database() as session:
        status = sync.status(session)
        print(
            f"{status.waiting} waiting ({status.retrying} after an error), {status.synced} synced, "
            f"{len(status.failed)} failed, {len(status.unmatched)} unmatched"
        )
        for title, listed in (("failed", status.failed), ("unmatched", status.unmatched)):
            if listed:
                print(f"\n{title}:")
                print(table(["when", "event", "person", "why"], [_row(session, item) for item in listed]))
    return 0


def _row(session: Session, item: SalesforceSync) -> list[str]:
    person = session.exec(
        select(Person.email)
        .join(Enrollment, col(Enrollment.person_id) == Person.id)
        .join(Send, col(Send.enrollment_id) == Enrollment.id)
        .where(Send.id == item.send_id)
    ).first()
    when = item.done_at.strftime("%Y-%m-%d %H:%M") if item.done_at else ""
    return [when, str(item.event), person or "", item.last_error or ""]


def sync_command(args: argparse.Namespace) -> int:
    settings = _settings()
    engine = connect(settings.database_url)
    try:
        result = Syncer(engine, SystemClock(), settings).sync()
    finally:
        engine.dispose()
    print(result)
    return 1 if result.down else 0
