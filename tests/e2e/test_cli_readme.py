"""The README's "Try it without Slack", run line by line as a new user would, and its example file."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README's text under `## title`, up to the next section of that level."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def code_block(text: str, language: str) -> str:
    match = re.search(rf"^```{language}\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert match, f"no ```{language} block"
    return match.group(1)


def test_the_readme_example_campaign_is_the_example_file() -> None:
    readme_yaml = code_block(section("Campaigns as YAML files"), "yaml")
    assert (ROOT / "examples" / "q4-outreach.yml").read_text(encoding="utf-8") == readme_yaml


def new_user_folder(tmp_path: Path) -> Path:
    """A folder like a fresh clone: the examples, and `.venv/bin/bot` as the README calls it."""
    folder = tmp_path / "clone"
    shutil.copytree(ROOT / "examples", folder / "examples")
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    installed = Path(sys.executable).parent / "bot"
    if installed.exists():
        (bin_dir / "bot").symlink_to(installed)
    else:  # the package is importable but its entry point is not installed next to python
        (bin_dir / "bot").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bot "$@"\n')
        (bin_dir / "bot").chmod(0o755)
    return folder


def run_section(folder: Path, script: str) -> subprocess.CompletedProcess[str]:
    # Nothing of this machine's settings: the embedded defaults, as for a new user.
    settings = {name.upper() for name in Settings.model_fields}
    env = {key: value for key, value in os.environ.items() if key not in settings}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_try_it_without_slack_writes_the_emails_to_the_outbox(tmp_path: Path) -> None:
    script = code_block(section("Try it without Slack"), "sh")
    folder = new_user_folder(tmp_path)

    done = run_section(folder, script)

    assert done.returncode == 0, done.stderr
    assert "Q4 outreach: 3 added, 0 already active, 0 invalid." in done.stdout
    assert done.stdout.count("sent 3 emails, queued 0 tasks, 0 failed") == 3
    assert "sent 3 emails, queued 3 tasks, 0 failed" in done.stdout
    assert re.search(r"Wed 2037-12-02 15:00 CET.*\n.*Thu 2037-12-03 08:30.*\n.*Thu 2037-12-03 15:00", done.stdout)
    assert "Traceback" not in done.stderr
    emails = [
        message_from_bytes(path.read_bytes(), policy=policy.default) for path in (folder / "outbox").glob("*.eml")
    ]
    assert {email["From"] for email in emails} == {"Rita Rep <rita@example.com>"}
    with (ROOT / "examples" / "people.csv").open(encoding="utf-8") as file:
        people = list(csv.DictReader(file))
    expected = {
        (f"{p['first_name']} {p['last_name']} <{p['email']}>", subject)
        for p in people
        for subject in (f"{p['company']} and Acme", "A quick question", "One more thing", "Re: One more thing")
    }
    assert sorted((email["To"], email["Subject"]) for email in emails) == sorted(expected)
    first = next(email for email in emails if email["Subject"] == f"{people[0]['company']} and Acme")
    assert f"A quick idea for a {people[0]['deal_size']} team like yours." in first.get_body(("plain",)).get_content()

    again = run_section(folder, script)  # "Run it again and nothing is added or sent twice"

    assert again.returncode == 0, again.stderr
    assert "Q4 outreach: 0 added, 3 already active, 0 invalid." in again.stdout
    assert len(list((folder / "outbox").glob("*.eml"))) == len(expected)
