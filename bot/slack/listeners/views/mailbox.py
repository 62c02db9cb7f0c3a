"""The Connect dialog's submission: log in to both servers, then store the mailbox.

A login can take longer than Slack's 3 seconds for an answer, so the dialog is
answered at once with "Logging in…" and updated when the servers have answered:
with the server's words if a login failed (the rep's values kept, but the password),
or with "Connected".
"""

from __future__ import annotations

import dataclasses
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.mail import mailboxes
from bot.mail.check import LoginFailed, check_imap, check_smtp
from bot.mail.mailboxes import Limits, Provider
from bot.mail.urls import IMAP, SMTP, Security, ServerUrl
from bot.services.errors import ServiceError
from bot.slack.blocks import mailbox as blocks
from bot.slack.context import Deps
from bot.slack.notifier import SlackNotifier
from bot.store.db import session_scope

# The providers' own servers: a rep who picks one may leave them blank.
SERVERS: dict[Provider, tuple[str, str]] = {
    Provider.MICROSOFT365: ("smtp.office365.com", "outlook.office365.com"),
    Provider.GOOGLE: ("smtp.gmail.com", "imap.gmail.com"),
}
CHECK_TIMEOUT = 20.0  # seconds each server has to answer the login


def servers(form: blocks.Form) -> tuple[ServerUrl, ServerUrl | None] | dict[str, str]:
    """The two logins the form describes, or the fields' problems."""
    problems: dict[str, str] = {}
    smtp_host, imap_host = form.smtp_host, form.imap_host
    if form.provider in SERVERS:
        smtp_host = smtp_host or SERVERS[form.provider][0]
        imap_host = imap_host or SERVERS[form.provider][1]
    if not smtp_host:
        problems["smtp_host"] = "Name your SMTP server (for Microsoft 365 and Google it may stay blank)."
    ports = {}
    for name, value, needed in (("smtp_port", form.smtp_port, True), ("imap_port", form.imap_port, bool(imap_host))):
        if needed and not (value.isdigit() and 0 < int(value) < 65536):
            problems[name] = f"“{value}” is not a port: a number from 1 to 65535, e.g. 587."
        ports[name] = int(value) if value.isdigit() else 0
    if not form.user:
        problems["user"] = "Your login: usually your email address."
    if not form.password:
        problems["password"] = "Your password, or an app password if your mailbox uses two-step sign-in."
    if problems:
        return problems
    smtp = ServerUrl(SMTP, smtp_host, ports["smtp_port"], form.security, form.user, form.password, CHECK_TIMEOUT)
    # IMAP's port says how it is secured: 993 is TLS from the start, 143 STARTTLS.
    imap_security = (
        Security.NONE
        if form.security is Security.NONE
        else Security.TLS
        if ports["imap_port"] == 993
        else Security.STARTTLS
    )
    imap = (
        ServerUrl(IMAP, imap_host, ports["imap_port"], imap_security, form.user, form.password, CHECK_TIMEOUT)
        if imap_host
        else None
    )
    return smtp, imap


def register(app: App, deps: Deps) -> None:
    @app.view(blocks.CONNECT_VIEW)
    def connect_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        form = blocks.read_form(view)
        logins = servers(form)
        if isinstance(logins, dict):
            ack(response_action="errors", errors=logins)
            return
        if deps.settings.secret_key is None:
            ack(response_action="update", view=blocks.connect_modal(False))
            return
        ack(response_action="update", view=blocks.checking_view())
        rep_id, view_id = body["user"]["id"], view["id"]
        smtp, imap = logins
        shown_again = dataclasses.replace(form, password="")
        try:
            check_smtp(smtp)
            if imap is not None:
                check_imap(imap)
        except LoginFailed as exc:
            client.views_update(view_id=view_id, view=blocks.connect_modal(True, shown_again, str(exc)))
            return
        try:
            with session_scope(deps.engine) as session:
                mailboxes.set_mailbox(
                    session,
                    rep_id,
                    smtp=smtp,
                    imap=imap,
                    password=form.password,
                    provider=form.provider,
                    limits=Limits(),
                    key=deps.settings.secret_key,
                    now=deps.clock.now(),
                )
                status = mailboxes.status(session, rep_id, deps.clock.now())
        except ServiceError as exc:
            client.views_update(view_id=view_id, view=blocks.connect_modal(True, shown_again, str(exc)))
            return
        assert status is not None
        client.views_update(view_id=view_id, view=blocks.connected_view(status))
        SlackNotifier(deps.engine, client, deps.clock, deps.settings).publish_home(rep_id)
