"""Every Block Kit builder keeps to Slack's limits, whatever the data.

Property tests over long, non-ASCII and mrkdwn-laden data (`&`, `<!channel>`, `*`,
emoji, combining accents, 4-byte characters): each builder builds without raising,
and the JSON it sends passes tests/support/slack_limits.py. Then the cases seen
(issue 8), one by one.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.views import View

from bot.clock import UTC
from bot.mail.mailboxes import Provider, Status
from bot.services.agenda import Agenda, CampaignCount, Entry
from bot.services.campaigns import CampaignDetails, CampaignSummary
from bot.services.drafts import Draft
from bot.services.enrollments import AddLine, AddResult
from bot.slack.blocks import commands, digest, home, mailbox, tasks
from bot.slack.blocks.common import Message, error_message, fit
from bot.store.models import Campaign, Person, Send, SendStatus, Step
from tests.support.slack_limits import message_problems, view_problems

NOW = dt.datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Stockholm")
BUILDERS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of text that have broken Slack messages: its control characters and
# mentions, mrkdwn marks, emoji (with joiners, skin tones), combining accents,
# 4-byte characters, right-to-left text.
PIECES = [
    "a",
    "Z",
    "0",
    " ",
    "\n",
    "&",
    "<",
    ">",
    "&amp;",
    "*",
    "_",
    "~",
    "`",
    "> ",
    "<!channel>",
    "<!here>",
    "<@U0ADA>",
    "<https://x.example|x>",
    ":tada:",
    "é",
    "e\u0301",
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "𝄞",
    "中文",
    "שלום",
    "\u200d",
]
short_text = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
# Long text by repetition: fast to draw, and long enough to pass every limit.
long_text = st.builds(lambda unit, times: unit * times, short_text.filter(bool), st.integers(1, 1500))
text = st.one_of(short_text, long_text)
name = text.filter(bool)


def many(
    item: Callable[[st.SearchStrategy[str]], st.SearchStrategy[Any]], max_size: int
) -> st.SearchStrategy[list[Any]]:
    """A long list: a few items of text of any length, then many of short text (drawing long ones is slow)."""
    return st.builds(
        operator.add, st.lists(item(text), max_size=3), st.lists(item(short_text.filter(bool)), max_size=max_size)
    )


drafts = st.builds(
    lambda subject, body, quote, missing, notice: Draft(
        send_id=1,
        to="x",
        to_email="ada@example.com",
        sender="Rep <rep@example.com>",
        sender_email="rep@example.com",
        subject=subject,
        body=body,
        full_body=body + quote,
        missing=missing,
        notice=notice,
    ),
    subject=name,
    body=text,
    quote=st.one_of(st.just(""), text),
    missing=st.lists(text, max_size=3),
    notice=st.one_of(st.none(), text),
)
# An entry's email, or (None) a reason it cannot be built.
maybe_drafts = st.one_of(drafts, st.none())


persons = st.builds(Person, id=st.just(1), email=text, first_name=text, last_name=text, company=text)


@st.composite
def entries(draw: Any, count: int = 1, status: st.SearchStrategy[SendStatus] | None = None) -> list[Entry]:
    """`count` entries with distinct send ids, built from a few drawn people and campaigns."""
    people = draw(st.lists(persons, min_size=1, max_size=3))
    names = draw(st.lists(name, min_size=1, max_size=2))
    statuses = st.sampled_from(list(SendStatus)) if status is None else status
    reasons = draw(st.lists(st.one_of(st.none(), text), min_size=1, max_size=2))
    overdue = draw(st.booleans())
    chosen = draw(st.lists(statuses, min_size=count, max_size=count))
    emails = draw(st.lists(maybe_drafts, min_size=1, max_size=3))
    problem = draw(text)
    return [
        Entry(
            send=Send(
                id=i + 1,
                enrollment_id=1,
                step_id=1,
                position=i % 9 + 1,
                rep_id="U0REP",
                kind="task",
                status=state,
                due_at=NOW + dt.timedelta(minutes=i),
                sent_at=NOW,
                last_error=reasons[i % len(reasons)],
                reason=reasons[-1],
            ),
            person=people[i % len(people)],
            campaign=Campaign(id=1, name=names[i % len(names)], owner_id="U0OWN", timezone="Europe/Stockholm"),
            overdue=overdue,
            draft=emails[i % len(emails)],
            problem=None if emails[i % len(emails)] else problem,
        )
        for i, state in enumerate(chosen)
    ]


def agendas(count: int) -> st.SearchStrategy[Agenda]:
    counts = st.integers(0, 10**6)
    campaigns = many(lambda t: st.builds(CampaignCount, st.just(1), t.filter(bool), counts, counts), 60)
    return st.builds(
        lambda tasks_, today, campaigns_, more, overdue: Agenda(
            tasks=tasks_,
            scheduled_today=today,
            campaigns=campaigns_,
            task_count=len(tasks_) + more,
            overdue=min(overdue, len(tasks_) + more),
            email_count=len(today) + more,
        ),
        st.integers(0, count).flatmap(lambda n: entries(n, st.just(SendStatus.QUEUED))),
        st.integers(0, count).flatmap(lambda n: entries(n, st.just(SendStatus.PLANNED))),
        campaigns,
        counts,
        counts,
    )


def fits_message(message: Message) -> None:
    assert message_problems(message.as_kwargs()) == []


def fits_view(view: View) -> None:
    assert view_problems(view.to_dict()) == []


# --- every builder, any data -------------------------------------------------------------


@BUILDERS
@given(problem=st.one_of(st.none(), text), sentence=name)
def test_usage_done_and_errors_fit(problem: str | None, sentence: str) -> None:
    fits_message(commands.usage(problem))
    fits_message(commands.done(sentence))
    fits_message(error_message(sentence))


@BUILDERS
@given(names=many(lambda t: t.filter(bool), 300), counts=st.integers(0, 10**9))
def test_campaign_list_fits(names: list[str], counts: int) -> None:
    fits_message(commands.campaign_list([CampaignSummary(n, "U0OWN", 1, counts, counts) for n in names]))


@BUILDERS
@given(
    campaign=name,
    subjects=many(lambda t: st.one_of(st.none(), t), 60),
    zone=text,
    unmatched=many(lambda t: st.tuples(t, t), 60),
)
def test_campaign_details_fit(
    campaign: str, subjects: list[str | None], zone: str, unmatched: list[tuple[str, str]]
) -> None:
    steps = [
        Step(
            campaign_id=1,
            version=1,
            position=i + 1,
            day=i,
            send="thread" if s is None else "at_time",
            time=dt.time(9),
            subject=s,
        )
        for i, s in enumerate(subjects)
    ]
    details = CampaignDetails(Campaign(name=campaign, owner_id="U0OWN", timezone=zone), steps, {"active": 3}, unmatched)
    fits_message(commands.campaign_details(details))


def test_campaign_details_list_who_was_not_synced_to_salesforce_and_why() -> None:
    campaign = Campaign(name="Q4", owner_id="U0OWN", timezone="UTC")
    details = CampaignDetails(
        campaign,
        [],
        {"active": 1},
        [("bob@example.com", "no Contact or Lead in Salesforce has the email bob@example.com")],
    )
    text = json.dumps(commands.campaign_details(details).blocks[-1].to_dict())
    assert "*Not synced to Salesforce:*" in text
    assert "bob@example.com: no Contact or Lead in Salesforce has the email bob@example.com" in text
    assert "Not synced" not in json.dumps(
        [b.to_dict() for b in commands.campaign_details(CampaignDetails(campaign, [], {})).blocks]
    )


@BUILDERS
@given(
    campaign=name,
    lines=many(lambda t: st.builds(AddLine, t, st.sampled_from(["added", "already_active", "invalid"]), t), 400),
    send_at=st.one_of(st.none(), st.just(NOW)),
)
def test_add_result_fits(campaign: str, lines: list[AddLine], send_at: dt.datetime | None) -> None:
    fits_message(commands.add_result(campaign, AddResult(lines=lines), send_at))


@BUILDERS
@given(campaign=name, people=many(lambda t: t, 400), hint=text.filter(bool))
def test_launch_modal_fits(campaign: str, people: list[str], hint: str) -> None:
    fits_view(commands.launch_modal(campaign, people, metadata="{}", preset=NOW, hint=hint))


@settings(BUILDERS, max_examples=20)  # each example builds up to 105 items
@given(agenda=agendas(35))
def test_home_tasks_and_digest_fit(agenda: Agenda) -> None:
    fits_view(home.home_view(agenda, ZONE, NOW))
    fits_message(home.tasks_message(agenda, ZONE, NOW))
    fits_message(digest.digest_message(agenda, ZONE, NOW))


@BUILDERS
@given(entry=entries())
def test_task_message_and_item_fit_in_every_state(entry: list[Entry]) -> None:
    fits_message(tasks.task_message(entry[0], ZONE, NOW))
    fits_message(Message(text="item", blocks=tasks.item_blocks(entry[0], ZONE, NOW)))


@BUILDERS
@given(entry=entries(), draft=drafts)
def test_edit_and_schedule_modals_fit_and_keep_the_whole_email(entry: list[Entry], draft: Draft) -> None:
    metadata = tasks.metadata(1, channel="D0CHANNEL", ts="1700000000.000100")
    view = tasks.edit_modal(entry[0], draft, metadata).to_dict()
    assert view_problems(view) == []
    if "submit" in view:  # saved unchanged, the rep's email is the same, to the character
        assert tasks.edited_body(submitted(view)) == draft.body
        assert initial(view, tasks.SUBJECT_BLOCK) == draft.subject
    fits_view(tasks.schedule_modal(entry[0], metadata, NOW, ZONE))


@given(text=text, limit=st.integers(2, 400))
def test_fit_cuts_visibly_and_never_splits_an_escape(text: str, limit: int) -> None:
    cut = fit(text, limit)
    assert cut == text or (cut.endswith("…") and len(cut.encode("utf-16-le")) // 2 <= limit)
    escaped = fit(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), limit)
    assert not escaped.rstrip("…").endswith(("&", "&a", "&am", "&amp", "&l", "&lt", "&g", "&gt"))


# --- the cases seen ------------------------------------------------------------------------


def test_a_long_campaign_name_with_many_people_is_listed_not_refused() -> None:
    # 40 characters with `&`: each `&` takes five once escaped, and the list's budget
    # used to ignore the header in front of it.
    name = "R&D " * 10
    people = [f"person{i}@example.com" for i in range(300)]
    result = AddResult(lines=[AddLine(p, "added") for p in people])
    message = commands.add_result(name, result).as_kwargs()
    assert message_problems(message) == []
    listed = message["blocks"][0]["text"]["text"]
    assert listed.startswith(":white_check_mark: *Added to R&amp;D R&amp;D")
    assert "person0@example.com" in listed and listed.endswith("more")

    modal = commands.launch_modal("x" * 76, people, metadata="{}", preset=None, hint="When?").to_dict()
    assert view_problems(modal) == []
    assert modal["blocks"][0]["text"]["text"].endswith("more")


def test_the_edit_modal_opens_a_long_body_in_parts_and_saves_it_whole() -> None:
    paragraph = "Dear Ada, " + "we make very good widgets, " * 40 + "\n\n"
    body = (paragraph * 10)[:6940]
    subject = "Widgets & gadgets " * 14 + "!!!"  # 255 characters: more than the old 250
    entry = build_entry()
    view = tasks.edit_modal(entry, build_draft(subject, body), tasks.metadata(1)).to_dict()
    assert view_problems(view) == []
    assert initial(view, tasks.SUBJECT_BLOCK) == subject
    parts = [b for b in view["blocks"] if b.get("block_id", "").startswith(tasks.BODY_BLOCK)]
    assert [b["label"]["text"] for b in parts] == ["Body, part 1 of 3", "Body, part 2 of 3", "Body, part 3 of 3"]
    assert all(p["element"]["initial_value"].startswith("Dear Ada") for p in parts[1:])  # cut at line breaks
    assert tasks.edited_body(submitted(view)) == body
    assert tasks.edited_body(submitted(view, {"body-3": "Thanks!"})).endswith("\nThanks!")


def test_a_body_too_long_for_the_editor_is_refused_with_what_to_do() -> None:
    view = tasks.edit_modal(build_entry(), build_draft("Hi", "word " * 7000), tasks.metadata(1)).to_dict()
    assert view_problems(view) == []
    assert "submit" not in view  # nothing to save, so nothing cut
    words = view["blocks"][-1]["text"]["text"]
    assert "body is 35,000 characters" in words and "Send* sends it whole" in words


def test_a_home_of_45_tasks_with_long_emails_stays_under_slacks_size() -> None:
    draft = build_draft("Widgets", "We make very good widgets, and then some. " * 200)
    entries_ = [build_entry(i, draft=draft) for i in range(1, 46)]
    view = home.home_view(Agenda(tasks=entries_[: home.HOME_TASKS], task_count=45), ZONE, NOW).to_dict()
    assert view_problems(view) == []
    assert len(json.dumps(view)) < 200_000
    texts = json.dumps(view)
    assert f"and {45 - home.HOME_TASKS} more tasks" in texts
    assert "Open in Gmail and Outlook are on the first" in texts
    gmail = [e for b in view["blocks"] for e in b.get("elements", []) if e.get("action_id") == tasks.OPEN_GMAIL]
    assert gmail and parse_qs(urlsplit(gmail[0]["url"]).query)["su"] == ["Widgets"]


def test_the_largest_home_view_any_data_can_make_fits() -> None:
    # Every piece of data as long as it is shown, in characters that escape to the
    # most bytes (a 4-byte emoji is 12 bytes of JSON): the view's size bound holds.
    huge = "😀" * 5000
    draft = build_draft("😀" * 100, huge)  # a subject short enough for the Gmail and Outlook links
    entries_ = [
        build_entry(i, first_name=huge, company=huge, email=huge, campaign=huge, overdue=True, draft=draft)
        for i in range(1, 61)
    ]
    campaigns = [CampaignCount(i, huge, 10**6, 10**6) for i in range(60)]
    agenda = Agenda(
        tasks=entries_,
        scheduled_today=entries_,
        campaigns=campaigns,
        task_count=10**6,
        overdue=10**6,
        email_count=10**6,
    )
    view = home.home_view(agenda, ZONE, NOW).to_dict()
    assert view_problems(view) == []


def test_a_servers_failure_reason_is_clipped() -> None:
    entry = build_entry(
        status=SendStatus.FAILED, last_error="550 5.7.1 " + "policy text " * 500, draft=build_draft("Hi", "Hello")
    )
    message = tasks.task_message(entry, ZONE, NOW).as_kwargs()
    state = next(b for b in message["blocks"] if b.get("block_id", "").endswith("-state"))
    assert state["elements"][0]["text"].startswith(":x: Failed: 550 5.7.1 policy text")
    assert len(state["elements"][0]["text"]) < 320 and state["elements"][0]["text"].endswith("…")


def test_mentions_and_links_in_data_reach_no_one() -> None:
    entry = build_entry(
        first_name="<!channel>",
        company="<https://evil.example|bank>",
        draft=build_draft("<!here> hi", "<@U0BOSS> & co"),
    )
    message = tasks.task_message(entry, ZONE, NOW).as_kwargs()
    assert message_problems(message) == []
    assert "&lt;!channel&gt;" in json.dumps(message)


# --- helpers -------------------------------------------------------------------------------


def build_entry(
    send_id: int = 1,
    status: SendStatus = SendStatus.QUEUED,
    last_error: str | None = None,
    *,
    first_name: str = "Ada",
    company: str = "",
    email: str | None = None,
    campaign: str = "Q4",
    overdue: bool = False,
    draft: Draft | None = None,
) -> Entry:
    send = Send(
        id=send_id,
        enrollment_id=1,
        step_id=1,
        position=1,
        rep_id="U0REP",
        kind="task",
        status=status,
        due_at=NOW,
        last_error=last_error,
    )
    person = Person(
        id=send_id,
        email=email or f"ada{send_id}@example.com",
        first_name=first_name,
        last_name=first_name,
        company=company,
    )
    campaign_ = Campaign(id=1, name=campaign, owner_id="U0OWN", timezone="Europe/Stockholm")
    return Entry(send, person, campaign_, overdue, draft=draft or build_draft("Hello", "Hi Ada"))


def build_draft(subject: str, body: str) -> Draft:
    return Draft(
        send_id=1,
        to="Ada <ada@example.com>",
        to_email="ada@example.com",
        sender="Rep <rep@example.com>",
        sender_email="rep@example.com",
        subject=subject,
        body=body,
        full_body=body,
    )


def initial(view: dict[str, Any], block_id: str) -> str:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    return block["element"].get("initial_value") or ""


def submitted(view: dict[str, Any], changes: dict[str, str] | None = None) -> dict[str, Any]:
    """The view as Slack sends it back on submit: every input's value, as shown unless changed."""
    values = {
        b["block_id"]: {
            tasks.INPUT: {
                "type": "plain_text_input",
                "value": (changes or {}).get(b["block_id"], b["element"].get("initial_value")),
            }
        }
        for b in view["blocks"]
        if b["type"] == "input"
    }
    return {**view, "state": {"values": values}}


