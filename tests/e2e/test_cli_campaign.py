"""`bot campaign ...` as an admin runs it: the real command, a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.services.campaign_file import parse_campaign

WORKED_EXAMPLE = """\
name: Worked example
timezone: Europe/Stockholm
skip_weekends: false
steps:
  - day: 1
    send: choose
    subject: Hello {{ first_name }}
    body: |
      Hi {{ first_name }},

      A short note from {{ sender.first_name }}.
  - day: 2
    send: at_time
    time: 08:30
    subject: A question
    body: Did you see it?
  - day: 2
    send: same_as_previous
    subject: Another question
    body: Still interested?
  - day: 4
    send: thread
    body: Bumping this.
  - day: 4
    send: task
    subject: Call {{ first_name }}
    body: A personal note.
"""

PREVIEW = [
    {"step": 1, "day": 1, "send": "choose", "kind": "email", "due": "2026-12-02T15:00:00+01:00", "thread_of": None},
    {"step": 2, "day": 2, "send": "at_time", "kind": "email", "due": "2026-12-03T08:30:00+01:00", "thread_of": None},
    {
        "step": 3,
        "day": 2,
        "send": "same_as_previous",
        "kind": "email",
        "due": "2026-12-03T15:00:00+01:00",
        "thread_of": None,
    },
    {"step": 4, "day": 4, "send": "thread", "kind": "email", "due": "2026-12-05T15:00:00+01:00", "thread_of": 3},
    {"step": 5, "day": 4, "send": "task", "kind": "task", "due": "2026-12-05T15:00:00+01:00", "thread_of": None},
]
LAUNCH = ["--start", "2026-12-02T10:00:00+01:00", "--send-at", "2026-12-02T15:00:00+01:00"]


class Bot:
    """Runs `python -m bot` in its own folder, on its own SQLite file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'bot.db'}"}

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "campaign", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        return done.stdout

    def fails(self, *args: str) -> str:
        """The one line the command printed on stderr, having exited 1."""
        done = self(*args)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stdout == ""
        return done.stderr.strip()

    def write(self, name: str, text: str) -> str:
        (self.folder / name).write_text(text, encoding="utf-8")
        return name


@pytest.fixture
def bot(tmp_path: Path) -> Bot:
    return Bot(tmp_path)


def test_import_export_and_list(bot: Bot) -> None:
    path = bot.write("campaign.yaml", WORKED_EXAMPLE)

    assert bot.ok("import", path, "--owner", "U0REP0001") == 'created campaign "Worked example" (5 steps)\n'
    assert bot.ok("import", path, "--owner", "U0REP0001") == 'campaign "Worked example" unchanged\n'

    exported = bot.ok("export", "Worked example")
    assert parse_campaign(exported) == parse_campaign(WORKED_EXAMPLE)
    assert "  body: |\n    Hi {{ first_name }},\n" in exported
    # The export is a campaign file: edit it and import it back.
    edited = bot.write("edited.yaml", exported.replace("Bumping this.", "Bumping this, once more."))
    assert bot.ok("import", edited, "--owner", "U0REP0001") == 'updated campaign "Worked example" to version 2\n'

    assert bot.ok("list").splitlines() == [
        "name            owner      version  steps  active",
        "Worked example  U0REP0001  2        5      0",
    ]


def test_preview_of_a_file_is_the_worked_example(bot: Bot) -> None:
    path = bot.write("campaign.yaml", WORKED_EXAMPLE)

    assert json.loads(bot.ok("preview", path, *LAUNCH)) == PREVIEW


def test_preview_of_a_stored_campaign_by_name(bot: Bot) -> None:
    bot.ok("import", bot.write("campaign.yaml", WORKED_EXAMPLE), "--owner", "U0REP0001")

    assert json.loads(bot.ok("preview", "Worked example", *LAUNCH, "--format", "json")) == PREVIEW
    assert bot.ok("preview", "Worked example", *LAUNCH, "--format", "table").splitlines() == [
        "step  day  send              kind   due                       thread of",
        "1     1    choose            email  Wed 2026-12-02 15:00 CET",
        "2     2    at_time           email  Thu 2026-12-03 08:30 CET",
        "3     2    same_as_previous  email  Thu 2026-12-03 15:00 CET",
        "4     4    thread            email  Sat 2026-12-05 15:00 CET  step 3",
        "5     4    task              task   Sat 2026-12-05 15:00 CET",
    ]


def test_preview_in_the_recipients_time_zone(bot: Bot) -> None:
    path = bot.write("campaign.yaml", WORKED_EXAMPLE.replace("skip_weekends: false", "send_in: recipient"))

    launch = ["--start", "2026-12-02T09:00:00Z", "--send-at", "2026-12-02T15:00:00Z", "--tz", "America/New_York"]

    rows = json.loads(bot.ok("preview", path, *launch))

    assert [row["due"] for row in rows] == [
        "2026-12-02T10:00:00-05:00",
        "2026-12-03T08:30:00-05:00",
        "2026-12-03T10:00:00-05:00",
        "2026-12-05T10:00:00-05:00",
        "2026-12-05T10:00:00-05:00",
    ]


