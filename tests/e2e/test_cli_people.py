"""`bot rep set`, `bot campaign add` (people or a CSV file) and `bot campaign show`, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_sdk import WebClient
from sqlmodel import Session, select

from bot.cli import campaign as campaign_cli
from bot.cli import main
from bot.slack.profiles import ensure_rep
from bot.store.db import make_engine
from bot.store.models import Enrollment, Person, Rep, Send
from tests.support.fake_slack import FakeSlack

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "q4-outreach.yml")
REP = "U0123ABCD"
SEND_AT = "2037-12-02T15:00:00+01:00"  # far ahead: the command launches at the real now
HEADER = "email,first_name,last_name,company,title,time_zone,deal_size\n"
TASK_FIRST = """\
name: Tasks
timezone: Europe/Stockholm
steps:
  - day: 1
    send: task
    subject: Call {{ first_name }}
    body: A note.
"""


@dataclass
class Done:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


Bot = Callable[..., Done]


@pytest.fixture
def bot(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Bot:
    """`bot ARGS...` in this process, on a fresh database, in a folder of its own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)

    def run(*argv: str) -> Done:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Done(code, captured.out, captured.err)

    return run


@pytest.fixture
def q4(bot: Bot) -> Bot:
    """The README's example campaign, and its rep set without Slack."""
    assert bot("campaign", "import", EXAMPLE, "--owner", REP).code == 0
    assert (
        bot("rep", "set", REP, "--email", "rita@example.com", "--name", "Rita Rep", "--tz", "Europe/Stockholm").code
        == 0
    )
    return bot


def stored(db_url: str) -> tuple[list[Person], list[Enrollment], list[Send]]:
    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            people = list(session.exec(select(Person).order_by(Person.email)))
            return people, list(session.exec(select(Enrollment))), list(session.exec(select(Send)))
    finally:
        engine.dispose()


def write(tmp_path: Path, text: str | bytes, name: str = "people.csv") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


# --- bot rep set -----------------------------------------------------------------------


def test_rep_set_makes_a_rep_emails_can_go_out_from(bot: Bot, db_url: str) -> None:
    done = bot("rep", "set", REP, "--email", "Rita@Example.COM", "--name", "Rita  van Rep", "--tz", "Europe/Stockholm")

    assert (done.code, done.err) == (0, "")
    assert done.out == "rep U0123ABCD: Rita van Rep <rita@example.com>, time zone Europe/Stockholm\n"
    engine = make_engine(db_url)
    with Session(engine) as session:
        rep = session.get(Rep, REP)
        assert rep is not None
        assert (rep.name, rep.first_name, rep.last_name, rep.email, rep.timezone) == (
            "Rita van Rep",
            "Rita",
            "van Rep",
            "rita@example.com",
            "Europe/Stockholm",
        )
    engine.dispose()

    again = bot("rep", "set", REP, "--email", "rita@new.example")  # name and zone are kept

    assert again.out == "rep U0123ABCD: Rita van Rep <rita@new.example>, time zone Europe/Stockholm\n"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["U0123ABCD", "--email", "rita"], 'bot: --email "rita": An email address must have an @-sign.\n'),
        (
            ["U0123ABCD", "--email", "rita@example.com", "--tz", "Mars/Base"],
            'bot: --tz "Mars/Base" is not a known time zone: use an IANA name like Europe/Stockholm\n',
        ),
        (["rita", "--email", "rita@example.com"], 'bot: "rita" is not a Slack user ID like U0123ABCD\n'),
    ],
)
def test_rep_set_refuses_a_bad_email_zone_or_id_in_one_line(bot: Bot, args: list[str], error: str) -> None:
    done = bot("rep", "set", *args)

    assert (done.code, done.out, done.err) == (1, "", error)


def test_a_rep_set_without_slack_follows_their_slack_profile_once_they_use_the_bot(bot: Bot, db_url: str) -> None:
    bot("rep", "set", REP, "--email", "rita@example.com", "--name", "Rita Rep", "--tz", "Europe/Stockholm")
    engine = make_engine(db_url)
    now = dt.datetime.now(dt.UTC)
    with FakeSlack() as slack, Session(engine) as session:
        slack.add_user(REP, "Rita Slack", "rita@slack.example", "America/New_York")
        client = WebClient(token="xoxb-test-token", base_url=slack.url)

        rep = ensure_rep(session, client, REP, now)  # what every listener does first
        session.commit()

        assert (rep.name, rep.email, rep.timezone) == ("Rita Slack", "rita@slack.example", "America/New_York")
        assert len(slack.calls_to("users.info")) == 1
        ensure_rep(session, client, REP, now)  # fresh now: Slack is not asked again
        assert len(slack.calls_to("users.info")) == 1
    engine.dispose()