@BUILDERS
@given(
    address=text,
    smtp=text,
    error=st.one_of(st.none(), text),
    connected=st.booleans(),
    counts=st.integers(0, 10**9),
    problem=st.one_of(st.none(), text),
)
def test_the_mailbox_section_and_dialog_fit(
    address: str, smtp: str, error: str | None, connected: bool, counts: int, problem: str | None
) -> None:
    links = [("google", "Google", "https://bot.example.com/oauth/start/google?t=" + "x" * 2900)]
    for oauth in (False, True):
        status = Status(Provider.GOOGLE, address, smtp, None, connected, error, counts, counts or None, oauth)
        for shown in (status, None):
            panel = mailbox.Panel(shown, "through the company relay", links)
            fits_message(Message(text="home", blocks=mailbox.mailbox_section(panel)))
    form = mailbox.Form(smtp_host=address, user=smtp, imap_host=address * 2)
    fits_view(mailbox.connect_modal(True, form, problem))
    fits_view(mailbox.connect_modal(False))
    fits_view(mailbox.connected_view(status))


def test_the_largest_home_view_with_a_broken_mailbox_fits() -> None:
    huge = "😀" * 5000
    draft = build_draft("😀" * 100, huge)
    entries_ = [
        build_entry(i, first_name=huge, company=huge, email=huge, campaign=huge, overdue=True, draft=draft)
        for i in range(1, 61)
    ]
    campaigns = [CampaignCount(i, huge, 10**6, 10**6) for i in range(60)]
    agenda = Agenda(
        tasks=entries_,
        scheduled_today=entries_,
        campaigns=campaigns,
        task_count=10**6,
        overdue=10**6,
        email_count=10**6,
    )
    links = [
        ("google", "Google", "https://bot.example.com/oauth/start/google?t=" + "x" * 2900),
        ("microsoft", "Microsoft 365", "https://x/" + "y" * 4000),
    ]
    status = Status(Provider.GOOGLE, huge, huge, None, False, "535 5.7.8 " + huge, 10**6, 10**6, oauth=True)
    panel = mailbox.Panel(status, "through the company relay", links)
    view = home.home_view(agenda, ZONE, NOW, panel).to_dict()
    assert view_problems(view) == []
    texts = json.dumps(view, ensure_ascii=False)
    assert "refused the login: 535 5.7.8" in texts and "Reconnect Google" in texts
    assert "Reconnect Microsoft 365" not in texts, "a link longer than a button takes is left out, not sent"


