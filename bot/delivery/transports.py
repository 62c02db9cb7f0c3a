"""Connections to mail servers: SMTP (a relay, a rep's own mailbox), or .eml files in ./outbox/.

An SmtpTransport is one connection, kept open across emails, that says precisely
how an email failed, because that decides what the scheduler may do next:
- the server asks to slow down (421 4.7.0, 450/451 4.7.x, 452 4.5.3, or too many
  connections): `DeliveryError(slow_down=True)`, the mailbox waits, no retry used;
- the server refuses the login: `DeliveryError(refused_login=True)`, the mailbox waits;
- nothing was handed over (refused connection, timeout, another 4xx reply before
  the body was accepted): `DeliveryError(retry=True)`, try again later;
- a 5xx reply: `DeliveryError(...)`, failed for good;
- an error while or after the body was sent, before the server's final reply:
  `DeliveryError(uncertain=True)`, the server may have it: never re-send by itself.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import smtplib
import uuid
from pathlib import Path

from bot.delivery.ports import DeliveryError, Email
from bot.mail.check import TokenRefused, TokenUnavailable, answer, describe, open_smtp
from bot.mail.urls import ServerUrl, parse_smtp_url

log = logging.getLogger(__name__)

# As smtplib's send_message() asks for an internationalized message (RFC 6531).
SMTPUTF8_OPTIONS = ("SMTPUTF8", "BODY=8BITMIME")
UNICODE_LOCAL = "addresses with non-ASCII characters before the @"


class SmtpTransport:
    """smtp://user:password@host:port?starttls=true&timeout=30, or smtps://... (TLS from the start)."""

    def __init__(self, url: str | ServerUrl, *, timeout: float | None = None) -> None:
        if isinstance(url, ServerUrl):
            server = url
        else:
            try:
                server = parse_smtp_url(url)
            except ValueError as exc:
                raise ValueError(f"SMTP_URL {exc}") from None
        self.server = server if timeout is None else dataclasses.replace(server, timeout=timeout)
        self._smtp: smtplib.SMTP | None = None

    def __repr__(self) -> str:  # never shows the password
        return f"SmtpTransport({self.server.shown()})"

    def send(self, email: Email) -> None:
        """Hand one email to the server, reusing the open connection."""
        reused = self._smtp is not None
        try:
            self._transact(self._connection(), email)
        except _Stale:
            if not reused:
                raise DeliveryError(
                    "the mail server closed the connection before taking the email", retry=True
                ) from None
            # A server may hang up on a connection that sat idle between batches.
            try:
                self._transact(self._connection(), email)
            except _Stale as exc:
                raise DeliveryError(str(exc) or "the mail server closed the connection", retry=True) from None

    def open(self) -> None:
        """Connect and log in now, if not connected."""
        self._connection()

    def close(self) -> None:
        """Say goodbye to the server, if connected."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._connect()
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        try:
            smtp = open_smtp(self.server)
        # Failing to connect or log in says nothing about this email: try it again later.
        except smtplib.SMTPAuthenticationError as exc:
            reply = answer(_reply(exc.smtp_code, exc.smtp_error), self.server)
            raise DeliveryError(f"the mail server refused the login: {reply}", refused_login=True) from None
        except smtplib.SMTPResponseException as exc:
            # answer(): a server that echoes the login back must not put the password in the error.
            reply = answer(_reply(exc.smtp_code, exc.smtp_error), self.server)
            if slows_down(reply) or exc.smtp_code == 421:  # 421 at connect: too many connections, or going away
                raise DeliveryError(f"the mail server asked to slow down: {reply}", slow_down=True) from None
            raise DeliveryError(f"the mail server refused the connection: {reply}", retry=True) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"could not connect to {self.server.address}: {describe(exc)}", retry=True) from None
        except TokenRefused as exc:  # an OAuth mailbox whose consent is gone: as a refused login
            raise DeliveryError(str(exc), refused_login=True) from None
        except TokenUnavailable as exc:
            raise DeliveryError(str(exc), retry=True) from None
        self._smtp = smtp
        return smtp

    def _transact(self, smtp: smtplib.SMTP, email: Email) -> None:
        options: tuple[str, ...] = ()
        unicode = [address for address in (email.sender, *email.recipients) if not address.isascii()]
        if unicode:
            if not smtp.has_extn("smtputf8"):
                raise DeliveryError(
                    f"the mail server does not take {UNICODE_LOCAL} (it offers no SMTPUTF8): {', '.join(unicode)}"
                )
            options = SMTPUTF8_OPTIONS
        data = _dot_stuffed(email.data)
        body_sent = False
        try:
            code, reply = smtp.mail(email.sender, options)
            if code != 250:
                self._refused(smtp, code, reply)
            for recipient in email.recipients:
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    self._refused(smtp, code, reply)
            code, reply = smtp.docmd("DATA")
            if code != 354:
                self._refused(smtp, code, reply)
            body_sent = True
            smtp.send(data)
            code, reply = smtp.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            if body_sent:
                raise DeliveryError(
                    f"the connection failed after the email was handed over ({describe(exc)}): "
                    "the server may or may not have accepted it",
                    uncertain=True,
                ) from None
            if isinstance(exc, smtplib.SMTPServerDisconnected):
                raise _Stale(describe(exc)) from None
            raise DeliveryError(f"the mail server did not answer: {describe(exc)}", retry=True) from None
        if code != 250:
            # An explicit reply to the body is a clear answer: the server did not take it.
            self._refused(smtp, code, reply)

    def _refused(self, smtp: smtplib.SMTP, code: int, reply: bytes) -> None:
        if code == 421 or code < 0:
            self._drop()
        else:
            try:
                smtp.rset()
            except (OSError, smtplib.SMTPException):
                self._drop()
        text = _reply(code, reply)
        if slows_down(text):
            raise DeliveryError(f"the mail server asked to slow down: {text}", slow_down=True)
        raise DeliveryError(text, retry=400 <= code < 500 or code < 0)

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


class _Stale(Exception):
    """The server hung up before the email was handed over."""


class OutboxTransport:
    """Writes each email as a .eml file, for reading what would have been sent."""

    def __init__(self, folder: str | Path = "outbox") -> None:
        self.folder = Path(folder)

    def send(self, email: Email) -> None:
        """Write the email to `<folder>/<message-id>.eml` (the folder is made as needed)."""
        name = re.sub(r"[^A-Za-z0-9._-]", "_", email.message_id.strip("<>")) or uuid.uuid4().hex
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = self.folder / f".{name}.partial"
            partial.write_bytes(email.data)
            partial.replace(self.folder / f"{name}.eml")  # readers never see half a file
        except OSError as exc:
            raise DeliveryError(f"could not write to {self.folder}: {exc.strerror or exc}", retry=True) from None

    def open(self) -> None:
        """Nothing to connect to."""

    def close(self) -> None:
        """Nothing to let go of."""


# RFC 3463 codes with which servers ask a sender to slow down (../shared/spec/mail.md, Limits).
_SLOW_DOWN = re.compile(r"^(?:421 4\.7\.0|45[01] 4\.7\.\d{1,3}|452 4\.5\.3)\b")


def slows_down(reply: str) -> bool:
    """Whether a server's reply ("451 4.7.1 ...") asks to send more slowly."""
    return bool(_SLOW_DOWN.match(reply))


def smtputf8_refusal(server: ServerUrl, name: str) -> str | None:
    """Why `server` (called `name` in the message) cannot take an address with non-ASCII before the @, or None.

    Asked on a connection of its own, without logging in (EHLO lists SMTPUTF8, RFC
    6531), once per process for each server; asked again when it could not be reached.
    """
    try:
        offered = offers_smtputf8(dataclasses.replace(server, username=None, password=None, bearer=None))
    except DeliveryError as exc:
        return f"the bot could not ask {name} whether it takes {UNICODE_LOCAL} ({exc.reason}); try again later"
    return None if offered else f"{name} does not take {UNICODE_LOCAL} (it offers no SMTPUTF8)"


@functools.cache
def offers_smtputf8(server: ServerUrl) -> bool:
    """Whether the server's EHLO offers SMTPUTF8; raises DeliveryError when it cannot be reached."""
    probe = SmtpTransport(server)
    try:
        return probe._connection().has_extn("smtputf8")
    finally:
        probe.close()


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: lines starting with a dot doubled, then the final dot line."""
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {' '.join(text.split())}".strip()