# --- bot campaign add ----------------------------------------------------------------


def test_add_answers_each_person_as_slack_does_then_sums_up(q4: Bot, db_url: str) -> None:
    q4("campaign", "add", "Q4 outreach", "--rep", REP, "--send-at", SEND_AT, "bob@example.com")

    done = q4(
        "campaign",
        "add",
        "Q4 outreach",
        "--rep",
        REP,
        "--send-at",
        SEND_AT,
        "Ada Lovelace <Ada@Example.com>, bob@example.com",
        "ada@",
        "ada@example.com",
    )

    assert (done.code, done.err) == (0, "")
    assert done.lines == [
        "added: ada@example.com",
        "already active: bob@example.com",
        "invalid: ada@: There must be something after the @-sign.",
        "Q4 outreach: 1 added, 1 already active, 1 invalid.",
    ]
    people, enrollments, sends = stored(db_url)
    assert [(p.email, p.first_name, p.last_name) for p in people] == [
        ("ada@example.com", "Ada", "Lovelace"),
        ("bob@example.com", "", ""),
    ]
    assert {e.rep_id for e in enrollments} == {REP}
    assert {s.due_at for s in sends} == {dt.datetime.fromisoformat(SEND_AT)}


@pytest.mark.parametrize(
    ("send_at", "error"),
    [
        (None, "bot: the first step is choose: a send-at date and time is required\n"),
        ("2020-12-02T15:00:00+01:00", "bot: the send-at time is in the past\n"),
        ("2037-12-02T15:00:00", 'bot: --send-at "2037-12-02T15:00:00" has no UTC offset: add one, like +01:00 or Z\n'),
    ],
)
def test_a_launch_error_refuses_the_whole_add(
    q4: Bot, db_url: str, tmp_path: Path, send_at: str | None, error: str
) -> None:
    when = ["--send-at", send_at] if send_at else []
    people = write(tmp_path, HEADER + "ada@example.com,Ada,,,,,\n")

    for source in (["bob@example.com"], ["--csv", people]):
        done = q4("campaign", "add", "Q4 outreach", "--rep", REP, *when, *source)

        assert (done.code, done.out, done.err) == (1, "", error)
    assert stored(db_url) == ([], [], [])


def test_a_send_at_for_a_task_first_step_refuses_the_add(q4: Bot, tmp_path: Path) -> None:
    q4("campaign", "import", write(tmp_path, TASK_FIRST, "tasks.yml"), "--owner", REP)

    done = q4("campaign", "add", "Tasks", "--rep", REP, "--send-at", SEND_AT, "ada@example.com")

    assert (done.code, done.err) == (
        1,
        "bot: a send-at time applies only when the first step is choose or at_time, not task\n",
    )


def test_add_needs_a_known_rep_a_campaign_and_people(q4: Bot) -> None:
    assert q4("campaign", "add", "Q4 outreach", "--rep", "U0NOBODY", "--send-at", SEND_AT, "a@example.com").err == (
        "bot: rep U0NOBODY is not known: set their email with `bot rep set U0NOBODY --email EMAIL --name NAME`"
        " (or they use the bot in Slack once)\n"
    )
    assert (
        q4("campaign", "add", "Nope", "--rep", REP, "a@example.com").err == "bot: There is no campaign named “Nope”.\n"
    )
    assert q4("campaign", "add", "Q4 outreach", "--rep", REP).err == (
        "bot: give the people to add, or --csv FILE (one of the two)\n"
    )


def test_add_from_a_csv_stores_each_column(q4: Bot, db_url: str, tmp_path: Path) -> None:
    people = write(
        tmp_path,
        "\ufeffcompany, email ,deal_size,first_name,last_name,title,time_zone\r\n"
        'Analytical Engines,Ada@Example.com,20-person,Ada,Lovelace,"CTO, founder",Europe/London\r\n'
        ",,,,,,\r\n"
        "Cobol Works,grace@example.com,,Grace,Hopper\r\n",
    )

    done = q4("campaign", "add", "Q4 outreach", "--rep", REP, "--send-at", SEND_AT, "--csv", people)

    assert (done.code, done.err) == (0, "")
    assert done.lines == [
        "added: ada@example.com",
        "added: grace@example.com",
        "Q4 outreach: 2 added, 0 already active, 0 invalid.",
    ]
    ada, grace = stored(db_url)[0]
    assert (ada.first_name, ada.last_name, ada.company, ada.title, ada.timezone, ada.fields) == (
        "Ada",
        "Lovelace",
        "Analytical Engines",
        "CTO, founder",
        "Europe/London",
        {"deal_size": "20-person"},
    )
    assert (grace.company, grace.title, grace.timezone, grace.fields) == ("Cobol Works", "", None, {})