def test_the_broken_mailbox_message_fits_and_cuts_the_servers_words() -> None:
    message = mailbox.mailbox_broken_message(
        "your mailbox refused the login: " + "words " * 2000,
        "<!channel> · step 1",
        ("google", "Google", "https://b.example/oauth/start/google?t=abc"),
    )
    fits_message(message)
    shown = json.dumps(message.as_kwargs())
    assert "Reconnect Google" in shown and "&lt;!channel&gt;" in shown
    without = json.dumps(mailbox.mailbox_broken_message("refused", "about", None).as_kwargs())
    assert "bot mailbox set" in without and "Reconnect" not in without


# --- what came back (bot/slack/blocks/replies.py) ------------------------------------------


def inbound_of(kind: str, excerpt: str, status: str | None = None, ended: int = 1) -> Any:
    from bot.store.models import Inbound

    return Inbound(
        id=7,
        mailbox="rep:U0REP",
        folder="INBOX",
        uidvalidity=1,
        uid=1,
        kind=kind,
        rep_id="U0REP",
        send_id=1,
        ended=list(range(ended)),
        excerpt=excerpt,
        status=status,
        message_id="<a+b@mail.gmail.com>",
        received_at=NOW,
        resume_at=NOW if kind == "auto_reply" else None,
    )


