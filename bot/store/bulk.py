"""SQL that PostgreSQL and SQLite write differently, in one place, for the services.

Many rows in one statement, `IN` any number of values, inserts that skip or update a
row that exists (`ON CONFLICT`), and claims that skip rows another worker holds.
PostgreSQL gets arrays (`unnest`, `= ANY`), SQLite `json_each`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Dialect, Index, Select, Table, any_, bindparam, cast, func, true
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
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


def skipping_locked(session: Session, query: Select[Any]) -> Select[Any]:
    """A claim's SELECT: several workers on PostgreSQL each skip the rows another is
    claiming; SQLite has one writer at a time and needs nothing."""
    return query.with_for_update(skip_locked=True) if _dialect(session).name == "postgresql" else query
