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


@pytest.fixture(params=["thread", "sender process"])
def hand_over(request: pytest.FixtureRequest) -> str:
    """How emails reach the server: a thread of the scheduler's process, or a sender process."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_scheduler(
    engine: Engine, clock: FixedClock, notifier: RecordingNotifier, sink: SmtpSink, hand_over: str
) -> Callable[..., Scheduler]:
    """A scheduler on the test database, delivering to the sink unless given a transport.

    Every test using it runs twice: handing emails over in a thread, and (for the
    real SMTP transport) through a sender process, whatever the batch's size.
    """

    def make(
        transport: MailTransport | None = None, worker_id: str = "worker-1", batch_size: int = 100, **settings: object
    ) -> Scheduler:
        settings.setdefault("digest_cron", "0 0 1 1 *")  # digests have tests of their own
        transport = transport or SmtpTransport(sink.url, timeout=5)
        return Scheduler(
            engine,
            clock,
            transport,
            notifier,
            load_settings(**settings),
            worker_id=worker_id,
            batch_size=batch_size,
            sender_process_from=1 if hand_over == "sender process" and type(transport) is SmtpTransport else None,
        )

    return make
