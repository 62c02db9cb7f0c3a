"""Fixtures for delivery tests: a real SMTP server, a recording notifier, a scheduler."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from bot.clock import FixedClock
from bot.delivery.ports import Connection, Limits
from bot.delivery.routes import Relay
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
def make_scheduler(
    engine: Engine, clock: FixedClock, notifier: RecordingNotifier, sink: SmtpSink
) -> Callable[..., Scheduler]:
    """A scheduler on the test database, delivering through a relay to the sink (or `url`) unless given a connection."""

    def make(
        connection: Connection | None = None,
        worker_id: str = "worker-1",
        url: str | None = None,
        batch_size: int = 100,
        limits: Limits = Limits(),
        **settings: object,
    ) -> Scheduler:
        settings.setdefault("digest_cron", "0 0 1 1 *")  # digests have tests of their own
        # A connection given is the only one (each lane thread would otherwise share it).
        connect = (
            (lambda: connection) if connection is not None else (lambda: SmtpTransport(url or sink.url, timeout=5))
        )
        if connection is not None:
            limits = Limits(limits.per_minute, limits.per_day, connections=1)
        return Scheduler(
            engine,
            clock,
            Relay(connect, limits),
            notifier,
            load_settings(**settings),
            worker_id=worker_id,
            batch_size=batch_size,
        )

    return make
