"""Emails as they go over the wire: headers, encodings, threading, HTML, CRLF."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import Session

from bot.clock import FixedClock
from bot.delivery.mail import NotSendable, compose_email, new_message_id, sendable
from bot.delivery.ports import Email
from bot.services import progress
from bot.services.drafts import draft_for
from bot.slack.blocks.tasks import gmail_url, outlook_url
from bot.store.models import Send
from tests.support.due_emails import due_email
from tests.support.factories import make_campaign, make_rep


def email_for(session: Session, send: Send, now: dt.datetime) -> Email:
    """The send's email as the scheduler composes it: draft, check, compose."""
    draft = draft_for(session, send)
    sendable(draft)
    assert draft.sender_email is not None
    return compose_email(draft, mailbox="relay", message_id=new_message_id(draft.sender_email), date=now)


def parsed(outgoing: Email) -> EmailMessage:
    """The message as a receiving mail client reads it."""
    return email.message_from_bytes(outgoing.data, policy=email.policy.default)  # type: ignore[return-value]


def text_of(message: EmailMessage, kind: str) -> str:
    """A part's text as a mail client shows it (line ends as the platform's)."""
    return message.get_body((kind,)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]


def test_an_email_comes_from_its_rep_to_its_person_with_an_id_in_the_reps_domain(session: Session, clock: FixedClock):
    send = due_email(session, clock.now(), "pat@buyer.example", first_name="Pat", last_name="Buyer")

    outgoing = email_for(session, send, clock.now())
    received = parsed(outgoing)

    assert received["From"].addresses[0].display_name == "Rita Rep"
    assert received["From"].addresses[0].addr_spec == "rita@seller.example"
    assert str(received["To"]) == "Pat Buyer <pat@buyer.example>"
    assert received["Subject"] == "Hello Pat"
    assert received["Date"].datetime == clock.now()
    assert received["Message-ID"] == outgoing.message_id
    assert outgoing.message_id.endswith("@seller.example>")
    assert (outgoing.sender, outgoing.recipients) == ("rita@seller.example", ["pat@buyer.example"])


