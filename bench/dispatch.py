"""Dispatch throughput: due emails through the scheduler to a local SMTP server.

    python bench/dispatch.py [--emails 10000] [--postgres URL]

In one run, against one aiosmtpd server in its own process:
  ceiling      the same messages, pre-built and written out, sent by a plain smtplib loop
               (sendmail) on one connection; also the loop with smtplib's send_message()
  apscheduler  APScheduler 3, one date-trigger job per email (due now), a thread pool of 10,
               each job sending with smtplib on a connection of its own
  scheduler    `Scheduler.tick()` on SQLite (one worker), and on PostgreSQL with one and two
               worker processes: claiming, drafting, the crash-safe bookkeeping, SMTP (from
               the sender process, as `bot worker` hands over a batch of 300 or more);
               each process tuned as `bot worker` tunes itself (favour_hand_over)
Prints emails/second for each and the ratios. Goals: >= 0.6 of the ceiling, ahead of APScheduler.
PostgreSQL runs when --postgres or TEST_DATABASE_URL names a database (a scratch schema
is created and dropped).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import multiprocessing as mp
import os
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlmodel import Session, select  # noqa: E402

from bot.clock import FixedClock  # noqa: E402
from bot.delivery.mail import compose, envelope, new_message_id, wire_bytes  # noqa: E402
from bot.delivery.scheduler import SENDER_PROCESS_FROM, Scheduler, favour_hand_over  # noqa: E402
from bot.delivery.transports import SmtpTransport  # noqa: E402
from bot.services.drafts import draft_for  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.store.db import connect, make_engine  # noqa: E402
from bot.store.models import Send, SendStatus  # noqa: E402
from tests.support.databases import PostgresSchema  # noqa: E402
from tests.support.due_emails import seed_due_emails  # noqa: E402
from tests.support.notifier import RecordingNotifier  # noqa: E402
from tests.support.smtp_sink import SmtpSink  # noqa: E402

NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.timezone.utc)
# Two steps, so every email sent also plans the enrollment's next one (as in real campaigns).
STEPS = [
    {"day": 1, "send": "at_time", "time": "09:00", "subject": "Hello {{ first_name }}", "body": "Hi {{ first_name }},\n\nshall we talk next week?\n\nRita"},
    {"day": 3, "send": "thread", "body": "Just following up on this."},
]


# --- the SMTP server, in a process of its own so it does not share our CPU -----------
def _serve(port: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    with SmtpSink(keep=False) as sink:
        port.put(sink.port)
        stop.wait()


class Server:
    def __enter__(self) -> Server:
        ports: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        self.stop = mp.Event()
        self.process = mp.Process(target=_serve, args=(ports, self.stop), daemon=True)
        self.process.start()
        self.port = ports.get(timeout=30)
        self.url = f"smtp://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.process.join(10)


# --- the contenders -----------------------------------------------------------------
def prebuilt_messages(url: str, count: int) -> list:  # type: ignore[type-arg]
    """The messages the scheduler would send, built ahead (not timed)."""
    engine = connect(url)
    seed_due_emails(engine, count, NOW, steps=STEPS)
    with Session(engine) as session:
        sends = list(session.exec(select(Send).where(Send.status == SendStatus.PLANNED)))
        drafts = [draft_for(session, send) for send in sends]
    engine.dispose()
    return [compose(draft, message_id=new_message_id(draft.sender_email or "x@example.com"), date=NOW) for draft in drafts]


def plain_loop(port: int, messages: list) -> float:  # type: ignore[type-arg]
    payloads = [(*envelope(message), wire_bytes(message)) for message in messages]
    start = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", port)
    for sender, recipients, data in payloads:
        smtp.sendmail(sender, recipients, data)
    smtp.quit()
    return time.perf_counter() - start


def send_message_loop(port: int, messages: list) -> float:  # type: ignore[type-arg]
    """The same loop with smtplib's own send_message(), which writes each message itself."""
    start = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", port)
    for message in messages:
        smtp.send_message(message)
    smtp.quit()
    return time.perf_counter() - start


def apscheduler(port: int, messages: list) -> float:  # type: ignore[type-arg]
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    done = threading.Semaphore(0)

    def send_one(message) -> None:  # type: ignore[no-untyped-def]
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(message)
        done.release()

    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(10)})
    start = time.perf_counter()
    scheduler.start()
    run_at = dt.datetime.now(dt.timezone.utc)
    for message in messages:
        scheduler.add_job(send_one, "date", run_date=run_at, args=[message], misfire_grace_time=None)
    for _ in messages:
        done.acquire()
    elapsed = time.perf_counter() - start
    scheduler.shutdown()
    return elapsed


def _worker(url: str, smtp_url: str, ready: mp.Barrier, results: mp.Queue) -> None:  # type: ignore[type-arg]
    favour_hand_over()  # as `bot worker` does
    settings = load_settings(database_url=url, smtp_url=smtp_url)
    engine = make_engine(url)
    scheduler = Scheduler(  # as `bot worker` builds it
        engine, FixedClock(NOW), SmtpTransport(smtp_url), RecordingNotifier(), settings, sender_process_from=SENDER_PROCESS_FROM
    )
    ready.wait()
    results.put(scheduler.tick().sent)
    engine.dispose()


def scheduler_run(url: str, smtp_url: str, count: int, workers: int) -> float:
    engine = connect(url)
    seed_due_emails(engine, count, NOW, steps=STEPS)
    with engine.begin() as connection:
        # Fresh statistics for the query planner, as autovacuum keeps them on a live
        # PostgreSQL database (without them it guesses sequential scans for a while).
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    ready = mp.Barrier(workers + 1)
    results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    processes = [mp.Process(target=_worker, args=(url, smtp_url, ready, results)) for _ in range(workers)]
    for process in processes:
        process.start()
    ready.wait()  # every worker is connected and waiting: start the clock
    start = time.perf_counter()
    sent = sum(results.get(timeout=600) for _ in processes)
    elapsed = time.perf_counter() - start
    for process in processes:
        process.join()
    assert sent == count, f"{sent} of {count} sent"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    count = args.emails
    rates: dict[str, float] = {}

    with tempfile.TemporaryDirectory() as folder, Server() as server:
        messages = prebuilt_messages(f"sqlite:///{folder}/messages.db", count)
        rates["ceiling: plain smtplib loop"] = count / plain_loop(server.port, messages)
        rates["plain loop with send_message()"] = count / send_message_loop(server.port, messages)
        rates["APScheduler 3, job per email"] = count / apscheduler(server.port, messages)
        rates["scheduler, SQLite, 1 worker"] = count / scheduler_run(f"sqlite:///{folder}/bench.db", server.url, count, 1)
        if args.postgres:
            for workers in (1, 2):
                schema = PostgresSchema(args.postgres)
                try:
                    rates[f"scheduler, PostgreSQL, {workers} worker{'s' if workers > 1 else ''}"] = count / scheduler_run(
                        schema.url, server.url, count, workers
                    )
                finally:
                    schema.drop()

    ceiling = rates["ceiling: plain smtplib loop"]
    aps = rates["APScheduler 3, job per email"]
    print(f"\n{count:,} due emails to aiosmtpd on 127.0.0.1 ({os.cpu_count()} CPUs)\n")
    print(f"{'':34} {'emails/s':>9} {'x ceiling':>10} {'x APScheduler':>14}")
    for name, rate in rates.items():
        print(f"{name:34} {rate:9.0f} {rate / ceiling:10.2f} {rate / aps:14.2f}")
    print("\ngoals: scheduler >= 0.60 x ceiling, and > 1.00 x APScheduler")


if __name__ == "__main__":
    main()
