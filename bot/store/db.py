"""The database: one engine per URL, brought up to date by Alembic on first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError as MigrationError
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant will do: replicas starting together take turns at migrating.
MIGRATION_LOCK = 746_524_311


class DatabaseUnavailable(Exception):
    """The database cannot be opened or brought up to date; the message says why, without the password."""


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take the write lock up
        # front so two writers queue on busy_timeout instead of failing mid-way.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_connection.isolation_level = None  # transactions are begun by the "begin" event
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest migration; replicas on PostgreSQL take turns."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def connect(url: str) -> Engine:
    """An engine whose database is up to date; DatabaseUnavailable when it cannot be opened."""
    try:
        engine = make_engine(url)
    except SQLAlchemyError as exc:  # a driver that is not installed
        raise DatabaseUnavailable(f"cannot open the database: {_reason(exc)}") from None
    try:
        upgrade(engine)
    except (SQLAlchemyError, MigrationError) as exc:
        engine.dispose()
        reason = _reason(exc)
        if engine.url.password:
            reason = reason.replace(str(engine.url.password), "***")
        raise DatabaseUnavailable(f"cannot open the database {engine.url!r}: {reason}") from None
    return engine


def _reason(exc: Exception) -> str:
    """The driver's own words, first line only (SQLAlchemy adds its SQL and a link)."""
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