def test_a_bad_file_is_refused_in_one_line_and_nothing_is_stored(bot: Bot) -> None:
    path = bot.write("bad.yaml", WORKED_EXAMPLE.replace("time: 08:30", "time: 25:00"))

    assert bot.fails("import", path, "--owner", "U0REP0001") == (
        'bot: bad.yaml: step 2, time: "25:00" is not a time of day; write HH:MM, from 00:00 to 23:59'
    )
    assert bot.ok("list").startswith("no campaigns yet")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("import", "yaml-error.yaml", "--owner", "U0REP0001"), "bot: yaml-error.yaml, line 4: not valid YAML: "),
        (("import", "missing.yaml", "--owner", "U0REP0001"), "bot: missing.yaml: no such file"),
        (
            ("import", "campaign.yaml", "--owner", "rita"),
            'bot: The owner must be a Slack user ID like U012AB3CD, not "rita".',
        ),
        (("export", "Q5"), "bot: There is no campaign named “Q5”."),
        (("preview", "Q5", *LAUNCH), 'bot: "Q5" is neither a campaign file nor the name of a campaign'),
        (
            ("preview", "campaign.yaml", "--start", "2026-12-02T10:00:00"),
            'bot: --start "2026-12-02T10:00:00" has no UTC offset: add one, like +01:00 or Z',
        ),
        (
            ("preview", "campaign.yaml", "--start", "next week"),
            'bot: --start "next week" is not an ISO 8601 date and time, like 2026-12-02T15:00:00+01:00',
        ),
        (
            ("preview", "campaign.yaml", "--start", "2026-12-02T10:00:00Z"),
            "bot: the first step is choose: a send-at date and time is required",
        ),
        (("preview", "campaign.yaml", *LAUNCH, "--tz", "Mars/Olympus"), 'bot: Unknown time zone "Mars/Olympus"'),
    ],
)
def test_errors_are_one_line_on_stderr(bot: Bot, args: tuple[str, ...], message: str) -> None:
    bot.write("campaign.yaml", WORKED_EXAMPLE)
    bot.write("yaml-error.yaml", "name: Broken\nsteps:\n  - day: 1\n    send: [choose\n")

    assert bot.fails(*args).startswith(message)


def test_a_usage_mistake_is_one_line_too(bot: Bot) -> None:
    done = bot("import", "campaign.yaml")

    assert done.returncode == 2
    assert done.stderr == (
        "bot campaign import: the following arguments are required: --owner (see bot campaign import --help)\n"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"name: Laughs\nlol0: &lol0 lol\n"
            + b"".join(b"lol%d: &lol%d [%s]\n" % (n, n, b", ".join([b"*lol%d" % (n - 1)] * 9)) for n in range(1, 9))
            + b"skip_weekends: [*lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8]\n",
            "bot: bad.yaml, line 2: anchors and aliases (&name, *name) are not allowed in a campaign file; write the value out",
        ),
        (b"[" * 100_000, "bot: bad.yaml, line 1: nested more than 10 levels deep; a campaign file needs 4"),
        (b"# " + b"x" * 10_000_000, "bot: bad.yaml: larger than 256 KB, the most a campaign file may be"),
        (bytes(range(256)) * 64, "bot: bad.yaml, line 2: not UTF-8 text; save the file as UTF-8"),
        (b"name: Caf\xe9\n", "bot: bad.yaml, line 1: not UTF-8 text; save the file as UTF-8"),
        (b"- day: 1\n- day: 2\n", "bot: bad.yaml: a campaign file is a mapping of keys (name, timezone, steps, ...)"),
        (b"just a sentence\n", "bot: bad.yaml: a campaign file is a mapping of keys (name, timezone, steps, ...)"),
    ],
    ids=["billion-laughs", "deep", "huge", "binary", "latin-1", "list", "scalar"],
)
def test_a_hostile_file_is_one_line_whatever_it_holds(bot: Bot, content: bytes, message: str) -> None:
    (bot.folder / "bad.yaml").write_bytes(content)

    assert bot.fails("import", "bad.yaml", "--owner", "U0REP0001") == message
    assert bot.fails("preview", "bad.yaml", *LAUNCH) == message


def test_a_subject_over_the_limit_is_refused_at_import(bot: Bot) -> None:
    path = bot.write("long.yaml", WORKED_EXAMPLE.replace("subject: A question", "subject: " + "A question " * 30))

    assert bot.fails("import", path, "--owner", "U0REP0001") == (
        "bot: long.yaml: step 2, subject: 329 characters; a subject is at most 250 (what Slack's Edit dialog holds)"
    )
