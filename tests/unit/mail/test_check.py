"""Logging in to a mailbox's servers, against real ones: aiosmtpd (AUTH over STARTTLS) and Dovecot."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import pytest

from bot.delivery.ports import DeliveryError, Email
from bot.delivery.transports import SmtpTransport
from bot.mail.check import ANSWER_LENGTH, LoginFailed, check_imap, check_smtp
from bot.mail.urls import parse_imap_url, parse_smtp_url
from tests.support.dovecot import Dovecot
from tests.support.smtp_login import REFUSAL, SmtpLogin
from tests.support.smtp_sink import SilentServer, refused_port
from tests.support.tls import Certificate
from tests.unit.mail.conftest import PASSWORD, USER

ME = "pat%40seller.example"


def smtp_url(server: SmtpLogin, password: str = PASSWORD, query: str = "?starttls=true&timeout=5") -> str:
    return f"smtp://{ME}:{password.replace(' ', '%20')}@127.0.0.1:{server.port}{query}"


def test_smtp_login_over_starttls_is_accepted(smtp_server: SmtpLogin):
    check_smtp(parse_smtp_url(smtp_url(smtp_server)))

    assert smtp_server.logins == [USER]


def test_a_refused_smtp_login_gives_the_servers_words_and_never_the_password(smtp_server: SmtpLogin):
    with pytest.raises(LoginFailed) as error:
        check_smtp(parse_smtp_url(smtp_url(smtp_server, password="wrong guess")))

    assert str(error.value) == f"SMTP login to 127.0.0.1:{smtp_server.port} refused: {REFUSAL}"
    assert smtp_server.logins == []


def test_a_server_that_echoes_the_password_has_it_blotted_out_and_a_long_answer_is_clipped(trusted: Certificate):
    with SmtpLogin(trusted, users={}, refusal=f"535 5.7.8 No such login {PASSWORD} " + "x" * 1000) as server:
        with pytest.raises(LoginFailed) as error:
            check_smtp(parse_smtp_url(smtp_url(server)))

    message = str(error.value)
    assert PASSWORD not in message and "No such login •••" in message
    assert message.endswith("…") and len(message) < ANSWER_LENGTH + 60


def test_without_starttls_a_server_that_offers_auth_only_over_tls_says_so(smtp_server: SmtpLogin):
    with pytest.raises(
        LoginFailed, match=r"AUTH extension not supported by server\. \(does it need \?starttls=true\?\)"
    ):
        check_smtp(parse_smtp_url(smtp_url(smtp_server, query="?timeout=5")))


def test_a_certificate_nobody_vouches_for_is_refused(cert: Certificate):
    # No SSL_CERT_FILE here: the self-signed certificate is not trusted.
    with SmtpLogin(cert, users={USER: PASSWORD}) as server:
        with pytest.raises(LoginFailed, match="could not reach the SMTP server .*certificate verify failed"):
            check_smtp(parse_smtp_url(smtp_url(server)))
        assert server.logins == []


def test_an_smtp_server_that_is_down_or_silent_is_named_with_what_went_wrong():
    port = refused_port()
    with pytest.raises(LoginFailed, match=f"could not reach the SMTP server 127.0.0.1:{port}: connection refused"):
        check_smtp(parse_smtp_url(f"smtp://{ME}:pw@127.0.0.1:{port}"))
    with SilentServer() as silent, pytest.raises(LoginFailed, match="timed out"):
        check_smtp(parse_smtp_url(f"smtp://{ME}:pw@127.0.0.1:{silent.port}?timeout=0.2"))


@pytest.mark.parametrize("tls", ["imap plain", "imap starttls", "imaps"])
def test_imap_login_is_accepted(imap_server: Dovecot, trusted: Certificate, tls: str):
    url = {
        "imap plain": f"imap://{ME}@127.0.0.1:{imap_server.port}?timeout=5",
        "imap starttls": f"imap://{ME}@127.0.0.1:{imap_server.port}?starttls=true&timeout=5",
        "imaps": f"imaps://{ME}@127.0.0.1:{imap_server.tls_port}?timeout=5",
    }[tls]

    check_imap(parse_imap_url(url).with_password(PASSWORD))

    assert imap_server.logged(f"Login: user=<{USER}>")


def test_a_refused_imap_login_gives_the_servers_words_and_never_the_password(
    imap_server: Dovecot, trusted: Certificate
):
    url = parse_imap_url(f"imaps://{ME}@127.0.0.1:{imap_server.tls_port}?timeout=5").with_password("wrong guess")

    with pytest.raises(LoginFailed) as error:
        check_imap(url)

    assert (
        str(error.value)
        == f"IMAP login to 127.0.0.1:{imap_server.tls_port} refused: [AUTHENTICATIONFAILED] Authentication failed."
    )


def test_an_imap_server_that_is_down_is_named():
    port = refused_port()
    with pytest.raises(LoginFailed, match=f"could not reach the IMAP server 127.0.0.1:{port}: connection refused"):
        check_imap(parse_imap_url(f"imap://{ME}@127.0.0.1:{port}").with_password(PASSWORD))


def test_the_relay_transport_logs_in_the_same_way_and_keeps_the_password_out_of_its_errors(trusted: Certificate):
    email = Email(1, "relay", USER, ["pat@buyer.example"], b"Subject: Hi\r\n\r\nHello\r\n", "<1@x>", "Hi", "Hello")
    with SmtpLogin(trusted, users={USER: PASSWORD}, refusal="535 5.7.8 No such login wrong guess") as server:
        transport = SmtpTransport(smtp_url(server))
        transport.send(email)
        transport.close()
        with pytest.raises(DeliveryError) as error:
            SmtpTransport(smtp_url(server, password="wrong guess")).send(email)

    assert server.logins == [USER] and len(server.messages) == 1
    assert error.value.refused_login and not error.value.retry, "the mailbox waits; the email uses no retry"
    assert error.value.reason == "the mail server refused the login: 535 5.7.8 No such login •••"


def test_connections_opening_at_once_read_the_trusted_certificates_once(
    smtp_server: SmtpLogin, trusted: Certificate, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """A lane opens its connections together: one reads the certificates, the others wait for it."""
    fresh = tmp_path / "trusted.pem"  # certificates not read yet in this process
    fresh.write_bytes(Path(trusted.cert).read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(fresh))
    reads = []
    create = ssl.create_default_context

    def counted(*args: object, **kwargs: object) -> ssl.SSLContext:
        reads.append(1)
        return create(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counted)
    server = parse_smtp_url(smtp_url(smtp_server))
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def connect() -> None:
        start.wait()
        try:
            check_smtp(server)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=connect) for _ in range(8)]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]

    assert errors == [] and len(reads) == 1
