"""`bot worker` processes against PostgreSQL and a real SMTP server: exactly once, even when killed.

PostgreSQL only (TEST_DATABASE_URL): several workers claim with row locks that skip
locked rows. The tests wait for events (emails arriving, rows settling), bounded by
generous timeouts, never for a time.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from bot.store.db import make_engine
from bot.store.models import Enrollment, Person, Send, SendStatus
from tests.support.databases import PostgresSchema
from tests.support.due_emails import seed_due_emails
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.postgres
CONNECTIONS = 5  # the relay's connection limit (SMTP_MAX_CONNECTIONS), shared by the workers


@pytest.fixture
def database(postgres_schema: PostgresSchema) -> Iterator[tuple[str, Engine]]:
    postgres_schema.fresh()
    engine = make_engine(postgres_schema.url)
    yield postgres_schema.url, engine
    engine.dispose()


@pytest.fixture
def start_worker(database: tuple[str, Engine], tmp_path: Path) -> Iterator[Callable[[SmtpSink], subprocess.Popen]]:
    workers: list[subprocess.Popen] = []

    def start(sink: SmtpSink) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": database[0],
            "SMTP_URL": sink.url,
            "SCHEDULER_INTERVAL": "0.2",
            "SCHEDULER_LEASE_SECONDS": "3",
            "SMTP_MAX_CONNECTIONS": str(CONNECTIONS),
        }
        env.pop("SLACK_BOT_TOKEN", None)
        log = open(tmp_path / f"worker-{len(workers)}.log", "wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"], cwd=tmp_path, env=env, stdout=log, stderr=log
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def wait_until(condition: Callable[[], bool], timeout: float = 180.0) -> None:
    """Poll for an event (with a generous bound); a test fails rather than hangs."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def statuses(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(dict(session.exec(select(Send.status, func.count()).group_by(Send.status)).all()))  # type: ignore[arg-type]


def recipients_by_status(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        rows = session.exec(
            select(Person.email, Send.status)
            .join(Enrollment, Enrollment.person_id == Person.id)
            .join(Send, Send.enrollment_id == Enrollment.id)  # type: ignore[arg-type]
        ).all()
    return dict(rows)


def test_three_workers_deliver_each_of_2000_emails_exactly_once(database, start_worker):
    _, engine = database
    seed_due_emails(engine, 2_000, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))

    with SmtpSink() as sink:
        workers = [start_worker(sink) for _ in range(3)]
        assert sink.wait_for(2_000, timeout=300)
        wait_until(lambda: statuses(engine)[SendStatus.SENT] == 2_000)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        assert [worker.wait(60) for worker in workers] == [0, 0, 0]

    arrived = Counter(received.rcpt_tos[0] for received in sink.messages)
    assert len(arrived) == 2_000 and set(arrived.values()) == {1}
    assert set(sink.counts().values()) == {1}, "every Message-ID arrived once"
    assert statuses(engine) == Counter({SendStatus.SENT: 2_000})


def test_two_workers_share_the_relays_connection_limit_and_both_deliver(database, start_worker):
    _, engine = database
    seed_due_emails(engine, 1_000, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))

    with SmtpSink(latency=0.01, max_connections=CONNECTIONS) as sink:
        workers = [start_worker(sink) for _ in range(2)]
        assert sink.wait_for(1_000, timeout=300)
        wait_until(lambda: statuses(engine)[SendStatus.SENT] == 1_000)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        assert [worker.wait(60) for worker in workers] == [0, 0]

    assert sink.most_connections <= CONNECTIONS and sink.refused_connections == 0, "the limit held across both"
    assert set(sink.counts().values()) == {1} and len(sink.messages) == 1_000
    with Session(engine) as session:
        by_worker = Counter(session.exec(select(Send.claimed_by)).all())
    assert len(by_worker) == 2, f"both workers delivered a share: {by_worker}"


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(database, start_worker):
    _, engine = database
    seed_due_emails(engine, 1_000, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))

    with SmtpSink(latency=0.01) as sink:
        doomed = start_worker(sink)
        assert sink.wait_for(100, timeout=120)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(30)
        killed_at = sink.count
        start_worker(sink)
        wait_until(lambda: not ({SendStatus.PLANNED, SendStatus.SENDING} & set(statuses(engine))))

    assert killed_at < 1_000, "the worker was killed mid-run"
    arrived = Counter(received.rcpt_tos[0] for received in sink.messages)
    outcome = recipients_by_status(engine)
    assert set(outcome.values()) <= {SendStatus.SENT, SendStatus.UNCERTAIN}
    assert all(arrived[email] == 1 for email, status in outcome.items() if status == SendStatus.SENT)
    assert all(arrived[email] <= 1 for email, status in outcome.items() if status == SendStatus.UNCERTAIN)
    assert len(outcome) == 1_000 and set(arrived) <= set(outcome)
    uncertain = sum(status == SendStatus.UNCERTAIN for status in outcome.values())
    assert uncertain <= 2 * CONNECTIONS, f"{uncertain} uncertain: at most two emails per open connection"
    assert sink.most_connections > 1, "the worker was killed with several connections open"
