"""Mail transports against a real SMTP server: what arrives, and how each failure is told apart."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from bot.delivery.mail import compose_email
from bot.delivery.ports import DeliveryError, Limits
from bot.delivery.routes import relay_for, smtputf8_refusal
from bot.delivery.transports import OutboxTransport, SmtpTransport, offers_smtputf8
from bot.services.drafts import Draft
from bot.settings import Settings, load_settings
from tests.support.smtp_sink import SilentServer, SmtpSink, refused_port

NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)


def message(to: str = "pat@buyer.example", body: str = "Hi Pat,\n.\n.hidden line\nBest", n: int = 1):
    draft = Draft(
        send_id=n,
        to=f"Pat Buyer <{to}>",
        to_email=to,
        sender="Rita Rep <rita@seller.example>",
        sender_email="rita@seller.example",
        subject="Hello Pat",
        body=body,
        full_body=body,
    )
    return compose_email(draft, mailbox="relay", message_id=f"<{n}.test@seller.example>", date=NOW)


def test_emails_arrive_with_their_envelope_over_one_connection(sink: SmtpSink):
    transport = SmtpTransport(sink.url)
    transport.send(message(n=1))
    transport.send(message("sam@buyer.example", n=2))
    transport.close()

    assert [(r.mail_from, r.rcpt_tos) for r in sink.messages] == [
        ("rita@seller.example", ["pat@buyer.example"]),
        ("rita@seller.example", ["sam@buyer.example"]),
    ]
    text = sink.messages[0].message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Hi Pat,\n.\n.hidden line\n"), "lines starting with a dot survive"


def test_a_connection_the_server_closed_while_idle_is_opened_again(sink: SmtpSink):
    transport = SmtpTransport(sink.url)
    transport.send(message(n=1))
    transport._smtp.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]  # as a server timing out an idle client

    transport.send(message(n=2))

    assert sorted(sink.counts()) == ["<1.test@seller.example>", "<2.test@seller.example>"]


def test_a_refused_connection_is_retried_later():
    transport = SmtpTransport(f"smtp://127.0.0.1:{refused_port()}")

    with pytest.raises(DeliveryError) as error:
        transport.send(message())

    assert error.value.retry and not error.value.uncertain
    assert "connection refused" in error.value.reason


def test_a_server_that_does_not_answer_in_time_is_retried_later():
    with SilentServer() as server:
        transport = SmtpTransport(f"smtp://127.0.0.1:{server.port}", timeout=0.2)
        with pytest.raises(DeliveryError) as error:
            transport.send(message())

    assert error.value.retry and not error.value.uncertain
    assert "timed out" in error.value.reason


def test_a_4xx_reply_is_retried_later_and_the_connection_stays_usable(sink: SmtpSink):
    sink.reply_to("busy@buyer.example", "451 4.2.1 Mailbox busy, try later")
    transport = SmtpTransport(sink.url)

    with pytest.raises(DeliveryError) as error:
        transport.send(message("busy@buyer.example"))
    transport.send(message(n=2))

    assert error.value.retry and error.value.reason == "451 4.2.1 Mailbox busy, try later"
    assert [r.rcpt_tos for r in sink.messages] == [["pat@buyer.example"]]


def test_a_5xx_reply_fails_at_once(sink: SmtpSink):
    sink.reply_to("gone@buyer.example", "550 5.1.1 No such user")

    with pytest.raises(DeliveryError) as error:
        SmtpTransport(sink.url).send(message("gone@buyer.example"))

    assert not error.value.retry and not error.value.uncertain
    assert error.value.reason == "550 5.1.1 No such user"


def test_a_connection_dropped_after_the_body_is_uncertain(sink: SmtpSink):
    sink.hang_up_after_data("pat@buyer.example")

    with pytest.raises(DeliveryError) as error:
        SmtpTransport(sink.url).send(message())

    assert error.value.uncertain and not error.value.retry
    assert "may or may not" in error.value.reason
    assert len(sink.dropped) == 1


def test_without_smtp_url_emails_are_written_to_the_outbox_folder(tmp_path: Path):
    route = relay_for(load_settings(smtp_url=None, outbox_dir=str(tmp_path / "outbox"))).relay

    route.connect().send(message())

    [written] = list((tmp_path / "outbox").glob("*.eml"))
    assert written.name == "1.test_seller.example.eml"
    assert b"Subject: Hello Pat\r\n" in written.read_bytes()


def test_with_smtp_url_emails_go_to_the_server(sink: SmtpSink):
    route = relay_for(load_settings(smtp_url=sink.url, smtp_max_connections=4, smtp_per_minute=30)).relay
    connection = route.connect()
    connection.send(message())

    assert isinstance(connection, SmtpTransport) and len(sink.messages) == 1
    assert (route.key, route.limits) == ("relay", Limits(per_minute=30, per_day=None, connections=4))
    connection.close()


def test_an_unwritable_outbox_is_retried_later(tmp_path: Path):
    (tmp_path / "outbox").write_text("a file, not a folder")

    with pytest.raises(DeliveryError) as error:
        OutboxTransport(tmp_path / "outbox").send(message())

    assert error.value.retry


# --- addresses with non-ASCII before the @ (SMTPUTF8, RFC 6531) ---------------------


@pytest.fixture
def utf8_sink() -> Iterator[SmtpSink]:
    with SmtpSink(smtputf8=True) as sink:
        yield sink


@pytest.fixture(autouse=True)
def new_relays() -> None:
    """Each test's server is a relay the bot has not asked before (its answer is kept per URL)."""
    offers_smtputf8.cache_clear()


