"""The unsubscribe page of `bot serve`: GET /unsubscribe/<token> shows a button, POST acts.

A GET changes nothing: link scanners and mail previews open links. A POST with the
form `List-Unsubscribe=One-Click`, as mail clients send it (RFC 8058, urlencoded or
multipart) and as the page's button does, unsubscribes at once: no login, no
cookies, the signed token is the whole authority. A token that is not ours is 404,
any other body 400, and what a POST does is one transaction: all of it or nothing.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

from pydantic import SecretStr
from sqlalchemy import Engine

from bot.clock import Clock
from bot.services import unsubscribe
from bot.store.db import session_scope

log = logging.getLogger(__name__)

# The one-click form is 26 bytes; a multipart one a few hundred.
MAX_FORM_BYTES = 4096
ONE_CLICK = ("List-Unsubscribe", "One-Click")

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _page(title: str, body: str) -> bytes:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>\n"
        f'<body style="font-family:sans-serif;max-width:32em;margin:4em auto;padding:0 1em">\n'
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    ).encode()


ASK = _page(
    "Unsubscribe",
    "<p>Press the button to get no more emails from us.</p>\n"
    f'<form method="post"><input type="hidden" name="{ONE_CLICK[0]}" value="{ONE_CLICK[1]}">'
    '<button type="submit">Unsubscribe</button></form>',
)
DONE = _page("You are unsubscribed", "<p>You will get no more emails from us.</p>")
NOT_FOUND = _page("Not found", "<p>This unsubscribe link is not valid. Copy the whole link from the email.</p>")
BAD_FORM = _page("Not understood", "<p>Use the Unsubscribe button of this page.</p>")
TOO_LARGE = _page("Too large", "<p>Use the Unsubscribe button of this page.</p>")
NOT_ALLOWED = _page("Not allowed", "<p>Open the link, then use the Unsubscribe button.</p>")


def unsubscribe_app(engine: Engine, clock: Clock, key: SecretStr | None) -> Wsgi:
    """The WSGI app of /unsubscribe/<token> (bot/slack/http.py routes that path to it)."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def answer(status: str, page: bytes, *headers: tuple[str, str]) -> list[bytes]:
            start_response(
                status,
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(page))),
                    ("Cache-Control", "no-store"),
                    ("Referrer-Policy", "no-referrer"),  # the token is in the URL
                    ("X-Robots-Tag", "noindex"),
                    *headers,
                ],
            )
            return [page]

        method = environ.get("REQUEST_METHOD", "GET")
        person_id = unsubscribe.person_of(environ.get("PATH_INFO", "").removeprefix(unsubscribe.PATH), key)
        if method not in ("GET", "HEAD", "POST"):
            return answer("405 Method Not Allowed", NOT_ALLOWED, ("Allow", "GET, HEAD, POST"))
        if person_id is None:
            return answer("404 Not Found", NOT_FOUND)
        if method != "POST":
            return answer("200 OK", ASK)
        form = environ["wsgi.input"].read(MAX_FORM_BYTES + 1)
        if len(form) > MAX_FORM_BYTES:
            return answer("413 Content Too Large", TOO_LARGE)
        if not one_click(environ.get("CONTENT_TYPE", ""), form):
            return answer("400 Bad Request", BAD_FORM)
        with session_scope(engine) as session:
            person = unsubscribe.unsubscribe(session, person_id, clock.now())
        if person is None:  # a real token of a person since removed
            return answer("404 Not Found", NOT_FOUND)
        log.info("person %s unsubscribed", person_id)  # by id: no address in the log
        return answer("200 OK", DONE)

    return application


def one_click(content_type: str, form: bytes) -> bool:
    """Whether a POST body is the form `List-Unsubscribe=One-Click` (urlencoded or multipart)."""
    if content_type.lower().startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace") + form
        )
        if not isinstance(message, EmailMessage) or not message.is_multipart():
            return False
        return any(
            part.get_param("name", header="content-disposition") == ONE_CLICK[0]
            and part.get_payload(decode=True).strip() == ONE_CLICK[1].encode()  # type: ignore[union-attr]  # a form field's part is not multipart: its payload is bytes
            for part in message.iter_parts()
        )
    fields = parse_qs(form.decode("ascii", "replace"))
    return fields.get(ONE_CLICK[0]) == [ONE_CLICK[1]]
