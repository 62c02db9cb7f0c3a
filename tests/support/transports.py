"""Transports for tests of the sender process (importable there, as a real one is)."""

from __future__ import annotations

import os

from bot.delivery.ports import Outbound
from bot.delivery.transports import SmtpTransport


class DyingTransport(SmtpTransport):
    """SMTP, except that the process sending to `fatal` dies on the spot (as if killed)."""

    def __init__(self, url: str, fatal: str) -> None:
        super().__init__(url)
        self.fatal = fatal

    def send(self, email: Outbound) -> None:
        if self.fatal in email.recipients:
            os._exit(9)
        super().send(email)
