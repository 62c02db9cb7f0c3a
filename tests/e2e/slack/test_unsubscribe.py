"""Unsubscribing end to end: an email's List-Unsubscribe link, POSTed to the real `bot serve`.

The email goes out through the real scheduler to aiosmtpd; its link is read from the
header as a mail client reads it; the requests go over HTTP to a `bot serve`
process, with no cookies and no login.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.clock import FixedClock
from bot.delivery.routes import Relay
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import SmtpTransport
from bot.services import enrollments
from bot.services.people import PersonInput
from bot.services.unsubscribe import TOLD
from bot.settings import load_settings
from bot.store.models import Enrollment, Notice, NoticeKind, Person, Send, SendStatus, Suppressed
from tests.support.due_emails import due_email
from tests.support.factories import REP_ID, make_campaign
from tests.support.fake_slack import FakeSlack
from tests.support.notifier import RecordingNotifier
from tests.support.sends import enroll, make_send
from tests.support.slack_requests import serving
from tests.support.smtp_sink import SmtpSink

KEY = Fernet.generate_key().decode()
PUBLIC = "https://bot.example.com"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def bot(tmp_path: Path, fake_slack: FakeSlack, db_url: str) -> Iterator[str]:
    """`bot serve` on loopback with PUBLIC_URL and SECRET_KEY; yields its base URL."""
    with serving(tmp_path, fake_slack, db_url, "--no-scheduler", PUBLIC_URL=PUBLIC, SECRET_KEY=KEY) as url:
        yield url.removesuffix("/slack/events")


def scheduler(engine: Engine, clock: FixedClock, sink: SmtpSink) -> Scheduler:
    settings = load_settings(_env_file=None, public_url=PUBLIC, secret_key=KEY, digest_cron="0 0 1 1 *")
    return Scheduler(engine, clock, Relay(lambda: SmtpTransport(sink.url, timeout=5)), RecordingNotifier(), settings)


def link_path(message: EmailMessage) -> str:
    """The path of the email's one-click link, as a mail client finds it in List-Unsubscribe."""
    https = re.search(r"<(https://[^>]+)>", str(message["List-Unsubscribe"]))
    assert https is not None and message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return urlsplit(https.group(1)).path


def request(
    url: str, data: bytes | None = None, content_type: str = "application/x-www-form-urlencoded"
) -> tuple[int, str]:
    """A request as a mail client makes it: no cookies, no login; the status and the page."""
    headers = {"Content-Type": content_type} if data is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as response:
            assert "Set-Cookie" not in response.headers
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def state(session: Session) -> tuple[list[tuple[str, str | None]], list[str], list[tuple[str, str | None]]]:
    """Enrollments (status, end reason), suppressed addresses and queued notices, as stored now."""
    session.expire_all()
    enrolled = [(e.status.value, e.end_reason) for e in session.exec(select(Enrollment).order_by(col(Enrollment.id)))]
    suppressed = [row.email for row in session.exec(select(Suppressed))]
    notices = [(n.kind, n.text) for n in session.exec(select(Notice).order_by(col(Notice.id)))]
    session.commit()
    return enrolled, suppressed, notices


ONE_CLICK = b"List-Unsubscribe=One-Click"


