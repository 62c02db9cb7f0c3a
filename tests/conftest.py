"""Fixtures every test may use: the clock and real databases (SQLite, PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine
from sqlmodel import Session

from bot.clock import FixedClock
from bot.store.db import make_engine
from tests.support.databases import POSTGRES_URL, PostgresSchema, SqliteTemplate

postgres_ran = 0

# CI explores the same examples every run (a failure there is reproducible); locally
# each run explores new ones.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[PostgresSchema]:
    if not POSTGRES_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    schema = PostgresSchema(POSTGRES_URL)
    yield schema
    schema.drop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path, sqlite_template: SqliteTemplate) -> str:
    """The URL of an empty, migrated database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_template.fresh(tmp_path)
    schema: PostgresSchema = request.getfixturevalue("postgres_schema")
    schema.fresh()
    return schema.url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def clock() -> FixedClock:
    """Wednesday 2026-12-02 09:00 UTC, until a test moves it."""
    return FixedClock(dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global postgres_ran
    if report.when == "call" and report.passed and "postgresql" in report.nodeid:
        postgres_ran += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI sets TEST_DATABASE_URL: a run in which no PostgreSQL test passed is a failure.
    if POSTGRES_URL and os.environ.get("CI") and postgres_ran == 0 and session.testscollected:
        print("\nTEST_DATABASE_URL is set but no PostgreSQL test passed")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
