"""A real SMTP submission server that wants a login (aiosmtpd's AUTH), over STARTTLS.

`SmtpLogin(cert, users={"pat@seller.example": "s3cret"})` offers STARTTLS with `cert`
and AUTH PLAIN / LOGIN only after it; a wrong login gets `refusal`, worded like
Microsoft 365's. It keeps the emails it accepts, like the SMTP sink.
"""

from __future__ import annotations

from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.smtp_sink import SmtpSink, _AnyPortController
from tests.support.tls import Certificate

REFUSAL = "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect."


class SmtpLogin(SmtpSink):
    def __init__(self, cert: Certificate, users: dict[str, str], *, refusal: str = REFUSAL) -> None:
        super().__init__()
        self.cert = cert
        self.users = users
        self.refusal = refusal
        self.logins: list[str] = []  # the users who logged in

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=true"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                self.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False, message=self.refusal)

    def __enter__(self) -> SmtpLogin:
        self._controller = _AnyPortController(
            self,
            hostname="127.0.0.1",
            port=0,
            tls_context=self.cert.server_context(),
            require_starttls=True,
            authenticator=self.authenticate,
            auth_required=True,
            server_kwargs={"data_size_limit": 0},
        )
        self._controller.start()
        return self
