"""A rep's own mailbox in Slack: its section of the Home tab and the Connect dialog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ConfirmObject,
    InputBlock,
    Option,
    PlainTextInputElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.mail.mailboxes import Provider, Status
from bot.mail.urls import Security
from bot.slack.blocks.common import (
    MAX_INPUT,
    MAX_URL,
    Message,
    button,
    context,
    fit,
    fitting,
    header,
    section,
    shown,
    view,
)

CONNECT = "mailbox_connect"  # the Home tab's button: opens the dialog
LINK = "mailbox_link"  # the action id prefix of the Connect Google / Microsoft 365 link buttons (acked, nothing more)
DISCONNECT = "mailbox_disconnect"
CONNECT_VIEW = "mailbox_connect_view"
INPUT = "value"
HOST_CHARS = 253  # the longest host name DNS allows
ERROR_CHARS = 300

PROVIDERS = {
    Provider.MICROSOFT365: "Microsoft 365",
    Provider.GOOGLE: "Google Workspace",
    Provider.OTHER: "Other (any SMTP server)",
}
SECURITIES = {
    Security.STARTTLS: "STARTTLS (usually port 587)",
    Security.TLS: "TLS from the start (usually 465 / 993)",
    Security.NONE: "None (plain, not for the internet)",
}


Link = tuple[str, str, str]  # an OAuth provider's path, its name, the link to its consent page


@dataclass(frozen=True)
class Panel:
    """The Home tab's mailbox: the rep's own (None: none), where emails go without one, OAuth links."""

    status: Status | None = None
    via: str = "through the company relay"
    links: list[Link] = field(default_factory=list)


@dataclass(frozen=True)
class Form:
    """What the rep typed into the Connect dialog (the password is never shown back)."""

    provider: Provider = Provider.OTHER
    smtp_host: str = ""
    smtp_port: str = "587"
    security: Security = Security.STARTTLS
    imap_host: str = ""
    imap_port: str = "993"
    user: str = ""
    password: str = ""


def mailbox_section(panel: Panel) -> list[Block]:
    """ "Your mailbox": where the rep's emails go out, with Connect, Reconnect or Disconnect."""
    status = panel.status
    blocks: list[Block] = [header("Your mailbox")]
    if status is None:
        words = f"Your emails go out {panel.via}. Connect your own mailbox to send from it and hear replies."
        blocks.append(section(words))
        return blocks + [actions([button("Connect your mailbox", CONNECT), *link_buttons(panel.links, "Connect")])]
    limit = f" of {status.per_day:,}" if status.per_day else ""
    what = f"*{shown(status.address, HOST_CHARS)}* ({PROVIDERS[status.provider]}, {shown(status.smtp, HOST_CHARS)})"
    if status.connected:
        sent = f"Sent in the last 24 hours: {status.sent_today:,}{limit}."
        blocks.append(section(f":white_check_mark: Connected: {what}. {sent}"))
        again = link_buttons(panel.links, "Reconnect") if status.oauth else []
        return blocks + [actions([*again, disconnect_button()])]
    error = shown(status.last_error or "the server refused the login", ERROR_CHARS)
    blocks.append(section(f":warning: {what} refused the login: {error}\nYour emails wait until you connect it again."))
    again = link_buttons(panel.links, "Reconnect") if status.oauth else [button("Reconnect", CONNECT, style="primary")]
    return blocks + [actions([*again, disconnect_button()])]


def link_buttons(links: list[Link], verb: str) -> list[Any]:
    """A link button to each OAuth provider's consent page (one too long for a button is left out)."""
    return [button(f"{verb} {name}", f"{LINK}_{path}", url=url) for path, name, url in links if len(url) <= MAX_URL]


def actions(elements: list[Any]) -> ActionsBlock:
    return ActionsBlock(block_id="mailbox-actions", elements=elements)


def mailbox_broken_message(text: str, about: str, reconnect: Link | None) -> Message:
    """The rep's mailbox refused the login: the server's words, and a Reconnect button where OAuth can fix it."""
    blocks: list[Block] = [
        section(f":warning: {shown(text, ERROR_CHARS)}\nYour emails wait until your mailbox is connected again."),
        context(shown(about, ERROR_CHARS)),
    ]
    if reconnect is not None and len(reconnect[2]) <= MAX_URL:
        path, name, url = reconnect
        blocks.append(actions([button(f"Reconnect {name}", f"{LINK}_{path}", url=url, style="primary")]))
    else:
        blocks.append(context("Connect it again from the Home tab (or ask your admin: `bot mailbox set`)."))
    return Message(text=f"{fit(text, ERROR_CHARS)} ({fit(about, ERROR_CHARS)})", blocks=blocks)


