"""Fixtures for delivery tests: a real SMTP server, a recording notifier, a scheduler."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest
from sqlalchemy import Engine

from bot.clock import FixedClock
from bot.delivery.ports import MailTransport
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import SmtpTransport
from bot.settings import load_settings
from tests.support.notifier import RecordingNotifier
from tests.support.smtp_sink import SmtpSink


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def make_scheduler(engine: Engine, clock: FixedClock, notifier: RecordingNotifier, sink: SmtpSink) -> Callable[..., Scheduler]:
    """A scheduler on the test database, delivering to the sink unless given a transport."""

    def make(
        transport: MailTransport | None = None, worker_id: str = "worker-1", batch_size: int = 100, **settings: object
    ) -> Scheduler:
        settings.setdefault("digest_cron", "0 0 1 1 *")  # digests have tests of their own
        return Scheduler(
            engine,
            clock,
            transport or SmtpTransport(sink.url, timeout=5),
            notifier,
            load_settings(**settings),
            worker_id=worker_id,
            batch_size=batch_size,
        )

    return make
