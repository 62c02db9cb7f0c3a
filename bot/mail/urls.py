"""Mail server URLs: `smtp://` / `smtps://` (as SMTP_URL) and `imap://` / `imaps://`.

    smtp://user:password@host:587?starttls=true&timeout=30   STARTTLS, then login
    smtps://user:password@host                                TLS from the start (port 465)
    imap://user@host?starttls=true, imaps://user@host         the same for IMAP (143 / 993)

User and password are percent-encoded (`user%40example.com`); both may be left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEFAULT_TIMEOUT = 30.0
TRUE = ("1", "true", "yes", "on")


class Security(StrEnum):
    TLS = "tls"  # TLS from the first byte (smtps://, imaps://)
    STARTTLS = "starttls"  # plain, then STARTTLS before logging in
    NONE = "none"


@dataclass(frozen=True)
class Protocol:
    name: str
    plain_port: int
    tls_port: int

    @property
    def example(self) -> str:
        return f"{self.name}://user:password@host:{self.plain_port}?starttls=true or {self.name}s://host"


SMTP = Protocol("smtp", 25, 465)
IMAP = Protocol("imap", 143, 993)


@dataclass(frozen=True)
class ServerUrl:
    protocol: Protocol
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    # OAuth 2.0 mailboxes log in with XOAUTH2: bearer(refused) gives the access token, a newer one
    # than `refused` when a server refused that one (bot/mail/oauth.py).
    bearer: Callable[[str | None], str] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def address(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port}"

    def shown(self) -> str:
        """The URL without its password, safe to print or log."""
        scheme = self.protocol.name + ("s" if self.security is Security.TLS else "")
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        query = "?starttls=true" if self.security is Security.STARTTLS else ""
        return f"{scheme}://{user}{self.address}{query}"

    def with_password(self, password: str | None) -> ServerUrl:
        return dataclasses.replace(self, password=password)


def parse_smtp_url(url: str) -> ServerUrl:
    """An `smtp://` or `smtps://` URL; ValueError says what it should look like."""
    return parse_server_url(url, SMTP)


def parse_imap_url(url: str) -> ServerUrl:
    """An `imap://` or `imaps://` URL; ValueError says what it should look like."""
    return parse_server_url(url, IMAP)


def parse_server_url(url: str, protocol: Protocol) -> ServerUrl:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number
        parts, port = None, None
    if parts is None or parts.scheme not in (protocol.name, protocol.name + "s") or not parts.hostname:
        raise ValueError(f"must look like {protocol.example}")
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    if parts.scheme.endswith("s"):
        security = Security.TLS
    elif query.get("starttls", "").lower() in TRUE:
        security = Security.STARTTLS
    else:
        security = Security.NONE
    try:
        timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
    except ValueError:
        raise ValueError(f"timeout={query['timeout']} is not a number of seconds") from None
    return ServerUrl(
        protocol=protocol,
        host=parts.hostname,
        port=port or (protocol.tls_port if security is Security.TLS else protocol.plain_port),
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
    )
