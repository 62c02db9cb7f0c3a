"""What every Slack listener needs, passed in once by the app factory."""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session

from bot.clock import Clock
from bot.delivery.ports import Deliverer
from bot.delivery.routes import smtputf8_refusal
from bot.settings import Settings

WORK_THREADS = 4


def _work_pool() -> Executor:
    return ThreadPoolExecutor(max_workers=WORK_THREADS, thread_name_prefix="slack-work")


@dataclass
class Deps:
    """The store, the clock, the settings and the delivery side, for listeners.

    `work` runs what a listener does after its ack when that may take a while
    (adding many people): Bolt acks from its own threads, so an ack never waits
    behind a queue of such work (see bench/ack_latency.py).
    """

    engine: Engine
    clock: Clock
    settings: Settings
    deliverer: Deliverer | None = None
    work: Executor = field(default_factory=_work_pool)

    def smtputf8_refusal(self, session: Session, rep_id: str) -> Callable[[], str | None]:
        """For an add: why the rep's emails cannot go to an address with non-ASCII before the @, or None."""
        return functools.partial(smtputf8_refusal, self.settings, session, rep_id)

    def drain(self) -> None:
        """Finish the work already handed over (at shutdown)."""
        self.work.shutdown(wait=True)
