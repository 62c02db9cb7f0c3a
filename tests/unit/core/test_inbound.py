"""What came back, as mail.md's Listening table says: bounces, auto-replies, unsubscribes, replies."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from zoneinfo import ZoneInfo

import pytest

from bot.core.inbound import InboundKind, back_from_absence, classify, company_domain
from tests.support import inbound_samples as samples

RECEIVED = dt.datetime(2026, 12, 2, 9, 15, tzinfo=dt.UTC)  # a Wednesday
OURS = "<175.1@seller.example>"


def verdict(raw: bytes, received: dt.datetime = RECEIVED):
    """As the watcher reads it (compat32), and the same with the modern policy."""
    found = classify(email.message_from_bytes(raw, policy=email.policy.compat32), received)
    assert classify(email.message_from_bytes(raw, policy=email.policy.default), received) == found
    return found


@pytest.mark.parametrize(
    "raw, excerpt",
    [
        (samples.gmail_reply("Ada <ada@engines.example>", OURS), "Yes, let's talk on Thursday.\n\nAda"),
        (samples.outlook_reply("bob@builders.example", OURS), "Thanks Rita, please send the demo video."),
        (samples.apple_mail_reply("ada@engines.example", OURS), "Sounds good. Call me Friday?"),
    ],
    ids=["gmail", "outlook", "apple-mail"],
)
def test_replies_as_clients_write_them_are_replies_with_their_first_lines_and_no_quoted_history(raw, excerpt):
    found = verdict(raw)
    assert found.kind is InboundKind.REPLY
    assert found.excerpt == excerpt
    assert OURS in found.references


@pytest.mark.parametrize(
    "raw, return_on",
    [
        (
            samples.gmail_out_of_office(
                "ada@engines.example", OURS, "I'm out of the office until January 15, 2027 with limited access."
            ),
            dt.date(2027, 1, 15),
        ),
        (
            samples.microsoft365_out_of_office(
                "bob@builders.example",
                OURS,
                "Ich bin bis zum 18.12.2026 nicht im Büro.",
                "Automatische Antwort: A quick question",
            ),
            dt.date(2026, 12, 18),
        ),
        (
            samples.microsoft365_out_of_office(
                "bob@builders.example",
                OURS,
                "Je suis absent jusqu'au lundi 4 janvier 2027.",
                "Réponse automatique : A quick question",
            ),
            dt.date(2027, 1, 4),
        ),
        (
            samples.sieve_vacation("ada@engines.example", OURS, "Estaré fuera hasta el 20 de diciembre."),
            dt.date(2026, 12, 20),
        ),
        (
            samples.sieve_vacation("ada@engines.example", OURS, "Jag är tillbaka den 7 januari.", "Frånvaro"),
            dt.date(2027, 1, 7),
        ),
        (
            samples.sieve_vacation(
                "ada@engines.example", OURS, "Ik ben afwezig tot en met 21 december 2026.", "Afwezig"
            ),
            dt.date(2026, 12, 21),
        ),
        (
            samples.microsoft365_out_of_office(
                "bob@builders.example", OURS, "I am travelling with limited access to email."
            ),
            None,
        ),
        (
            samples.gmail_out_of_office("ada@engines.example", OURS, "On parental leave until 1 June 2027."),
            None,
        ),  # beyond 60 days
    ],
    ids=["gmail-en", "m365-de", "m365-fr", "sieve-es", "sieve-sv", "sieve-nl", "no-date", "too-far"],
)
def test_out_of_office_is_an_auto_reply_with_the_return_date_it_names_within_60_days(raw, return_on):
    found = verdict(raw)
    assert found.kind is InboundKind.AUTO_REPLY
    assert found.return_on == return_on


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-generated",
        "X-Autoreply: yes",
        "X-Autorespond: yes",
        "Precedence: junk",
        "Precedence: auto_reply",
    ],
)
def test_auto_reply_headers_make_an_auto_reply_and_auto_submitted_no_does_not(header):
    raw = samples.plain_reply("ada@engines.example", "Thanks for your message.", OURS)
    assert verdict(raw.replace(b"MIME-Version", header.encode() + b"\r\nMIME-Version")).kind is InboundKind.AUTO_REPLY
    no = raw.replace(b"MIME-Version", b"Auto-Submitted: no\r\nMIME-Version")
    assert verdict(no).kind is InboundKind.REPLY


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: hello",
        "Out of Office: hello",
        "Abwesenheitsnotiz: hello",
        "Frånvaro: hej",
        "Réponse automatique : bonjour",
        "Respuesta automática: hola",
        "Afwezig: hallo",
    ],
)
def test_subjects_servers_use_for_automatic_replies_make_an_auto_reply(subject):
    assert (
        verdict(samples.plain_reply("ada@engines.example", "Away.", OURS, subject=subject)).kind
        is InboundKind.AUTO_REPLY
    )


@pytest.mark.parametrize(
    "raw, kind, status, to",
    [
        (samples.postfix_bounce("ada@engines.example", OURS), InboundKind.BOUNCE, "5.1.1", "ada@engines.example"),
        (
            samples.postfix_bounce("ada@engines.example", OURS, "4.4.1", "delayed"),
            InboundKind.DELAYED,
            "4.4.1",
            "ada@engines.example",
        ),
        (samples.exchange_bounce("bob@builders.example", OURS), InboundKind.BOUNCE, "5.1.1", "bob@builders.example"),
        (samples.gmail_bounce("ada@engines.example", OURS), InboundKind.BOUNCE, "5.1.1", "ada@engines.example"),
        (
            samples.gmail_bounce("ada@engines.example", OURS, delayed=True),
            InboundKind.DELAYED,
            "4.4.1",
            "ada@engines.example",
        ),
    ],
    ids=["postfix", "postfix-delayed", "exchange", "gmail", "gmail-delayed"],
)
def test_bounces_name_their_status_the_address_and_the_message_id_of_the_email_that_bounced(raw, kind, status, to):
    found = verdict(raw)
    assert found.kind is kind
    assert found.status is not None and found.status.startswith(status)
    assert found.bounced_to == (to,)
    assert found.bounced_ids == (OURS,)


def test_a_reply_quoting_a_bounce_is_still_a_reply():
    raw = samples.plain_reply(
        "ada@engines.example",
        "Your last email said: 550 5.1.1 user unknown. Odd!",
        OURS,
        subject="Re: Undeliverable mail?",
    )
    assert verdict(raw).kind is InboundKind.REPLY


@pytest.mark.parametrize(
    "first_line",
    [
        "Unsubscribe",
        "remove me",
        "STOP",
        "Bitte austragen!",
        "Désabonner",
        "Darme de baja",
        "Avregistrera mig",
        "Uitschrijven.",
    ],
)
def test_a_first_line_that_is_only_a_request_to_stop_is_an_unsubscribe(first_line):
    raw = samples.plain_reply("ada@engines.example", f"{first_line}\n\nOn Wed, Rita wrote:\n> Hi", OURS)
    assert verdict(raw).kind is InboundKind.UNSUBSCRIBE


def test_a_first_line_that_says_more_than_stop_is_a_reply():
    assert (
        verdict(samples.plain_reply("ada@engines.example", "Stop by our booth next week?", OURS)).kind
        is InboundKind.REPLY
    )


def test_a_mailing_list_message_is_not_a_reply():
    assert verdict(samples.mailing_list("ada@engines.example")).kind is InboundKind.LIST


def test_an_absence_ends_on_the_morning_of_the_first_working_day_after_the_return_date():
    stockholm = ZoneInfo("Europe/Stockholm")
    assert back_from_absence(dt.date(2026, 12, 18), stockholm) == dt.datetime(
        2026, 12, 21, 8, 0, tzinfo=dt.UTC
    )  # Fri -> Mon 09:00
    assert back_from_absence(dt.date(2026, 12, 15), stockholm) == dt.datetime(2026, 12, 16, 8, 0, tzinfo=dt.UTC)


def test_free_mail_domains_are_nobodys_company():
    assert company_domain("ada@engines.example") == "engines.example"
    assert company_domain("ada@gmail.com") is None
    assert company_domain("bob@Outlook.com") is None


def test_an_encoded_subject_is_read_decoded():
    raw = samples.plain_reply(
        "bob@builders.example", "Je suis absent.", OURS, subject="=?utf-8?q?R=C3=A9ponse_automatique_:_bonjour?="
    )
    found = verdict(raw)
    assert (found.kind, found.subject) == (InboundKind.AUTO_REPLY, "Réponse automatique : bonjour")
