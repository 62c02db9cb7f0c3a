"""The text of a thread step (spec: "Threading")."""

from __future__ import annotations

import pytest

from bot.core.rules import Quoted, reply_body, reply_references, reply_subject

from .support import STOCKHOLM, at


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Quick question", "Re: Quick question"),
        ("Re: Quick question", "Re: Quick question"),
        ("RE: Quick question", "RE: Quick question"),
        ("re:Quick question", "re:Quick question"),
        ("Regarding your launch", "Re: Regarding your launch"),
        ("", "Re: "),
    ],
)
def test_reply_subject_adds_re_once(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_reply_references_are_the_previous_references_plus_its_message_id() -> None:
    assert reply_references([], "<1@bot>") == ["<1@bot>"]
    assert reply_references(["<1@bot>", "<2@bot>"], "<3@bot>") == ["<1@bot>", "<2@bot>", "<3@bot>"]


def test_reply_body_quotes_the_previous_email_as_sent_under_an_attribution_line() -> None:
    previous = Quoted(
        body="Hi Ada,\n\nDid you see our new plan?\n-- Bo",
        sent_at=at("2026-12-02 15:00"),
        sender="Bo Rep <bo@example.com>",
        zone=STOCKHOLM,
    )
    assert reply_body("Just bumping this up.\n\n", previous) == (
        "Just bumping this up.\n"
        "\n"
        "On Wed, 02 Dec 2026 at 15:00, Bo Rep <bo@example.com> wrote:\n"
        "> Hi Ada,\n"
        ">\n"
        "> Did you see our new plan?\n"
        "> -- Bo\n"
    )


def test_the_attribution_shows_the_time_in_the_given_zone() -> None:
    previous = Quoted(body="Hello", sent_at=at("2026-12-02 00:30"), sender="Bo <bo@example.com>")
    assert "On Tue, 01 Dec 2026 at 23:30, Bo <bo@example.com> wrote:" in reply_body("Again", previous)  # UTC by default
