"""The store: migrations match the tables, and instants are aware UTC everywhere."""

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import Session

from bot.store.db import connect
from bot.store.models import Rep, SQLModel


def test_migrations_create_exactly_the_tables_the_models_describe(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_instants_come_back_aware_utc(session: Session):
    stockholm = dt.datetime(2026, 3, 29, 3, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    session.add(Rep(slack_user_id="U1", updated_at=stockholm))
    session.commit()
    session.expire_all()
    stored = session.get(Rep, "U1").updated_at
    assert stored == stockholm
    assert stored.utcoffset() == dt.timedelta(0)


def test_a_naive_instant_is_refused(session: Session):
    session.add(Rep(slack_user_id="U1", updated_at=dt.datetime(2026, 1, 1)))
    with pytest.raises(Exception, match="naive"):
        session.commit()


def test_a_fresh_sqlite_file_is_brought_up_to_date_on_first_use(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'new.db'}")
    assert {"campaign", "step", "person", "enrollment", "send", "rep", "digest"} <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
