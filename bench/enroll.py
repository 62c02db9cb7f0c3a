"""Adding 10,000 people to a 5-step campaign, against a plain DB-API executemany.

    python bench/enroll.py [POSTGRESQL_URL] [--people N] [--rounds N] [--profile]

On SQLite (temporary files) and on PostgreSQL (BENCH_DATABASE_URL or the argument,
default postgresql+psycopg://postgres@127.0.0.1:5432/test; fresh schemas, dropped at
the end). Each round times, on empty tables:

- add:   check_people (email-validator) + add_people + commit, as `/campaign add` does;
- plain: the very rows `add` stored (people, enrollments, sends, ids included), inserted
         into identical tables with sqlite3 / psycopg `executemany` + commit.

The best round of each is reported, with the ratio add / plain (goal: within 5x).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine
from sqlmodel import Session

from bot.services.enrollments import add_people
from bot.services.people import PersonInput, check_people, parse_people
from bot.store.db import connect
from bot.store.models import Campaign, Step

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SEND_AT = dt.datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TABLES = ("person", "enrollment", "send")  # in insert order
Rows = dict[str, tuple[list[str], list[tuple[Any, ...]]]]  # table -> (columns, rows)

FIRST = (
    ["Ada", "Alan", "Grace", "Linus", "Margaret", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "John", "Hedy", "Tim", "Katherine", "Dennis", "Annie", "Niklaus", "Shafi", "Leslie", "Sophie", "Guido", "Bjarne", "Jean", "Karen", "Anita", "Vint", "Whitfield", "Adele", "Ivan"]
)
LAST = (
    ["Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "McCarthy", "Lamarr", "Berners-Lee", "Johnson", "Ritchie", "Easley", "Wirth", "Goldwasser", "Lamport", "Wilson", "Rossum", "Stroustrup", "Sammet", "Jones", "Borg", "Cerf", "Diffie", "Goldberg", "Sutherland"]
)
WORDS = (
    ["North", "Blue", "Iron", "Bright", "Silver", "Green", "Swift", "Open", "Stone", "River", "Summit", "Cedar", "Delta", "Harbor", "Pixel", "Quantum", "Atlas", "Nova", "Apex", "Maple"]
)
KINDS = (
    ["Analytics", "Logistics", "Health", "Foods", "Systems", "Labs", "Robotics", "Media", "Energy", "Capital", "Works", "Studio", "Bank", "Cloud", "Motors"]
)
TITLES = ["CTO", "VP Sales", "Head of Data", "Engineering Manager", "Buyer", "Founder", "COO", "IT Director"]
STEPS = [  # the worked example of the spec
    dict(day=1, send="choose", time=None),
    dict(day=2, send="at_time", time=dt.time(8, 30)),
    dict(day=2, send="same_as_previous", time=None),
    dict(day=4, send="thread", time=None),
    dict(day=4, send="task", time=None),
]


def realistic_people(count: int, seed: int = 7) -> list[PersonInput]:
    """`count` distinct people at 300 companies, addresses as a CRM export has them."""
    rng = random.Random(seed)
    names = [f"{a} {b}" for a in WORDS for b in KINDS]
    rng.shuffle(names)
    companies = {
        name: name.lower().replace(" ", "") + rng.choice([".com", ".io", ".co.uk", ".de"]) for name in names[:300]
    }
    people: list[PersonInput] = []
    taken: set[str] = set()
    while len(people) < count:
        first, last, company = rng.choice(FIRST), rng.choice(LAST), rng.choice(list(companies))
        domain = companies[company]
        local = f"{first}.{last}".lower() if rng.random() < 0.8 else f"{first[0]}{last}".lower()
        if f"{local}@{domain}" in taken:
            local = f"{local}{len(people)}"
        taken.add(f"{local}@{domain}")
        typed = domain.capitalize() if rng.random() < 0.05 else domain  # normalized to lower case
        people.append(PersonInput(f"{local}@{typed}", first, last, company, rng.choice(TITLES)))
    return people


def make_campaign(engine: Engine) -> int:
    with Session(engine) as session:
        campaign = Campaign(name="Bench", owner_id="U0BENCH", timezone="Europe/Stockholm")
        session.add(campaign)
        session.flush()
        for position, step in enumerate(STEPS, start=1):
            session.add(Step(campaign_id=campaign.id, version=1, position=position, subject="Hi", body="Hi", **step))
        session.commit()
        assert campaign.id is not None
        return campaign.id


def bot_add(engine: Engine, campaign_id: int, people: list[PersonInput]) -> dict[str, float]:
    """What `/campaign add` does, timed in its two parts."""
    started = time.perf_counter()
    valid, invalid = check_people(people)
    checked = time.perf_counter()
    with Session(engine, expire_on_commit=False) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        result = add_people(
            session, campaign, "U0BENCH", valid, now=NOW, send_at=SEND_AT, invalid=invalid, smtputf8=lambda: None
        )
        session.commit()
    done = time.perf_counter()
    assert len(result.added) == len(people), (len(result.added), result.lines[:3])
    return {"check": checked - started, "add": done - checked, "total": done - started}


# --- the two databases -------------------------------------------------------------


class Sqlite:
    name = "SQLite"

    def __init__(self, folder: Path) -> None:
        self.bot_path, self.plain_path = folder / "bot.db", folder / "plain.db"
        self.engine = connect(f"sqlite:///{self.bot_path}")
        self.plain_engine = connect(f"sqlite:///{self.plain_path}")

    def raw(self, path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA journal_mode=WAL")  # as bot.store.db sets it
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        return connection

    def rows(self) -> Rows:
        with self.raw(self.bot_path) as connection:
            return {table: _rows(connection.execute(f'SELECT * FROM "{table}"')) for table in TABLES}

    def empty(self) -> None:
        for path in (self.bot_path, self.plain_path):
            with self.raw(path) as connection:
                for table in reversed(TABLES):
                    connection.execute(f'DELETE FROM "{table}"')

    def plain(self, rows: Rows) -> float:
        with closing(self.raw(self.plain_path)) as connection:
            return plain_insert(connection, connection.executemany, rows, lambda column: "?")

    def close(self) -> None:
        self.engine.dispose()
        self.plain_engine.dispose()


class Postgres:
    name = "PostgreSQL"

    def __init__(self, url: str) -> None:
        import psycopg

        self.psycopg = psycopg
        self.url = url
        self.dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        suffix = uuid.uuid4().hex[:8]
        self.schemas = {"bot": f"bench_bot_{suffix}", "plain": f"bench_plain_{suffix}"}
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            for schema in self.schemas.values():
                connection.execute(f'CREATE SCHEMA "{schema}"')
        self.engine = connect(_with_search_path(url, self.schemas["bot"]))
        self.plain_engine = connect(_with_search_path(url, self.schemas["plain"]))

    def raw(self, which: str) -> Any:
        return self.psycopg.connect(self.dsn, options=f"-csearch_path={self.schemas[which]}")

    def rows(self) -> Rows:
        with self.raw("bot") as connection:
            rows = {}
            for table in TABLES:
                # JSON travels as text, exactly as stored.
                cursor = connection.execute(f'SELECT * FROM "{table}" LIMIT 0')
                columns = [c.name for c in cursor.description]
                select = ", ".join(f'"{c}"::text' if c == "fields" else f'"{c}"' for c in columns)
                rows[table] = (columns, connection.execute(f'SELECT {select} FROM "{table}"').fetchall())
            return rows

    def empty(self) -> None:
        for which in self.schemas:
            with self.raw(which) as connection:
                connection.execute(f"TRUNCATE {_names(TABLES)} RESTART IDENTITY CASCADE")

    def plain(self, rows: Rows) -> float:
        with self.raw("plain") as connection, connection.cursor() as cursor:
            return plain_insert(connection, cursor.executemany, rows, lambda c: "%s::json" if c == "fields" else "%s")

    def close(self) -> None:
        self.engine.dispose()
        self.plain_engine.dispose()
        with self.psycopg.connect(self.dsn, autocommit=True) as connection:
            for schema in self.schemas.values():
                connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def plain_insert(connection: Any, executemany: Callable[..., Any], rows: Rows, mark: Callable[[str], str]) -> float:
    """The baseline: one DB-API executemany per table, then commit."""
    started = time.perf_counter()
    for table, (columns, values) in rows.items():
        marks = ", ".join(mark(column) for column in columns)
        executemany(f'INSERT INTO "{table}" ({_names(columns)}) VALUES ({marks})', values)
    connection.commit()
    return time.perf_counter() - started


def _rows(cursor: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
    return [c[0] for c in cursor.description], cursor.fetchall()


def _names(names: Any) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


# --- running -------------------------------------------------------------------------


def measure(database: Sqlite | Postgres, people: list[PersonInput], rounds: int, profile: bool) -> None:
    campaign_id = make_campaign(database.engine)
    assert make_campaign(database.plain_engine) == campaign_id  # the same campaign and steps
    best: dict[str, float] = {}
    for _ in range(rounds):
        database.empty()
        times = bot_add(database.engine, campaign_id, people)
        times["plain"] = database.plain(database.rows())
        best = {key: min(value, best.get(key, value)) for key, value in times.items()}
    rows = sum(len(values) for _, values in database.rows().values())
    print(
        f"{database.name:<10} {len(people)} people, {rows} rows | add {best['total']:.3f} s"
        f" (email-validator {best['check']:.3f} s + add_people {best['add']:.3f} s)"
        f" | plain executemany {best['plain']:.3f} s | ratio {best['total'] / best['plain']:.1f}x"
        f" (add_people alone {best['add'] / best['plain']:.1f}x)"
    )
    if profile:
        database.empty()
        profiler = cProfile.Profile()
        profiler.runcall(bot_add, database.engine, campaign_id, people)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def time_it(work: Callable[[], Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print where add spends its time")
    parser.add_argument("--sqlite-only", action="store_true")
    options = parser.parse_args()

    people = realistic_people(options.people)
    listing = "\n".join(f"{p.first_name} {p.last_name} <{p.email}>" for p in people)
    parsing = time_it(lambda: parse_people(listing), options.rounds)
    print(
        f"parse_people: {len(people)} 'Name <address>' lines in {parsing:.3f} s ({parsing / len(people) * 1e6:.1f} µs each)"
    )

    with tempfile.TemporaryDirectory() as folder:
        database: Sqlite | Postgres = Sqlite(Path(folder))
        try:
            measure(database, people, options.rounds, options.profile)
        finally:
            database.close()
    if not options.sqlite_only:
        database = Postgres(options.url)
        try:
            measure(database, people, options.rounds, options.profile)
        finally:
            database.close()


if __name__ == "__main__":
    main()