def test_a_csv_is_added_in_batches_as_one_add(
    q4: Bot, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaign_cli, "CSV_BATCH", 2)
    rows = ["a@example.com", "b@example.com", "not-an-address", "A@example.com", "c@example.com"]
    people = write(tmp_path, "email\n" + "\n".join(rows) + "\n")

    done = q4("campaign", "add", "Q4 outreach", "--rep", REP, "--send-at", SEND_AT, "--csv", people)

    assert done.lines == [
        "added: a@example.com",
        "added: b@example.com",
        "invalid: not-an-address: An email address must have an @-sign.",
        "added: c@example.com",
        "Q4 outreach: 3 added, 0 already active, 1 invalid.",
    ]
    assert len(stored(db_url)[1]) == 3


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (b"", "people.csv: the file is empty: its first row names the columns (email, first_name, ...)"),
        (
            b"email,dealsize\n",
            (
                'people.csv, row 1, column 2: unknown column "dealsize": did you mean "deal_size"? the columns are '
                "email, first_name, last_name, company, title, time_zone, deal_size"
            ),
        ),
        (
            b"first_name,company\nAda,X\n",
            "people.csv, row 1: no email column: the first row names the columns, one of them email",
        ),
        (b"email,company,email\n", 'people.csv, row 1, column 3: column "email" is there twice'),
        (b"email,,company\n", "people.csv, row 1, column 2: no column name"),
        (
            b"email,company\na@example.com,X\nb@example.com,Y,Z\n",
            "people.csv, row 3: 3 cells, but the first row names 2 columns",
        ),
        (
            b"email,time_zone\na@example.com,Europe/Paris\nb@example.com,Mars/Base\n",
            'people.csv, row 3, column time_zone: "Mars/Base" is not a known time zone: use an IANA name like Europe/Stockholm',
        ),
        (
            b"email,company\na@example.com,X\n,Y\n",
            "people.csv, row 3, column email: empty: every person needs an address",
        ),
        (
            b"email,company\na@example.com,X\nb@example.com,M\xfcller\n",
            "people.csv, row 3: not UTF-8 text: save the file as CSV in UTF-8",
        ),
        (b'email,company\na@example.com,"X\n', "people.csv, row 2: not valid CSV: unexpected end of data"),
    ],
)
def test_a_bad_csv_names_the_row_and_column_and_adds_no_one(
    q4: Bot, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: bytes, error: str
) -> None:
    monkeypatch.setattr(campaign_cli, "CSV_BATCH", 1)  # the rows before the bad one would be a batch of their own
    write(tmp_path, text)

    done = q4("campaign", "add", "Q4 outreach", "--rep", REP, "--send-at", SEND_AT, "--csv", "people.csv")

    assert (done.code, done.out, done.err) == (1, "", f"bot: {error}\n")
    assert stored(db_url) == ([], [], [])


def test_a_missing_csv_is_one_line(q4: Bot) -> None:
    done = q4("campaign", "add", "Q4 outreach", "--rep", REP, "--send-at", SEND_AT, "--csv", "nowhere.csv")

    assert (done.code, done.err) == (1, "bot: nowhere.csv: no such file\n")


# --- bot campaign show ---------------------------------------------------------------


def test_show_lists_the_steps_and_the_people_per_status(q4: Bot) -> None:
    q4("campaign", "add", "Q4 outreach", "--rep", REP, "--send-at", SEND_AT, "a@example.com", "b@example.com")

    done = q4("campaign", "show", "Q4 outreach")

    assert (done.code, done.err) == (0, "")
    assert done.lines == [
        "Q4 outreach: time zone Europe/Stockholm, owner U0123ABCD, version 1",
        "step  day  send              time   subject",
        "1     1    choose                   {{ company }} and Acme",
        "2     2    at_time           08:30  A quick question",
        "3     2    same_as_previous         One more thing",
        "4     4    thread                   (reply in thread)",
        "5     4    task                     Call {{ first_name }}?",
        "people: active 2, paused 0, finished 0, removed 0, replied 0, bounced 0, unsubscribed 0",
    ]
    assert q4("campaign", "show", "Nope").err == "bot: There is no campaign named “Nope”.\n"
