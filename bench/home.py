"""Drawing a rep's Home tab with 10, 1,000 and 10,000 queued tasks.

    python bench/home.py [POSTGRESQL_URL] [--rounds N] [--sqlite-only] [--profile]

On SQLite (a temporary file) and on PostgreSQL (BENCH_DATABASE_URL or the argument,
default postgresql+psycopg://postgres@127.0.0.1:5432/test; a fresh schema, dropped at
the end). For each size the rep has that many queued tasks (a task campaign, one
person each) and the Home build is timed as `SlackNotifier.publish_home` does it, less
the Slack call: agenda_for + home_view + the view as Slack gets it (to_dict), in a
session of its own. The best round is reported, with the ratio to the smallest size
(goal: 10,000 within 1.5x of 10).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, select
from sqlmodel import Session

from bot.services.agenda import agenda_for
from bot.slack.blocks.home import HOME_EMAILS, HOME_TASKS, home_view
from bot.store.db import connect
from bot.store.models import Campaign, Enrollment, Person, Rep, Send, Step

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ZONE = "Europe/Stockholm"
REP = "U0BENCH"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SIZES = (10, 1_000, 10_000)
BODY = "Hi {{ first_name }},\n\nI saw that {{ company }} is hiring. Shall we talk this week?\n\n{{ sender.first_name }}"


def fill(engine: Engine, tasks: int) -> None:
    """A rep with `tasks` queued tasks of one task campaign, due over the last days."""
    with Session(engine) as session:
        session.add(
            Rep(slack_user_id=REP, name="Rita Rep", first_name="Rita", email="rita@seller.example", timezone=ZONE)
        )
        campaign = Campaign(name="Bench", owner_id=REP, timezone=ZONE)
        session.add(campaign)
        session.flush()
        step = Step(
            campaign_id=campaign.id,
            version=1,
            position=1,
            day=1,
            send="task",
            subject="Hello {{ first_name }}",
            body=BODY,
        )
        session.add(step)
        session.flush()
        session.execute(
            insert(Person),
            [
                dict(
                    email=f"person{n}@buyer{n % 300}.example",
                    first_name=f"Ada{n}",
                    last_name="Lovelace",
                    company=f"Company {n % 300}",
                    fields={},
                    created_at=NOW,
                )
                for n in range(tasks)
            ],
        )
        people = session.execute(select(Person.id).order_by(Person.id)).scalars().all()  # type: ignore[arg-type]
        session.execute(
            insert(Enrollment),
            [
                dict(
                    campaign_id=campaign.id,
                    version=1,
                    person_id=person,
                    rep_id=REP,
                    status="active",
                    zone=ZONE,
                    launched_at=NOW,
                    created_at=NOW,
                )
                for person in people
            ],
        )
        enrollments = session.execute(select(Enrollment.id).order_by(Enrollment.id)).scalars().all()  # type: ignore[arg-type]
        session.execute(
            insert(Send),
            [
                dict(
                    enrollment_id=enrollment,
                    step_id=step.id,
                    position=1,
                    rep_id=REP,
                    kind="task",
                    status="queued",
                    due_at=NOW - dt.timedelta(minutes=n),
                    created_at=NOW,
                    updated_at=NOW,
                )
                for n, enrollment in enumerate(enrollments)
            ],
        )
        session.commit()


def build_home(engine: Engine) -> dict[str, Any]:
    """What publish_home does before calling Slack."""
    with Session(engine, expire_on_commit=False) as session:
        agenda = agenda_for(session, REP, NOW, ZONE, tasks=HOME_TASKS, emails=HOME_EMAILS)
        return home_view(agenda, ZoneInfo(ZONE), NOW).to_dict()


def best_of(engine: Engine, rounds: int) -> float:
    build_home(engine)  # warm: compiled templates and statements, as in a running bot
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        build_home(engine)
        best = min(best, time.perf_counter() - started)
    return best


class Sqlite:
    name = "SQLite"

    def __init__(self, folder: Path, size: int) -> None:
        self.engine = connect(f"sqlite:///{folder / f'home-{size}.db'}")

    def settle(self) -> None:
        pass

    def close(self) -> None:
        self.engine.dispose()


class Postgres:
    name = "PostgreSQL"

    def __init__(self, url: str, size: int) -> None:
        import psycopg

        self.psycopg = psycopg
        self.dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.schema = f"bench_home_{size}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{self.schema}"')
        options = quote(f"-csearch_path={self.schema}")
        self.engine = connect(f"{url}{'&' if '?' in url else '?'}options={options}")

    def settle(self) -> None:
        """Statistics and visibility as autovacuum leaves a table: without them a fresh bulk insert gets bad plans."""
        with self.psycopg.connect(self.dsn, autocommit=True, options=f"-csearch_path={self.schema}") as connection:
            connection.execute("VACUUM ANALYZE send, enrollment, person, campaign, step, rep")

    def close(self) -> None:
        self.engine.dispose()
        with self.psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{self.schema}" CASCADE')


def measure(make: Any, rounds: int, profile: bool) -> None:
    times: dict[int, float] = {}
    name = ""
    for size in SIZES:
        database = make(size)
        name = database.name
        try:
            fill(database.engine, size)
            database.settle()
            times[size] = best_of(database.engine, rounds)
            blocks = len(build_home(database.engine)["blocks"])
            print(f"{name:<10} {size:>6} queued tasks | Home built in {times[size] * 1000:7.1f} ms ({blocks} blocks)")
            if profile and size == SIZES[-1]:
                profiler = cProfile.Profile()
                profiler.runcall(build_home, database.engine)
                pstats.Stats(profiler).sort_stats("cumtime").print_stats(20)
        finally:
            database.close()
    smallest, middle, largest = SIZES
    print(
        f"{name:<10} ratio {largest:,} vs {smallest}: {times[largest] / times[smallest]:.2f}x (goal: within 1.5x);"
        f" {largest:,} vs {middle:,}: {times[largest] / times[middle]:.2f}x (both show {HOME_TASKS} tasks)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="print where the largest Home build spends its time")
    parser.add_argument("--sqlite-only", action="store_true")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        measure(lambda size: Sqlite(Path(folder), size), options.rounds, options.profile)
    if not options.sqlite_only:
        measure(lambda size: Postgres(options.url, size), options.rounds, options.profile)


if __name__ == "__main__":
    main()
