"""Real databases for tests: a fresh SQLite file per test, and PostgreSQL.

PostgreSQL runs when TEST_DATABASE_URL names a database. Each test run gets a schema
of its own (so runs never see each other), migrated once; each test starts from
empty tables.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, text
from sqlmodel import SQLModel

from bot.store.db import make_engine, upgrade

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


def with_search_path(url: str, schema: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


class PostgresSchema:
    """One schema for the whole test run, emptied before each test."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.schema = f"test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        admin.dispose()
        self.url = with_search_path(base_url, self.schema)
        self.engine = make_engine(self.url)
        upgrade(self.engine)

    def fresh(self) -> Engine:
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with self.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return self.engine

    def drop(self) -> None:
        self.engine.dispose()
        admin = create_engine(self.base_url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        admin.dispose()


class SqliteTemplate:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "template.db"
        engine = make_engine(f"sqlite:///{self.path}")
        upgrade(engine)
        engine.dispose()

    def fresh(self, folder: Path) -> str:
        target = folder / "bot.db"
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"
