"""Mail server URLs: one parser for SMTP_URL, a mailbox's SMTP and its IMAP."""

from __future__ import annotations

import pytest

from bot.delivery.transports import SmtpTransport
from bot.mail.urls import Security, parse_imap_url, parse_smtp_url
from bot.settings import SettingsError, load_settings


def test_smtp_urls_name_tls_starttls_and_credentials_without_showing_the_password():
    plain = parse_smtp_url("smtp://mail.example.com")
    tls = parse_smtp_url("smtps://user%40example.com:p%40ss@mail.example.com")
    starttls = parse_smtp_url("smtp://u:secret@mail.example.com:587?starttls=true&timeout=7")

    assert (plain.port, plain.security, plain.username, plain.password) == (25, Security.NONE, None, None)
    assert (tls.port, tls.security, tls.username, tls.password) == (465, Security.TLS, "user@example.com", "p@ss")
    assert (starttls.port, starttls.security, starttls.timeout) == (587, Security.STARTTLS, 7.0)
    assert "secret" not in repr(starttls) and "secret" not in starttls.shown()
    assert starttls.shown() == "smtp://u@mail.example.com:587?starttls=true"
    assert "secret" not in repr(SmtpTransport("smtp://u:secret@mail.example.com:587?starttls=true"))


def test_imap_urls_read_like_smtp_urls():
    assert (parse_imap_url("imaps://pat@imap.example.com").port, parse_imap_url("imaps://h").security) == (
        993,
        Security.TLS,
    )
    starttls = parse_imap_url("imap://pat%40seller.example@imap.example.com?starttls=1")
    assert (starttls.port, starttls.security, starttls.username, starttls.password) == (
        143,
        Security.STARTTLS,
        "pat@seller.example",
        None,
    )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("imap://mail.example.com", "must look like smtp://"),
        ("smtp://", "must look like smtp://"),
        ("smtp://mail.example.com:port", "must look like smtp://"),
        ("smtp://mail.example.com?timeout=soon", "timeout=soon is not a number"),
    ],
)
def test_a_malformed_smtp_url_says_what_it_should_look_like(url: str, words: str):
    with pytest.raises(ValueError, match=words):
        parse_smtp_url(url)


def test_a_malformed_smtp_url_setting_stops_start_up_naming_it():
    with pytest.raises(SettingsError, match=r"^SMTP_URL: must look like smtp://"):
        load_settings(smtp_url="smtp://")