def test_an_address_with_non_ascii_before_the_at_goes_out_with_smtputf8(utf8_sink: SmtpSink):
    transport = SmtpTransport(utf8_sink.url)
    transport.send(message("josé@buyer.example", n=1))
    transport.send(message(n=2))
    transport.close()

    unicode, ascii = utf8_sink.messages
    assert (unicode.rcpt_tos, ascii.rcpt_tos) == (["josé@buyer.example"], ["pat@buyer.example"])
    assert "SMTPUTF8" in unicode.mail_options and "SMTPUTF8" not in ascii.mail_options
    received = email.message_from_string(unicode.data.decode("utf-8"), policy=email.policy.SMTPUTF8)
    assert received["To"].addresses[0].addr_spec == "josé@buyer.example"


def test_a_server_without_smtputf8_fails_such_an_email_at_once_and_takes_the_rest(sink: SmtpSink):
    transport = SmtpTransport(sink.url)

    with pytest.raises(DeliveryError) as error:
        transport.send(message("josé@buyer.example", n=1))
    transport.send(message(n=2))

    assert not error.value.retry and not error.value.uncertain
    assert error.value.reason == (
        "the mail server does not take addresses with non-ASCII characters before the @ (it offers no SMTPUTF8): "
        "josé@buyer.example"
    )
    assert [r.rcpt_tos for r in sink.messages] == [["pat@buyer.example"]]


def test_whether_such_addresses_can_be_emailed_is_asked_of_the_relay_once(session: Session, tmp_path: Path):
    def refusal(settings: Settings) -> str | None:
        return smtputf8_refusal(settings, session, "U0NOMAILBOX")  # a rep without a mailbox of their own

    assert refusal(load_settings(smtp_url=None, outbox_dir=str(tmp_path))) is None  # a file takes any address
    with SmtpSink(smtputf8=True) as offering:
        assert refusal(load_settings(smtp_url=offering.url)) is None
    assert refusal(load_settings(smtp_url=offering.url)) is None, "the answer is kept"
    with SmtpSink() as plain:
        assert refusal(load_settings(smtp_url=plain.url)) == (
            "the mail server (SMTP_URL) does not take addresses with non-ASCII characters before the @ (it offers no SMTPUTF8)"
        )
    down = load_settings(smtp_url=f"smtp://127.0.0.1:{refused_port()}")
    assert refusal(down) == (
        "the bot could not ask the mail server (SMTP_URL) whether it takes addresses with non-ASCII characters before the @ "
        "(could not connect to 127.0.0.1:" + down.smtp_url.rsplit(":", 1)[1] + ": connection refused); try again later"
    )
