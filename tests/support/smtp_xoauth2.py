"""A real SMTP submission server that logs in with XOAUTH2 only, checking tokens with the fake authorization server.

`SmtpXOAuth2(cert, fake)` offers STARTTLS, then `AUTH XOAUTH2` alone: the initial
response must name a user and one of `fake`'s current access tokens for that user;
anything else gets Gmail's refusal. `hang_up_every=k` closes each connection when it
is about to take its (k+1)th email, as servers do that cap emails per connection, and
calls `on_hang_up` first (a test expires the tokens there: mid-batch, the next
connection's login finds its cached token expired).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import AuthResult

from tests.support.fake_oauth import FakeAuthServer
from tests.support.smtp_sink import SmtpSink, _AnyPortController
from tests.support.tls import Certificate

REFUSAL = "535 5.7.8 Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials"


class SmtpXOAuth2(SmtpSink):
    def __init__(self, cert: Certificate, fake: FakeAuthServer, *, hang_up_every: int | None = None) -> None:
        super().__init__()
        self.cert = cert
        self.fake = fake
        self.hang_up_every = hang_up_every
        self.on_hang_up: Callable[[], None] = lambda: None
        self.logins: list[str] = []  # the users who logged in
        self.refused: int = 0
        self.hang_ups = 0

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=true"

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        try:
            said = base64.b64decode(args[1] if len(args) > 1 else "", validate=True).decode()
            fields = dict(part.split("=", 1) for part in said.split("\x01") if part)
        except (binascii.Error, UnicodeError, ValueError):
            fields = {}
        user, auth = fields.get("user", ""), fields.get("auth", "")
        if auth.startswith("Bearer ") and user and self.fake.user_of(auth.removeprefix("Bearer ")) == user:
            self.logins.append(user)
            return AuthResult(success=True)
        self.refused += 1
        return AuthResult(success=False, handled=False, message=REFUSAL)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]) -> str:
        if self.hang_up_every is not None and getattr(session, "taken", 0) >= self.hang_up_every:
            self.hang_ups += 1
            self.on_hang_up()
            server.transport.close()
            return "421 4.4.2 closing"  # never reaches the client
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        session.taken = getattr(session, "taken", 0) + 1
        return reply

    def __enter__(self) -> SmtpXOAuth2:
        self._controller = _AnyPortController(
            self,
            hostname="127.0.0.1",
            port=0,
            tls_context=self.cert.server_context(),
            require_starttls=True,
            auth_required=True,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            server_kwargs={"data_size_limit": 0},
        )
        self._controller.start()
        return self