@BUILDERS
@given(
    kind=st.sampled_from(["reply", "auto_reply", "bounce", "unsubscribe"]),
    excerpt=text,
    status=text,
    who=name,
    ended=st.integers(1, 5),
)
def test_every_inbound_message_fits_whatever_came_back(
    kind: str, excerpt: str, status: str, who: str, ended: int
) -> None:
    from bot.slack.blocks import replies

    for provider in ("google", "microsoft365", "other", None):
        fits_message(
            replies.inbound_message(
                inbound_of(kind, excerpt, status, ended),
                build_entry(first_name=who, campaign=who),
                ZoneInfo("UTC"),
                provider,
            )
        )
    fits_message(replies.gone_on(build_entry(first_name=who)))
    agenda = Agenda(replies=[(inbound_of("reply", excerpt), who)] * 12)
    fits_view(home.home_view(agenda, ZoneInfo("UTC"), NOW))


def test_the_mail_link_searches_the_reps_mail_client_for_the_message_id() -> None:
    from bot.slack.blocks.replies import mail_link

    assert (
        mail_link("google", "<a+b@mail.gmail.com>")
        == "https://mail.google.com/mail/u/0/#search/rfc822msgid%3Aa%2Bb%40mail.gmail.com"
    )
    assert mail_link("microsoft365", "<a+b@x.example>") == "https://outlook.office.com/mail/search?q=a%2Bb%40x.example"
    assert mail_link("other", "<a@x.example>") is None
