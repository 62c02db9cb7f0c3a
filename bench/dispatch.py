"""Dispatch: 10,000 emails from 100 reps, all due at once, to a mail server that behaves like a real one.

    python bench/dispatch.py [--emails 10000] [--latency-ms 100] [--connections 20] [--postgres URL]

The server (aiosmtpd, in a process of its own) takes L ms to accept each message and
allows C connections at once (421 past them), so the most any client can deliver is
C/L emails a second: the limit. In one run, against that server:
  APScheduler  APScheduler 3, one date-trigger job per email (due now), a pool of C
               threads, each job on a connection of its own
  scheduler    `Scheduler.tick()` as `bot worker` runs it, the relay's SMTP_MAX_CONNECTIONS
               set to C: SQLite with one worker; PostgreSQL with one worker, and with two
               workers against a server allowing 2C (SMTP_MAX_CONNECTIONS 2C, a limit the
               two share); each worker passes as `bot worker` does (SCHEDULER_INTERVAL 1 s)
               until nothing is left
For each: emails/s, against the limit and against APScheduler, and lateness (when the
server accepted each email, minus when it was due: p50, p99, max).
Then with L = 0: emails/s against a plain smtplib loop on one connection (the ceiling
of one client on this machine).
Goals: >= 0.9 x the limit; ahead of APScheduler; two PostgreSQL workers >= 1.7 x one;
with L = 0, >= 0.5 x the plain loop. PostgreSQL runs when --postgres or TEST_DATABASE_URL
names a database (a scratch schema is created and dropped).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import multiprocessing as mp
import os
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.clock import SystemClock
from bot.delivery.mail import compose_email, new_message_id
from bot.delivery.ports import Email
from bot.delivery.routes import relay_for
from bot.delivery.scheduler import Scheduler
from bot.services.drafts import draft_for
from bot.settings import load_settings
from bot.store.db import connect, make_engine
from bot.store.models import Send, SendStatus
from tests.support.databases import PostgresSchema
from tests.support.due_emails import seed_due_emails
from tests.support.notifier import RecordingNotifier
from tests.support.smtp_sink import SmtpSink

REPS = 100
# Two steps, so every email sent also plans the enrollment's next one (as in real campaigns).
STEPS = [
    {
        "day": 1,
        "send": "at_time",
        "time": "09:00",
        "subject": "Hello {{ first_name }}",
        "body": "Hi {{ first_name }},\n\nshall we talk next week?\n\nRita",
    },
    {"day": 3, "send": "thread", "body": "Just following up on this."},
]


# --- the mail server, in a process of its own so that it does not share our CPU ---------
def _serve(latency: float, connections: int, port: mp.Queue, stop: mp.Event, times: mp.Queue) -> None:  # type: ignore[type-arg]
    with SmtpSink(keep=False, latency=latency, max_connections=connections) as sink:
        port.put(sink.port)
        stop.wait()
        times.put((sink.accepted_at, sink.refused_connections))


class Server:
    """The server for one contender: `.accepted_at` (wall-clock times) once it has stopped."""

    def __init__(self, latency: float, connections: int) -> None:
        self.latency, self.connections = latency, connections

    def __enter__(self) -> Server:
        ports: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        self.times: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        self.stop = mp.Event()
        self.process = mp.Process(
            target=_serve, args=(self.latency, self.connections, ports, self.stop, self.times), daemon=True
        )
        self.process.start()
        self.port = ports.get(timeout=30)
        self.url = f"smtp://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.accepted_at, self.refused = self.times.get(timeout=60)
        self.process.join(10)


@dataclass
class Run:
    seconds: float
    lateness: list[float]  # seconds, one per email
    refused: int = 0  # connections the server refused past its cap

    def rate(self, count: int) -> float:
        return count / self.seconds

    def late(self) -> str:
        ordered = sorted(self.lateness)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return f"{statistics.median(ordered):6.1f} {p99:6.1f} {ordered[-1]:6.1f}"


def lateness(accepted_at: list[float], due: float) -> list[float]:
    return [at - due for at in accepted_at]


# --- the contenders -----------------------------------------------------------------
def prebuilt_emails(url: str, count: int, due: dt.datetime) -> list[Email]:
    """The emails the scheduler would send, composed ahead (not timed)."""
    engine = connect(url)
    seed_due_emails(engine, count, due, steps=STEPS, reps=REPS)
    with Session(engine) as session:
        sends = list(session.exec(select(Send).where(Send.status == SendStatus.PLANNED)))
        drafts = [draft_for(session, send) for send in sends]
    engine.dispose()
    return [
        compose_email(d, mailbox="relay", message_id=new_message_id(d.sender_email or "x@example.com"), date=due)
        for d in drafts
    ]


def plain_loop(port: int, emails: list[Email]) -> tuple[float, float]:
    started, start = time.time(), time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", port)
    for email in emails:
        smtp.sendmail(email.sender, email.recipients, email.data)
    smtp.quit()
    return time.perf_counter() - start, started


def apscheduler(port: int, emails: list[Email], threads: int) -> tuple[float, float]:
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    done = threading.Semaphore(0)

    def send_one(email: Email) -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail(email.sender, email.recipients, email.data)
        done.release()

    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(threads)})
    started, start = time.time(), time.perf_counter()
    scheduler.start()
    run_at = dt.datetime.now(dt.UTC)
    for email in emails:
        scheduler.add_job(send_one, "date", run_date=run_at, args=[email], misfire_grace_time=None)
    for _ in emails:
        done.acquire()
    elapsed = time.perf_counter() - start
    scheduler.shutdown()
    return elapsed, started


def _worker(url: str, smtp_url: str, connections: int, ready: mp.Barrier, results: mp.Queue) -> None:  # type: ignore[type-arg]
    settings = load_settings(
        database_url=url, smtp_url=smtp_url, smtp_max_connections=connections, scheduler_interval=1.0
    )
    engine = make_engine(url)
    scheduler = Scheduler(
        engine, SystemClock(), relay_for(settings), RecordingNotifier(), settings
    )  # as `bot worker` builds it
    ready.wait()
    sent = 0
    while True:  # as Scheduler.run, until every email went
        result = scheduler.tick()
        sent += result.sent
        with Session(engine) as session:
            due = (col(Send.status) == SendStatus.PLANNED) & (col(Send.due_at) <= dt.datetime.now(dt.UTC))
            if not session.exec(select(func.count()).where(due)).one():
                break
        if result.idle:
            time.sleep(settings.scheduler_interval)
    results.put(sent)
    engine.dispose()


def scheduler_run(
    url: str, smtp_url: str, count: int, workers: int, connections: int, due: dt.datetime
) -> tuple[float, float]:
    engine = connect(url)
    seed_due_emails(engine, count, due, steps=STEPS, reps=REPS)
    with engine.begin() as connection:
        # Fresh statistics for the query planner, as autovacuum keeps them on a live
        # PostgreSQL database (without them it guesses sequential scans for a while).
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    ready = mp.Barrier(workers + 1)
    results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    processes = [mp.Process(target=_worker, args=(url, smtp_url, connections, ready, results)) for _ in range(workers)]
    for process in processes:
        process.start()
    ready.wait()  # every worker is connected and waiting: start the clock
    started, start = time.time(), time.perf_counter()
    sent = sum(results.get(timeout=1800) for _ in processes)
    elapsed = time.perf_counter() - start
    for process in processes:
        process.join()
    assert sent == count, f"{sent} of {count} sent"
    return elapsed, started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"))
    args = parser.parse_args()
    if args.latency_ms <= 0:
        parser.error("--latency-ms must be above 0: the run with L = 0 is part of every run")
    logging.basicConfig(level=logging.ERROR)
    count, latency, c = args.emails, args.latency_ms / 1000, args.connections
    runs: dict[str, Run] = {}

    def timed(name: str, connections: int, go) -> Run:  # type: ignore[no-untyped-def]
        with Server(latency, connections) as server:
            seconds, due = go(server)  # every email is due when the contender starts
        run = Run(seconds, lateness(server.accepted_at, due), server.refused)
        runs[name] = run
        return run

    with tempfile.TemporaryDirectory() as folder:
        now = dt.datetime.now(dt.UTC)
        emails = prebuilt_emails(f"sqlite:///{folder}/emails.db", count, now)
        timed(f"APScheduler 3, {c} threads", c, lambda s: apscheduler(s.port, emails, c))
        timed(
            "scheduler, SQLite, 1 worker",
            c,
            lambda s: scheduler_run(f"sqlite:///{folder}/1.db", s.url, count, 1, c, now),
        )
        if args.postgres:
            for workers in (1, 2):
                schema = PostgresSchema(args.postgres)
                name = f"scheduler, PostgreSQL, {workers} worker{'s' if workers > 1 else ''}"
                try:
                    timed(
                        name,
                        c * workers,
                        lambda s, w=workers, url=schema.url: scheduler_run(url, s.url, count, w, c * w, now),
                    )
                finally:
                    schema.drop()
        # The same with a server that answers at once: the client's own cost.
        latency = 0.0
        zero = {"plain smtplib loop, 1 connection": timed("L=0 plain loop", c, lambda s: plain_loop(s.port, emails))}
        zero["scheduler, SQLite, 1 worker"] = timed(
            "L=0 scheduler", c, lambda s: scheduler_run(f"sqlite:///{folder}/0.db", s.url, count, 1, c, now)
        )

    limit = c / (args.latency_ms / 1000)
    aps = runs[f"APScheduler 3, {c} threads"].rate(count)
    print(
        f"\n{count:,} emails from {REPS} reps, all due at once; server: {args.latency_ms:g} ms per message, {c} connections"
    )
    print(
        f"the limit C/L = {limit:,.0f} emails/s (two workers: a server allowing {2 * c} connections, limit {2 * limit:,.0f})\n"
    )
    print(f"{'':34} {'emails/s':>9} {'x limit':>8} {'x APSch.':>9}   lateness s: {'p50':>6} {'p99':>6} {'max':>6}")
    one_pg = runs.get("scheduler, PostgreSQL, 1 worker")
    for name, run in runs.items():
        if name.startswith("L=0"):
            continue
        rate = run.rate(count)
        own_limit = limit * (2 if "2 workers" in name else 1)
        print(f"{name:34} {rate:9.0f} {rate / own_limit:8.2f} {rate / aps:9.2f}   {'':12}{run.late()}")
    if one_pg and "scheduler, PostgreSQL, 2 workers" in runs:
        print(
            f"\ntwo PostgreSQL workers: {runs['scheduler, PostgreSQL, 2 workers'].rate(count) / one_pg.rate(count):.2f} x one"
        )
    plain = zero["plain smtplib loop, 1 connection"].rate(count)
    print(f"\nwith L = 0 ({os.cpu_count()} CPUs):")
    for name, run in zero.items():
        print(f"{name:34} {run.rate(count):9.0f} {run.rate(count) / plain:8.2f} x the plain loop")
    print(
        "\ngoals: >= 0.90 x limit, > 1.00 x APScheduler, two PostgreSQL workers >= 1.70 x one, L = 0 >= 0.50 x the plain loop"
    )


if __name__ == "__main__":
    main()
