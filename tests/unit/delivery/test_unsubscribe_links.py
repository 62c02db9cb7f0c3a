"""Unsubscribe links on the wire: List-Unsubscribe headers, `{{ unsubscribe_url }}` and campaign footers."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlmodel import Session

from bot.clock import FixedClock
from bot.delivery.scheduler import Scheduler
from bot.services import tasks
from bot.services.unsubscribe import person_of
from bot.store.models import Campaign, Enrollment, Send
from tests.support.due_emails import due_email
from tests.support.factories import REP_ID, make_campaign, make_rep
from tests.support.sends import make_task
from tests.support.smtp_sink import SmtpSink

KEY = Fernet.generate_key().decode()
PUBLIC = "https://bot.example.com"
LINKED = {"public_url": PUBLIC, "secret_key": KEY}


def person_of_send(session: Session, send: Send) -> int:
    enrollment = session.get(Enrollment, send.enrollment_id)
    assert enrollment is not None
    return enrollment.person_id


def unsubscribe_links(message: EmailMessage) -> tuple[str, str]:
    """The https and mailto links of List-Unsubscribe (RFC 2369: each in angle brackets, comma-separated)."""
    value = str(message["List-Unsubscribe"])
    links = re.fullmatch(r"<([^<>\s]+)>,\s*<([^<>\s]+)>", value)
    assert links is not None, value
    return links.group(1), links.group(2)


def test_every_automatic_email_carries_one_click_list_unsubscribe_naming_its_person(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: Callable[..., Scheduler]
) -> None:
    sends = [due_email(session, clock.now(), f"p{n}@buyer.example") for n in range(2)]

    assert make_scheduler(**LINKED).tick().sent == 2

    for send, received in zip(sends, sorted(sink.messages, key=lambda r: r.rcpt_tos)):
        message = received.message
        https, mailto = unsubscribe_links(message)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = urlsplit(https)
        assert (url.scheme, url.netloc) == ("https", "bot.example.com") and url.path.startswith("/unsubscribe/")
        assert person_of(url.path.removeprefix("/unsubscribe/"), SecretStr(KEY)) == person_of_send(session, send)
        to, _, query = mailto.removeprefix("mailto:").partition("?")
        assert to == "rita@seller.example", "the rep's own address, where the bot reads replies"
        assert unquote(query) == f"subject=unsubscribe {url.path.removeprefix('/unsubscribe/')}"
        head = received.data.split(b"\r\n\r\n")[0].decode("ascii")
        assert f"\r\nList-Unsubscribe: <{https}>,\r\n <{mailto}>\r\n" in head, "folded between links, never inside one"


def test_an_email_the_rep_sends_with_the_send_button_carries_them_too(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: Callable[..., Scheduler]
) -> None:
    make_rep(session)
    task = make_task(session, due_at=clock.now())
    tasks.send_now(session, task.id, REP_ID, clock.now())  # type: ignore[arg-type]
    session.commit()

    assert make_scheduler(**LINKED).deliver([task.id]).sent == 1  # type: ignore[list-item]

    https, _ = unsubscribe_links(sink.messages[0].message)
    assert person_of(https.rpartition("/")[2], SecretStr(KEY)) == person_of_send(session, task)


def test_without_public_url_emails_carry_no_list_unsubscribe(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: Callable[..., Scheduler]
) -> None:
    due_email(session, clock.now(), "a@buyer.example")
    due_email(session, clock.now(), "b@buyer.example")

    make_scheduler(secret_key=KEY).tick()  # no PUBLIC_URL
    make_scheduler(public_url=PUBLIC).tick()  # no SECRET_KEY: nothing to sign with

    assert len(sink.messages) == 2
    assert [r.message["List-Unsubscribe"] for r in sink.messages] == [None, None]
    assert [r.message["List-Unsubscribe-Post"] for r in sink.messages] == [None, None]


FOOTER = "Acme Sales AB, Box 1, 111 11 Stockholm\nNo more emails from {{ sender.first_name }}: {{ unsubscribe_url }}"


def footer_campaign(session: Session) -> Campaign:
    campaign = make_campaign(
        session,
        [
            {
                "day": 1,
                "send": "at_time",
                "time": "09:00",
                "subject": "Hello {{ first_name }}",
                "body": "Hi {{ first_name }},\n\nshall we talk?",
            },
            {"day": 3, "send": "thread", "body": "Following up.\nOpt out: {{ unsubscribe_url }}"},
        ],
        name="With footer",
    )
    campaign.footer = FOOTER
    session.add(campaign)
    session.commit()
    return campaign


def test_the_footer_and_unsubscribe_url_render_in_both_parts_with_the_link(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: Callable[..., Scheduler]
) -> None:
    send = due_email(session, clock.now(), campaign=footer_campaign(session))
    scheduler = make_scheduler(**LINKED)
    scheduler.tick()
    clock.advance(days=2)
    scheduler.tick()

    first, follow_up = (received.message for received in sink.messages)
    https, _ = unsubscribe_links(first)
    plain = first.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert (
        plain
        == f"Hi Pat,\n\nshall we talk?\n\nAcme Sales AB, Box 1, 111 11 Stockholm\nNo more emails from Rita: {https}\n"
    )
    html = first.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Acme Sales AB, Box 1, 111 11 Stockholm" in html and f'<a href="{https}">{https}</a>' in html

    reply = follow_up.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    body, footer = (
        f"Following up.\nOpt out: {https}",
        f"Acme Sales AB, Box 1, 111 11 Stockholm\nNo more emails from Rita: {https}",
    )
    assert reply.startswith(f"{body}\n\n{footer}\n\nOn "), "the footer above the quote"
    assert reply.count("Acme Sales AB") == 1, "the quote holds what the rep wrote, not the footer again"
    session.expire_all()
    stored = session.get(Send, send.id)
    assert stored is not None and stored.body == "Hi Pat,\n\nshall we talk?", "a retry does not add the footer twice"


def test_without_public_url_the_unsubscribe_url_is_empty_and_the_email_still_goes(
    session: Session, clock: FixedClock, sink: SmtpSink, make_scheduler: Callable[..., Scheduler]
) -> None:
    due_email(session, clock.now(), campaign=footer_campaign(session))

    assert make_scheduler().tick().sent == 1

    plain = sink.messages[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert plain.replace("\r\n", "\n").endswith("No more emails from Rita: \n")
