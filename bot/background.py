"""The loops that run beside the Slack app: the scheduler, the notice poster, the
sent-copies appender and the Salesforce syncer.

Each is a `Background`: it defines `run(stop)`, a loop that returns soon after `stop`
is set. `start()` runs it in a daemon thread of its own (`bot serve`, `bot worker`);
`stop()` sets the event and waits for the loop to finish what it has in hand (what it
has not started stays stored for the next start).
"""

from __future__ import annotations

import threading
from typing import ClassVar


class Background:
    thread_name: ClassVar[str]

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Run the loop in its thread; a second call does nothing."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after what the loop has in hand."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
