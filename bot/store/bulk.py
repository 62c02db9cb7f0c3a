"""SQL that PostgreSQL and SQLite write differently, in one place, for the services.

Many rows in one statement, `IN` any number of values, inserts that skip or update a
row that exists (`ON CONFLICT`), and claims that skip rows another worker holds (the
work queues' too).
PostgreSQL gets arrays (`unnest`, `= ANY`), SQLite `json_each`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Dialect, Index, Select, Table, any_, bindparam, cast, exists, func, or_, true, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased
from sqlmodel import Session


def _dialect(session: Session) -> Dialect:
    return session.get_bind().dialect


def _insert(session: Session) -> Any:
    return postgresql.insert if _dialect(session).name == "postgresql" else sqlite.insert


def insert_many(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    same: dict[str, Any],
    *returning: Any,
    skip_existing: Index | Sequence[Column[Any]] | None = None,
) -> list[Any]:
    """Insert `rows` (all with the same keys), each with the values `same`, in one
    statement; return `returning` for the rows inserted.

    `skip_existing`: a unique index (or columns) on which a row that exists already
    (say, stored by someone else meanwhile) is skipped rather than an error.
    """
    if not rows:
        return []
    dialect = _dialect(session)
    statement = _insert_from_arrays(table, rows, same, dialect)
    if isinstance(skip_existing, Index):
        statement = statement.on_conflict_do_nothing(
            index_elements=list(skip_existing.columns),
            index_where=skip_existing.dialect_kwargs.get(f"{dialect.name}_where"),
        )
    elif skip_existing is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(skip_existing))
    return list(session.execute(statement.returning(*returning)).all())


def _insert_from_arrays(table: Table, rows: list[dict[str, Any]], same: dict[str, Any], dialect: Dialect) -> Any:
    """INSERT ... SELECT over the rows sent as arrays: one statement, a handful of values.

    Multi-row VALUES (SQLAlchemy's insertmanyvalues) binds one value per row and column,
    each converted in Python and, with psycopg, each placeholder parsed on the client:
    for 10,000 people that was most of the time (seconds on PostgreSQL). Here the values
    every row shares (the campaign, the launch time ...) are bound once and each other
    column as one array: PostgreSQL `unnest(array, ...)`, SQLite `json_each`.
    """
    varying = list(rows[0])
    columns = [[row[name] for row in rows] for name in varying]
    read: list[Any]
    if dialect.name == "postgresql":
        arrays = [bindparam(None, values, type_=ARRAY(table.c[name].type)) for name, values in zip(varying, columns)]
        unnest = func.unnest(*arrays).table_valued(*varying).render_derived()
        read = [cast(unnest.c[name], table.c[name].type) for name in varying]
        insert: Any = postgresql.insert
    else:
        converted = [_bound(table.c[name].type, dialect, values) for name, values in zip(varying, columns)]
        each = func.json_each(bindparam(None, json.dumps(list(zip(*converted))))).table_valued("value")
        read = [func.json_extract(each.c.value, f"$[{index}]") for index in range(len(varying))]
        insert = sqlite.insert
    shared = [bindparam(None, value, type_=table.c[name].type) for name, value in same.items()]
    # SQLite reads `FROM x ON CONFLICT` as a join unless the SELECT has a WHERE.
    select_rows = core_select(*read, *shared).where(true())
    return insert(table).from_select([*varying, *same], select_rows)


def _bound(type_: Any, dialect: Dialect, values: list[Any]) -> list[Any]:
    """Values as the column type would bind them (an instant as SQLite stores it ...)."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    return [process(value) for value in values] if process else values


def in_values(session: Session, column: Any, values: list[Any]) -> Any:
    """`column IN values` with the values bound as one array, whatever their number."""
    if _dialect(session).name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(core_select(func.json_each(bindparam(None, json.dumps(values))).table_valued("value").c.value))


def insert_unless_exists(session: Session, table: Table, values: dict[str, Any], key: list[str]) -> bool:
    """Insert one row unless a row with the same `key` exists; whether it was inserted."""
    statement = _insert(session)(table).values(**values).on_conflict_do_nothing(index_elements=key)
    return session.execute(statement.returning(*(table.c[name] for name in key))).first() is not None


def upsert(session: Session, table: Table, values: dict[str, Any], key: list[str]) -> None:
    """Insert the row, or update the one with the same `key` to `values`."""
    statement = _insert(session)(table).values(**values)
    changed = {name: statement.excluded[name] for name in values if name not in key}
    session.execute(statement.on_conflict_do_update(index_elements=key, set_=changed))


def claim_oldest(
    session: Session,
    table: Table,
    per: str,
    *,
    now: dt.datetime,
    worker_id: str,
    limit: int,
    lease: dt.timedelta,
    **values: Any,
) -> list[int]:
    """Lease up to `limit` due rows of a work queue to `worker_id`, oldest first; their ids.

    A work queue's rows have `done_at`, `next_at`, `lease_until` and `claimed_by`. Only
    the oldest row not done of each `per` (a rep's notices, a send's sync items) is due,
    so that each one's rows go in order. `values`: more columns the claim sets.
    """
    earlier = aliased(table)
    oldest_of_its_kind = ~exists().where(
        earlier.c[per] == table.c[per], earlier.c.done_at.is_(None), earlier.c.id < table.c.id
    )
    due = (
        core_select(table.c.id)
        .where(
            table.c.done_at.is_(None),
            table.c.next_at <= now,
            or_(table.c.lease_until.is_(None), table.c.lease_until < now),
            oldest_of_its_kind,
        )
        .order_by(table.c.id)
        .limit(limit)
    )
    statement = (
        update(table)
        .where(table.c.id.in_(skipping_locked(session, due).scalar_subquery()))
        .values(lease_until=now + lease, claimed_by=worker_id, **values)
        .returning(table.c.id)
    )
    return list(session.execute(statement).scalars())


def skipping_locked(session: Session, query: Select[Any]) -> Select[Any]:
    """A claim's SELECT: several workers on PostgreSQL each skip the rows another is
    claiming; SQLite has one writer at a time and needs nothing."""
    return query.with_for_update(skip_locked=True) if _dialect(session).name == "postgresql" else query
