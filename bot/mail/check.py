"""Logging in to a mailbox's servers: SMTP (EHLO, TLS or STARTTLS, AUTH) and IMAP.

`open_smtp` is the one way the bot opens an SMTP connection (the transport uses it
too), `open_imap` the one way it opens IMAP. The checks answer a failed login with the
server's own words, clipped, and never with the password in them.

A mailbox connected over OAuth 2.0 logs in with XOAUTH2 (Google's and Microsoft's
SASL mechanism): its access token comes from `server.bearer`; a server that refuses it
gets one renewed token more (an access token may expire between two logins).
"""

from __future__ import annotations

import ast
import functools
import imaplib
import re
import smtplib
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.mail.urls import Security, ServerUrl

if TYPE_CHECKING:
    from imapclient import IMAPClient

ANSWER_LENGTH = 300


class LoginFailed(Exception):
    """A server refused the login or could not be reached; str() is safe to show."""


class TokenRefused(Exception):
    """The provider refused to renew a mailbox's access (consent revoked); str() is safe to show."""


class TokenUnavailable(Exception):
    """The provider's token endpoint could not be reached or answered oddly: try again later."""


def xoauth2(user: str, token: str) -> str:
    """The XOAUTH2 initial response, before base64 (smtplib and imapclient encode it)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def tls_context() -> ssl.SSLContext:
    """What every TLS connection checks the server with: the trusted certificates, read once.

    Reading them takes tens of milliseconds, too much for each connection and each
    poll; read again only when SSL_CERT_FILE or SSL_CERT_DIR names others. Read by
    one thread: the others (a lane's connections open at once) wait for it.
    """
    paths = ssl.get_default_verify_paths()
    with _TLS_READ:
        return _tls_context(paths)


_TLS_READ = threading.Lock()


@functools.cache
def _tls_context(paths: ssl.DefaultVerifyPaths) -> ssl.SSLContext:
    return ssl.create_default_context()


def open_smtp(server: ServerUrl) -> smtplib.SMTP:
    """A connection that said EHLO, secured itself as the URL says and logged in if it names a user."""
    if server.security is Security.TLS:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout, context=tls_context())
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
    try:
        smtp.ehlo()
        if server.security is Security.STARTTLS:
            smtp.starttls(context=tls_context())
            smtp.ehlo()
        if server.bearer is not None:
            _smtp_xoauth2(smtp, server.username or "", server.bearer)
        elif server.username:
            smtp.login(server.username, server.password or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


def _smtp_xoauth2(smtp: smtplib.SMTP, user: str, bearer: Callable[[str | None], str]) -> None:
    def auth(token: str) -> None:
        # A server that refuses sends a 334 challenge (its error, as JSON) and wants an empty answer.
        smtp.auth("XOAUTH2", lambda challenge=None: xoauth2(user, token) if challenge is None else "")

    token = bearer(None)
    try:
        auth(token)
    except smtplib.SMTPAuthenticationError:
        auth(bearer(token))  # expired since it was renewed, or revoked: a renewal tells which


def check_smtp(server: ServerUrl) -> None:
    """Log in to the SMTP server and out again; LoginFailed with the server's answer if that fails."""
    try:
        smtp = open_smtp(server)
    except smtplib.SMTPResponseException as exc:
        raise LoginFailed(refused(server, exc.smtp_code, exc.smtp_error)) from None
    except smtplib.SMTPNotSupportedError as exc:
        hint = " (does it need ?starttls=true?)" if server.security is Security.NONE else ""
        raise LoginFailed(f"{_name(server)} {server.address}: {answer(str(exc), server)}{hint}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise LoginFailed(unreachable(server, exc)) from None
    except (TokenRefused, TokenUnavailable) as exc:
        raise LoginFailed(str(exc)) from None
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def open_imap(server: ServerUrl) -> IMAPClient:
    """An IMAP connection, secured as the URL says and logged in (LOGIN, or XOAUTH2 with a bearer).

    LoginFailed, with words safe to show, when the server cannot be reached or refuses.
    """
    # Imported here: sending needs this module for open_smtp alone.
    from imapclient import IMAPClient

    try:
        client = IMAPClient(
            server.host,
            port=server.port,
            ssl=server.security is Security.TLS,
            ssl_context=tls_context() if server.security is Security.TLS else None,
            timeout=server.timeout,
        )
    except OSError as exc:
        raise LoginFailed(unreachable(server, exc)) from None
    try:
        if server.security is Security.STARTTLS:
            client.starttls(tls_context())
        if server.bearer is not None:
            token = server.bearer(None)
            try:
                client.oauth2_login(server.username or "", token)
            except imaplib.IMAP4.error:
                client.oauth2_login(server.username or "", server.bearer(token))  # expired meanwhile, or revoked
        else:
            client.login(server.username or "", server.password or "")
    except imaplib.IMAP4.error as exc:  # imapclient's LoginError is one
        close_imap(client)
        raise LoginFailed(refused(server, None, imap_words(exc))) from None
    except (TokenRefused, TokenUnavailable) as exc:
        close_imap(client)
        raise LoginFailed(str(exc)) from None
    except OSError as exc:
        close_imap(client)
        raise LoginFailed(unreachable(server, exc)) from None
    return client


def close_imap(client: IMAPClient) -> None:
    """Log out, or drop the connection when the server will not say goodbye."""
    try:
        client.logout()
    except (OSError, imaplib.IMAP4.error):
        client.shutdown()


def check_imap(server: ServerUrl) -> None:
    """Log in to the IMAP server and out again; LoginFailed with the server's answer if that fails."""
    close_imap(open_imap(server))


def refused(server: ServerUrl, code: int | None, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    said = f"{code} {text}" if code is not None else text
    return f"{_name(server)} login to {server.address} refused: {answer(said, server)}"


def unreachable(server: ServerUrl, exc: BaseException) -> str:
    return f"could not reach the {_name(server)} server {server.address}: {answer(describe(exc), server)}"


def answer(text: str, server: ServerUrl) -> str:
    """A server's words on one line, clipped, with the password blotted out should it echo it."""
    text = " ".join(text.split())
    if server.password:
        text = text.replace(server.password, "•••")
    return text if len(text) <= ANSWER_LENGTH else text[: ANSWER_LENGTH - 1] + "…"


def imap_words(exc: BaseException) -> str:
    """What the IMAP server said; imapclient hands it over as the repr of bytes (b'...')."""
    said = exc.args[0] if exc.args else ""
    if isinstance(said, str) and re.fullmatch(r"b(['\"]).*\1", said, re.DOTALL):
        said = ast.literal_eval(said)
    return said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__


def _name(server: ServerUrl) -> str:
    return server.protocol.name.upper()
