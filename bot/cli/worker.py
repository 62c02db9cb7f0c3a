"""`bot worker` (the scheduler loop alone) and `bot tick` (one pass, then exit)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import threading
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bot.clock import Clock, FixedClock, SystemClock
from bot.delivery.ports import Notifier
from bot.delivery.scheduler import LoggingNotifier, Scheduler, build_scheduler
from bot.listen.watcher import Watcher
from bot.mail.sent_copies import SentCopier
from bot.salesforce.sync import syncer_for
from bot.settings import Settings, load_settings
from bot.store.db import connect

if TYPE_CHECKING:
    from bot.slack.notices import NoticePoster

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction) -> None:
    """Adds `bot worker` and `bot tick`."""
    worker = commands.add_parser(
        "worker",
        help="run the scheduler and the mailbox watcher: deliver due emails, post due tasks and digests, "
        "act on replies and bounces (until SIGTERM)",
        description="Runs the scheduler loop and watches the mailboxes until SIGTERM or Ctrl-C, finishing the email "
        "in flight. Run several on PostgreSQL for more throughput; on SQLite run one.",
    )
    worker.set_defaults(handler=run_worker)
    tick = commands.add_parser(
        "tick",
        help="one scheduler pass, then exit",
        description="Reads each watched mailbox once (replies, out-of-office, bounces), delivers everything due by "
        "now (or by --now), posts due tasks and digests, prints what it did.",
    )
    tick.add_argument(
        "--now", type=instant, metavar="ISO8601", help="treat this as the current time, e.g. 2026-12-02T09:00:00+01:00"
    )
    tick.set_defaults(handler=run_tick)


def instant(text: str) -> dt.datetime:
    """An ISO 8601 time with its offset (or Z); a time without one is refused, not guessed."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time like 2026-12-02T09:00:00+01:00") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone offset: add one, e.g. {text}+00:00 or {text}Z")
    return value


def notifier_for(settings: Settings, engine: Engine, clock: Clock) -> tuple[Notifier, NoticePoster | None]:
    """Slack notices queued, and their poster, when SLACK_BOT_TOKEN is set; else a notifier that only logs."""
    if not settings.slack_bot_token:
        log.warning("SLACK_BOT_TOKEN is not set: reps will not be told in Slack (logging instead)")
        return LoggingNotifier(), None
    from bot.slack.notices import queued_slack

    return queued_slack(engine, settings, clock)


def scheduler_for(settings: Settings, clock: Clock) -> tuple[Scheduler, NoticePoster | None]:
    engine = connect(settings.database_url)
    notifier, poster = notifier_for(settings, engine, clock)
    return build_scheduler(settings, engine, notifier, clock), poster


def watcher_for(scheduler: Scheduler, poster: NoticePoster | None) -> Watcher:
    """The mailbox watcher beside the scheduler; what it queues for reps wakes the poster."""
    wake = poster.wake if poster is not None else (lambda: None)
    return Watcher(scheduler.engine, scheduler.clock, scheduler.settings, worker_id=scheduler.worker_id, queued=wake)


def run_worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    scheduler, poster = scheduler_for(settings, SystemClock())
    syncer = syncer_for(settings, scheduler.engine, scheduler.clock)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("%s: stopping after the email in flight", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    copier = SentCopier(scheduler.engine, scheduler.clock, settings.secret_key)
    watcher = watcher_for(scheduler, poster)
    if poster is not None:
        poster.start()
    copier.start()
    watcher.start()
    if syncer is not None:
        syncer.start()  # beside the scheduler: delivery never waits for Salesforce
    try:
        scheduler.run(stop)
    finally:
        watcher.stop(10)
        copier.stop()
        if syncer is not None:
            syncer.stop()
        if poster is not None:
            poster.stop()
    return 0


def run_tick(args: argparse.Namespace) -> int:
    settings = load_settings()
    clock: Clock = FixedClock(args.now) if args.now else SystemClock()
    scheduler, poster = scheduler_for(settings, clock)
    syncer = syncer_for(settings, scheduler.engine, clock)
    watcher = watcher_for(scheduler, poster)
    # Replies first: a person who answered is not emailed again in this pass.
    read = watcher.read_all() if watcher.mailboxes() else None
    result = scheduler.tick()
    # Copies for reps' Sent folders, and what the pass has to tell reps: one `bot tick` is the whole loop.
    SentCopier(scheduler.engine, clock, settings.secret_key).drain()
    if poster is not None:
        poster.drain()  # what the pass has to tell reps, so one `bot tick` is the whole loop
    if read is not None:
        print(read)
    print(result)
    if syncer is not None:
        print(syncer.sync())  # and what it has to write to Salesforce
    return 0
