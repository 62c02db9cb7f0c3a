"""The store: migrations match the tables, and instants are aware UTC everywhere."""

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, update
from sqlalchemy.exc import StatementError
from sqlmodel import Session, col

from bot.core.rules import SendIn, SendOption, StepKind
from bot.store.db import connect
from bot.store.models import Campaign, Enrollment, EnrollmentStatus, Rep, Send, SendStatus, SQLModel, Step
from tests.support.sends import make_task


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
    assert {"campaign", "step", "person", "enrollment", "send", "rep", "digest"} <= set(
        inspect(engine).get_table_names()
    )
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_states_are_their_enums_stored_as_their_values(session: Session):
    task = make_task(session, due_at=dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC))
    session.expire_all()

    send = session.get(Send, task.id)
    enrollment = session.get(Enrollment, send.enrollment_id)
    step = session.get(Step, send.step_id)
    campaign = session.get(Campaign, enrollment.campaign_id)
    assert (send.kind, send.status, enrollment.status, step.send, campaign.send_in) == (
        StepKind.TASK,
        SendStatus.QUEUED,
        EnrollmentStatus.ACTIVE,
        SendOption.TASK,
        SendIn.CAMPAIGN,
    )
    assert [type(value) for value in (send.kind, send.status, enrollment.status, step.send, campaign.send_in)] == [
        StepKind,
        SendStatus,
        EnrollmentStatus,
        SendOption,
        SendIn,
    ]
    raw = session.connection().exec_driver_sql("SELECT kind, status FROM send").one()
    assert tuple(raw) == ("task", "queued")  # the values as before: no data migration


def test_a_state_its_enum_does_not_have_is_refused(session: Session):
    task = make_task(session, due_at=dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC))

    with pytest.raises(StatementError, match="'lost' is not a valid SendStatus"):
        session.execute(update(Send).where(col(Send.id) == task.id).values(status="lost"))
