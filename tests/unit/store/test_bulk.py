"""The SQL the two databases write differently: the same answers on SQLite and PostgreSQL."""

import datetime as dt

from sqlalchemy import select
from sqlmodel import Session

from bot.store import bulk
from bot.store.models import Digest, Person, Rep

NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
PERSON = Person.__table__
REP = Rep.__table__
DIGEST = Digest.__table__


def test_insert_many_skips_rows_that_exist_and_returns_the_others(session: Session):
    session.add(Person(email="ada@example.com", first_name="Ada", created_at=NOW))
    session.flush()
    rows = [{"email": "ada@example.com", "first_name": "Other"}, {"email": "bob@example.com", "first_name": "Bob"}]

    inserted = bulk.insert_many(
        session, PERSON, rows, {"created_at": NOW, "fields": {}}, PERSON.c.email, skip_existing=[PERSON.c.email]
    )

    assert [email for (email,) in inserted] == ["bob@example.com"]
    people = session.execute(select(PERSON.c.email, PERSON.c.first_name, PERSON.c.created_at).order_by(PERSON.c.email))
    assert [tuple(row) for row in people] == [("ada@example.com", "Ada", NOW), ("bob@example.com", "Bob", NOW)]


def test_in_values_takes_any_number_of_values(session: Session):
    emails = [f"p{n}@example.com" for n in range(5_000)]
    bulk.insert_many(
        session, PERSON, [{"email": email} for email in emails], {"created_at": NOW, "fields": {}}, PERSON.c.id
    )

    found = session.execute(select(PERSON.c.email).where(bulk.in_values(session, PERSON.c.email, emails[::2])))

    assert sorted(email for (email,) in found) == sorted(emails[::2])


def test_upsert_inserts_then_updates(session: Session):
    for name in ("Rita", "Rita Rep"):
        bulk.upsert(session, REP, {"slack_user_id": "U1", "name": name, "updated_at": NOW}, key=["slack_user_id"])

    assert session.execute(select(REP.c.name)).scalars().all() == ["Rita Rep"]


def test_insert_unless_exists_says_whether_it_inserted(session: Session):
    values = {"rep_id": "U1", "local_date": NOW.date(), "created_at": NOW}

    assert bulk.insert_unless_exists(session, DIGEST, values, key=["rep_id", "local_date"]) is True
    assert bulk.insert_unless_exists(session, DIGEST, values, key=["rep_id", "local_date"]) is False