def test_non_ascii_names_and_subjects_are_encoded_and_read_back_intact(session: Session, clock: FixedClock):
    make_rep(session, name="Åsa Öberg, Säljare", email="asa@seller.example")
    campaign = make_campaign(
        session,
        [
            {
                "day": 1,
                "send": "at_time",
                "time": "09:00",
                "subject": "Hej {{ first_name }} – ett förslag som är långt nog för att behöva vikas på flera rader",
                "body": "Hej!",
            }
        ],
    )
    send = due_email(session, clock.now(), "zoe@buyer.example", campaign=campaign, first_name="Zoë", last_name="Müller")

    outgoing = email_for(session, send, clock.now())
    raw, received = outgoing.data, parsed(outgoing)

    assert raw.isascii(), "headers and bodies are 7-bit on the wire"
    assert b"=?utf-8?" in raw
    assert received["From"].addresses[0].display_name == "Åsa Öberg, Säljare"
    assert received["To"].addresses[0].display_name == "Zoë Müller"
    assert received["Subject"] == "Hej Zoë – ett förslag som är långt nog för att behöva vikas på flera rader"
    assert all(len(line) <= 78 for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")), "long headers are folded"


def test_lines_end_in_crlf_on_the_wire(session: Session, clock: FixedClock):
    send = due_email(session, clock.now())

    raw = email_for(session, send, clock.now()).data

    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_plain_text_and_html_alternatives_with_the_text_escaped(session: Session, clock: FixedClock):
    campaign = make_campaign(
        session,
        [
            {
                "day": 1,
                "send": "at_time",
                "time": "09:00",
                "subject": "Hi",
                "body": "Hi {{ first_name }},\n\nis <b>this</b> & that for you?\nBest",
            }
        ],
    )
    send = due_email(session, clock.now(), campaign=campaign, first_name="Pat")

    received = parsed(email_for(session, send, clock.now()))

    assert received.get_content_type() == "multipart/alternative"
    assert text_of(received, "plain").rstrip() == "Hi Pat,\n\nis <b>this</b> & that for you?\nBest"
    html = text_of(received, "html")
    assert "<p>Hi Pat,</p>" in html
    assert "is &lt;b&gt;this&lt;/b&gt; &amp; that for you?<br>\nBest" in html


def test_a_thread_step_replies_to_the_email_before_it_quoting_it(session: Session, clock: FixedClock):
    first = due_email(session, clock.now(), first_name="Pat")
    first_message = email_for(session, first, clock.now())
    first.message_id, first.subject, first.body = first_message.message_id, "Hello Pat", "Hi Pat"
    follow_up = progress.complete(session, first, sent=True, at=clock.now())
    session.commit()
    assert follow_up is not None

    received = parsed(email_for(session, follow_up, clock.advance(days=2)))

    assert received["Subject"] == "Re: Hello Pat"
    assert received["In-Reply-To"] == first_message.message_id
    assert received["References"] == first_message.message_id
    text = text_of(received, "plain")
    assert text.startswith(
        "Following up\n\nOn Wed, 02 Dec 2026 at 10:00, Rita Rep <rita@seller.example> wrote:\n> Hi Pat"
    )
    html = text_of(received, "html")
    assert "<p>On Wed, 02 Dec 2026 at 10:00, Rita Rep &lt;rita@seller.example&gt; wrote:</p>" in html
    assert "><p>Hi Pat</p></blockquote>" in html


def test_an_email_missing_a_field_becomes_a_task_rather_than_going_out_half_filled(session: Session, clock: FixedClock):
    campaign = make_campaign(
        session, [{"day": 1, "send": "at_time", "time": "09:00", "subject": "Hi", "body": "How is {{ company }}?"}]
    )
    send = due_email(session, clock.now(), campaign=campaign, company="")

    with pytest.raises(NotSendable) as problem:
        email_for(session, send, clock.now())

    assert problem.value.task and problem.value.reason == "no value for company"


def test_a_rep_without_an_email_address_cannot_send(session: Session, clock: FixedClock):
    make_rep(session, email=None)
    send = due_email(session, clock.now())

    with pytest.raises(NotSendable) as problem:
        email_for(session, send, clock.now())

    assert not problem.value.task and "no email address" in problem.value.reason


def thread_reply(session: Session, clock: FixedClock, first: Send) -> Send:
    """The thread step after `first`, once `first` went out."""
    first_message = email_for(session, first, clock.now())
    first.message_id, first.subject, first.body = first_message.message_id, "Hello Pat", "Hi Pat"
    follow_up = progress.complete(session, first, sent=True, at=clock.now())
    session.commit()
    assert follow_up is not None
    return follow_up


def test_a_line_starting_with_from_goes_out_unchanged(session: Session, clock: FixedClock):
    campaign = make_campaign(
        session,
        [
            {
                "day": 1,
                "send": "at_time",
                "time": "09:00",
                "subject": "Hi",
                "body": "Hi Pat,\nFrom what I hear, you grow.\n\nFrom Rita",
            }
        ],
    )
    send = due_email(session, clock.now(), campaign=campaign)

    received = parsed(email_for(session, send, clock.now()))

    assert text_of(received, "plain").rstrip() == "Hi Pat,\nFrom what I hear, you grow.\n\nFrom Rita"
    assert "<p>Hi Pat,<br>\nFrom what I hear, you grow.</p>\n<p>From Rita</p>" in text_of(received, "html")


def test_a_reply_quotes_a_rep_with_a_non_ascii_name_by_name_everywhere(session: Session, clock: FixedClock):
    make_rep(session, name="Åsa Öberg", email="asa@seller.example")
    follow_up = thread_reply(session, clock, due_email(session, clock.now()))

    outgoing = email_for(session, follow_up, clock.advance(days=2))
    received = parsed(outgoing)

    attribution = "On Wed, 02 Dec 2026 at 10:00, Åsa Öberg <asa@seller.example> wrote:"
    assert f"\n\n{attribution}\n> Hi Pat" in text_of(received, "plain")
    assert f"<p>{html.escape(attribution)}</p>" in text_of(received, "html")
    # The Slack preview of a task shows the draft's full body; the compose links carry it.
    assert attribution in outgoing.draft.full_body
    for url in (gmail_url(outgoing.draft), outlook_url(outgoing.draft)):
        assert attribution in parse_qs(urlsplit(url).query)["body"][0]


def test_the_attribution_names_the_rep_who_sent_the_quoted_email(session: Session, clock: FixedClock):
    follow_up = thread_reply(session, clock, due_email(session, clock.now()))
    make_rep(session, "U0BOB", name="Bob Other", email="bob@seller.example")
    follow_up.rep_id = "U0BOB"  # someone else sends the reply
    session.commit()

    received = parsed(email_for(session, follow_up, clock.advance(days=2)))

    assert received["From"].addresses[0].addr_spec == "bob@seller.example"
    assert "Rita Rep <rita@seller.example> wrote:\n> Hi Pat" in text_of(received, "plain")


@pytest.mark.parametrize("subject", ["x" * 3000, " ".join(["word"] * 600), "Ö" * 1000, "Re: " + "a" * 997 + " tail"])
def test_a_subject_of_any_length_makes_a_valid_message(session: Session, clock: FixedClock, subject: str):
    campaign = make_campaign(
        session, [{"day": 1, "send": "at_time", "time": "09:00", "subject": subject, "body": "Hi"}]
    )
    send = due_email(session, clock.now(), campaign=campaign)

    head = email_for(session, send, clock.now()).data.split(b"\r\n\r\n", 1)[0]

    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    assert parsed(message)["Subject"] == subject


def test_line_breaks_in_a_subject_or_a_name_never_make_a_header_of_their_own(session: Session, clock: FixedClock):
    make_rep(session, name='Rita "R" Rep,\r\nBcc: eve@evil.example', email="rita@seller.example")
    campaign = make_campaign(
        session, [{"day": 1, "send": "at_time", "time": "09:00", "subject": "Hi {{ company }}", "body": "Hi"}]
    )
    send = due_email(session, clock.now(), campaign=campaign, first_name="Pat <x@y>", company="Acme\nX-Evil: 1")

    received = parsed(email_for(session, send, clock.now()))

    assert received["Bcc"] is None and received["X-Evil"] is None
    assert received["Subject"] == "Hi Acme X-Evil: 1"
    assert received["From"].addresses[0].display_name == 'Rita "R" Rep, Bcc: eve@evil.example'
    assert received["From"].addresses[0].addr_spec == "rita@seller.example"
    assert received["To"].addresses[0].display_name == "Pat <x@y> Buyer"
    assert received["To"].addresses[0].addr_spec == "pat@buyer.example"


def test_an_address_with_non_ascii_before_the_at_makes_an_smtputf8_message(session: Session, clock: FixedClock):
    make_rep(session, name="Åsa Öberg", email="asa@seller.example")
    send = due_email(session, clock.now(), "josé@buyer.example", first_name="José", last_name="")

    outgoing = email_for(session, send, clock.now())
    raw = outgoing.data
    received = email.message_from_string(raw.decode("utf-8"), policy=email.policy.SMTPUTF8)

    assert "To: José <josé@buyer.example>\r\n".encode() in raw
    assert received["To"].addresses[0].addr_spec == "josé@buyer.example"
    assert received["From"].addresses[0].display_name == "Åsa Öberg"
    assert (outgoing.wire.sender, outgoing.wire.recipients) == ("asa@seller.example", ["josé@buyer.example"])