def test_a_one_click_post_without_cookies_unsubscribes_and_nothing_more_is_sent(
    bot: str, session: Session, engine: Engine, clock: FixedClock, sink: SmtpSink
) -> None:
    first = due_email(session, clock.now(), "pat@buyer.example")
    other_campaign = make_campaign(session, name="Renewals")
    pat = session.get(Person, session.get(Enrollment, first.enrollment_id).person_id)  # type: ignore[union-attr]
    assert pat is not None
    make_send(
        session,
        enroll(session, other_campaign, pat, launched_at=clock.now(), status="paused"),
        due_at=clock.now(),
        status="paused",
    )
    deliver = scheduler(engine, clock, sink)
    assert deliver.tick().sent == 1
    path = link_path(sink.messages[0].message)

    status, page = request(bot + path)  # a link scanner, or the person opening the link
    assert status == 200 and '<button type="submit">Unsubscribe</button>' in page and "List-Unsubscribe" in page
    assert state(session) == ([("active", None), ("paused", None)], [], []), "a GET changes nothing"

    status, page = request(bot + path, ONE_CLICK)

    assert status == 200 and "You are unsubscribed" in page
    enrolled, suppressed, notices = state(session)
    assert [status for status, _ in enrolled] == ["unsubscribed", "unsubscribed"], "company-wide: every campaign"
    assert all(re.fullmatch(r"unsubscribed at \d{4}-\d\d-\d\d \d\d:\d\d UTC", reason or "") for _, reason in enrolled)
    assert suppressed == ["pat@buyer.example"]
    assert notices == [(NoticeKind.SEND_NOTICE.value, TOLD)] * 2, "each rep told, through the notices queue"

    clock.advance(days=2)  # the thread step's day
    assert deliver.tick().sent == 0 and len(sink.messages) == 1
    session.expire_all()
    assert [
        s.status
        for s in session.exec(
            select(Send).where(Send.enrollment_id == first.enrollment_id).order_by(col(Send.position))
        )
    ] == [
        SendStatus.SENT,
        SendStatus.CANCELLED,
    ]
    session.commit()

    status, page = request(bot + path, ONE_CLICK)  # the person clicks again
    assert status == 200 and state(session)[2] == notices, "a second click changes nothing"

    result = enrollments.add_people(
        session,
        other_campaign,
        REP_ID,
        [PersonInput(email="pat@buyer.example")],
        now=clock.now(),
        smtputf8=lambda: None,
    )
    assert [(line.outcome, line.reason) for line in result.lines] == [("invalid", result.lines[0].reason)]
    assert "suppressed" in (result.lines[0].reason or ""), "refused at add, naming why"


def test_the_pages_button_and_an_rfc_8058_multipart_post_unsubscribe_too(
    bot: str, session: Session, engine: Engine, clock: FixedClock, sink: SmtpSink
) -> None:
    due_email(session, clock.now(), "a@buyer.example")
    due_email(session, clock.now(), "b@buyer.example")
    scheduler(engine, clock, sink).tick()
    paths = {received.rcpt_tos[0]: link_path(received.message) for received in sink.messages}

    # The page's own form, as a browser submits it.
    _, page = request(bot + paths["a@buyer.example"])
    form = re.search(r'name="([^"]+)" value="([^"]+)"', page)
    assert form is not None
    assert request(bot + paths["a@buyer.example"], f"{form.group(1)}={form.group(2)}".encode())[0] == 200
    # RFC 8058's own example body.
    boundary = "---FormBoundaryjWmhtjORrn"
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--{boundary}--\r\n'
    status, _ = request(bot + paths["b@buyer.example"], body.encode(), f"multipart/form-data; boundary={boundary}")

    assert status == 200
    assert sorted(state(session)[1]) == ["a@buyer.example", "b@buyer.example"]


def test_a_forged_or_altered_token_or_another_body_is_refused_and_changes_nothing(
    bot: str, session: Session, engine: Engine, clock: FixedClock, sink: SmtpSink
) -> None:
    due_email(session, clock.now(), "pat@buyer.example")
    scheduler(engine, clock, sink).tick()
    path = link_path(sink.messages[0].message)
    person_id, signature = path.removeprefix("/unsubscribe/").split(".")
    before = state(session)

    forged = [
        f"/unsubscribe/{int(person_id) + 1}.{signature}",  # another person, the same signature
        f"/unsubscribe/{person_id}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        f"/unsubscribe/{person_id}",
        "/unsubscribe/",
    ]
    for bad in forged:
        assert request(bot + bad)[0] == 404, bad
        status, page = request(bot + bad, ONE_CLICK)
        assert (status, "not valid" in page) == (404, True), bad
    assert request(bot + path, b"List-Unsubscribe=No")[0] == 400
    assert request(bot + path, b"")[0] == 400
    assert request(bot + path, ONE_CLICK + b"&x=" + b"a" * 5000)[0] == 413

    assert state(session) == before == ([("active", None)], [], [])
