"""Drafts: what a send will look like when it goes out."""

from __future__ import annotations

from sqlmodel import Session

from bot.clock import FixedClock
from bot.services import progress
from bot.services.drafts import draft_for
from tests.support.due_emails import due_email
from tests.support.factories import make_campaign

STEPS = [
    {"day": 1, "send": "at_time", "time": "09:00", "subject": "Hello {{ first_name }}", "body": "Hi {{ first_name }}"},
    {"day": 2, "send": "thread", "body": "Bumping this up"},
    {"day": 3, "send": "thread", "body": "Last note from me"},
]


def test_a_thread_after_a_skipped_thread_goes_out_new_with_the_subject_the_skipped_one_would_have_had(
    session: Session, clock: FixedClock
):
    first = due_email(session, clock.now(), campaign=make_campaign(session, STEPS))
    second = progress.complete(session, first, sent=True, at=clock.now())
    assert second is not None
    session.commit()
    third = progress.complete(session, second, sent=False, at=clock.advance(days=1))  # the rep skipped step 2
    assert third is not None
    session.commit()

    draft = draft_for(session, third)

    assert draft.subject == "Re: Hello Pat"
    assert draft.in_reply_to is None and draft.references == []
    assert draft.full_body == "Last note from me"
    assert draft.notice == "step 2 was skipped, so step 3 goes out as a new email"