def disconnect_button() -> Any:
    confirm = ConfirmObject(
        title="Disconnect your mailbox?",
        text="Its password is deleted; your emails go out through the company relay again.",
        confirm="Disconnect",
        deny="Keep it",
    )
    return button("Disconnect", DISCONNECT, confirm=confirm)


def connect_modal(can_store: bool, form: Form | None = None, problem: str | None = None) -> View:
    """The Connect dialog: provider, SMTP and IMAP servers, login; `problem`: why the last try failed."""
    if not can_store:
        words = (
            ":warning: Your admin has not set `SECRET_KEY`, so the bot cannot store a mailbox password. "
            "Your emails go out through the company relay meanwhile."
        )
        return view("modal", [section(words)], callback_id=CONNECT_VIEW, title="Connect your mailbox", close="Close")
    form = form or Form()
    blocks: list[Block] = []
    if problem:
        blocks.append(section(f":warning: {shown(problem, ERROR_CHARS)}"))
    blocks += [
        select("provider", "Provider", PROVIDERS, form.provider),
        text_input(
            "smtp_host", "SMTP server", form.smtp_host, "blank: your provider's (needed for Other)", optional=True
        ),
        text_input("smtp_port", "SMTP port", form.smtp_port),
        select("security", "Security", SECURITIES, form.security),
        text_input(
            "imap_host", "IMAP server (to hear replies)", form.imap_host, "blank: your provider's", optional=True
        ),
        text_input("imap_port", "IMAP port", form.imap_port, optional=True),
        text_input("user", "User", form.user, "usually your email address"),
        text_input("password", "Password or app password", "", "stored encrypted; never shown again"),
        context("The bot logs in to both servers before it saves anything."),
    ]
    return view("modal", blocks, callback_id=CONNECT_VIEW, title="Connect your mailbox", submit="Connect")


def checking_view() -> View:
    """Shown while the bot logs in to the servers."""
    return view(
        "modal", [section(":hourglass_flowing_sand: Logging in to your mailbox…")], title="Connect your mailbox"
    )


def connected_view(status: Status) -> View:
    words = f":white_check_mark: Connected: your emails now go out from *{shown(status.address, HOST_CHARS)}*."
    return view("modal", [section(words)], title="Connect your mailbox", close="Done")


def select(block_id: str, label: str, choices: dict[Any, str], chosen: Any) -> InputBlock:
    options = [Option(value=str(key), text=words) for key, words in choices.items()]
    initial = next(option for option in options if option.value == str(chosen))
    element = StaticSelectElement(action_id=INPUT, options=options, initial_option=initial)
    return InputBlock(block_id=block_id, label=label, element=element)


def text_input(
    block_id: str, label: str, value: str, placeholder: str | None = None, *, optional: bool = False
) -> InputBlock:
    element = PlainTextInputElement(
        # What the rep typed came through this same field, so it fits; the cut is a guard.
        action_id=INPUT,
        initial_value=value[: fitting(value, MAX_INPUT)] or None,
        placeholder=placeholder,
        max_length=MAX_INPUT,
    )
    return InputBlock(block_id=block_id, label=label, element=element, optional=optional)


def read_form(view_state: dict[str, Any]) -> Form:
    """The dialog's values as Slack sends them back on submit."""
    values = view_state.get("state", {}).get("values", {})

    def typed(block_id: str) -> str:
        return ((values.get(block_id) or {}).get(INPUT) or {}).get("value") or ""

    def picked(block_id: str) -> str:
        return (((values.get(block_id) or {}).get(INPUT) or {}).get("selected_option") or {}).get("value") or ""

    return Form(
        provider=Provider(picked("provider") or Provider.OTHER),
        smtp_host=typed("smtp_host").strip(),
        smtp_port=typed("smtp_port").strip(),
        security=Security(picked("security") or Security.STARTTLS),
        imap_host=typed("imap_host").strip(),
        imap_port=typed("imap_port").strip(),
        user=typed("user").strip(),
        password=typed("password"),
    )
