"""Mail transports: a real SMTP server (SMTP_URL), or .eml files in ./outbox/.

SmtpTransport keeps one connection open across a batch and says precisely how an
email failed, because that decides what the scheduler may do next:
- nothing was handed over (refused connection, timeout, a 4xx reply before the
  body was accepted): `DeliveryError(retry=True)`, try again later;
- a 5xx reply: `DeliveryError(...)`, failed for good;
- an error while or after the body was sent, before the server's final reply:
  `DeliveryError(uncertain=True)`, the server may have it: never re-send by itself.
"""

from __future__ import annotations

import functools
import logging
import re
import smtplib
import ssl
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

# Light to import: the sender process (bot/delivery/sender.py) runs these transports.
from bot.delivery.ports import DeliveryError, MailTransport, Outbound

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
# As smtplib's send_message() asks for an internationalized message (RFC 6531).
SMTPUTF8_OPTIONS = ("SMTPUTF8", "BODY=8BITMIME")
UNICODE_LOCAL = "addresses with non-ASCII characters before the @"
TRUE = ("1", "true", "yes", "on")


class SmtpTransport:
    """smtp://user:password@host:port?starttls=true&timeout=30, or smtps://... (TLS from the start)."""

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://user:password@host:587?starttls=true or smtps://host")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else ""
        self.starttls = query.get("starttls", "").lower() in TRUE
        self.timeout = timeout if timeout is not None else float(query.get("timeout", DEFAULT_TIMEOUT))
        self._smtp: smtplib.SMTP | None = None

    def __repr__(self) -> str:  # never shows the password
        return f"SmtpTransport({'smtps' if self.tls else 'smtp'}://{self.host}:{self.port})"

    def offers_smtputf8(self) -> bool:
        """Whether the server takes addresses with non-ASCII before the @ (SMTPUTF8, RFC 6531).

        Asks the server on a connection of its own; raises DeliveryError when it cannot be reached.
        """
        smtp = self._connect()
        try:
            return smtp.has_extn("smtputf8")
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def send(self, email: Outbound) -> None:
        """Hand one email to the server, reusing the open connection."""
        sender, recipients, data = email.sender, email.recipients, _dot_stuffed(email.data)
        reused = self._smtp is not None
        try:
            self._transact(self._connection(), sender, recipients, data)
        except _Stale:
            if not reused:
                raise DeliveryError("the mail server closed the connection before taking the email", retry=True) from None
            # A server may hang up on a connection that sat idle between batches.
            try:
                self._transact(self._connection(), sender, recipients, data)
            except _Stale as exc:
                raise DeliveryError(str(exc) or "the mail server closed the connection", retry=True) from None

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
            if self.tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password)
        # Failing to connect or log in says nothing about this email: try it again later.
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"the mail server refused the connection: {_reply(exc.smtp_code, exc.smtp_error)}", retry=True) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"could not connect to {self.host}:{self.port}: {_describe(exc)}", retry=True) from None
        return smtp

    def _transact(self, smtp: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> None:
        options: tuple[str, ...] = ()
        unicode = [address for address in (sender, *recipients) if not address.isascii()]
        if unicode:
            if not smtp.has_extn("smtputf8"):
                raise DeliveryError(f"the mail server does not take {UNICODE_LOCAL} (it offers no SMTPUTF8): {', '.join(unicode)}")
            options = SMTPUTF8_OPTIONS
        body_sent = False
        try:
            code, reply = smtp.mail(sender, options)
            if code != 250:
                self._refused(smtp, code, reply)
            for recipient in recipients:
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
                    f"the connection failed after the email was handed over ({_describe(exc)}): "
                    "the server may or may not have accepted it",
                    uncertain=True,
                ) from None
            if isinstance(exc, smtplib.SMTPServerDisconnected):
                raise _Stale(_describe(exc)) from None
            raise DeliveryError(f"the mail server did not answer: {_describe(exc)}", retry=True) from None
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
        raise DeliveryError(_reply(code, reply), retry=400 <= code < 500 or code < 0)

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

    def send(self, email: Outbound) -> None:
        """Write the email to `<folder>/<message-id>.eml` (the folder is made as needed)."""
        name = re.sub(r"[^A-Za-z0-9._-]", "_", email.message_id.strip("<>")) or uuid.uuid4().hex
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = self.folder / f".{name}.partial"
            partial.write_bytes(email.data)
            partial.replace(self.folder / f"{name}.eml")  # readers never see half a file
        except OSError as exc:
            raise DeliveryError(f"could not write to {self.folder}: {exc.strerror or exc}", retry=True) from None

    def close(self) -> None:
        """Nothing to let go of."""


def transport_for(settings: Settings) -> MailTransport:
    """SMTP when SMTP_URL is set, else .eml files in OUTBOX_DIR (./outbox/)."""
    if settings.smtp_url:
        return SmtpTransport(settings.smtp_url)
    return OutboxTransport(settings.outbox_dir)


def smtputf8_refusal(settings: Settings) -> str | None:
    """Why an address with non-ASCII before the @ cannot be emailed, or None when it can.

    The outbox folder takes any address; the relay is asked once per process, and
    asked again next time when it could not be reached.
    """
    if not settings.smtp_url:
        return None
    try:
        offered = _relay_offers_smtputf8(settings.smtp_url)
    except DeliveryError as exc:
        return f"the bot could not ask the mail server whether it takes {UNICODE_LOCAL} ({exc.reason}); try again later"
    return None if offered else f"the mail server (SMTP_URL) does not take {UNICODE_LOCAL} (it offers no SMTPUTF8)"


@functools.cache
def _relay_offers_smtputf8(url: str) -> bool:
    return SmtpTransport(url).offers_smtputf8()


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: lines starting with a dot doubled, then the final dot line."""
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {' '.join(text.split())}".strip()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__
