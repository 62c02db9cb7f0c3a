"""Listening against a real Dovecot: replies stop, out-of-office pauses, bounces suppress, nothing twice.

Messages reach Dovecot by IMAP APPEND; the bot reads them as `bot tick` does
(Watcher.read_all), or with its watcher threads (IDLE).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlmodel import Session, select

from bot.clock import FixedClock
from bot.delivery.routes import Relay
from bot.delivery.scheduler import Scheduler
from bot.delivery.transports import SmtpTransport
from bot.listen import watcher as watcher_module
from bot.listen.watcher import Reader, Watched
from bot.mail.urls import parse_imap_url
from bot.services import enrollments
from bot.settings import load_settings
from bot.store.models import Enrollment, EnrollmentStatus, Inbound, MailboxCursor, Notice, Send, SendStatus, Suppressed
from tests.e2e.listening import (
    BOUNCE_USER,
    KEY,
    REP_USER,
    STEPS,
    USERS,
    append,
    connect_mailbox,
    empty_inboxes,
    flags,
    imap_url,
    inbound_rows,
    sent_email,
    state,
    unsubscribe_mailto,
    watcher,
)
from tests.support import inbound_samples as samples
from tests.support.dovecot import Dovecot
from tests.support.due_emails import due_email
from tests.support.factories import REP_ID, make_campaign, make_rep
from tests.support.notifier import RecordingNotifier
from tests.support.smtp_sink import SmtpSink


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with Dovecot(users=USERS) as server:
        yield server


@pytest.fixture
def imap(dovecot: Dovecot, session: Session, clock: FixedClock) -> Dovecot:
    empty_inboxes(dovecot)
    connect_mailbox(session, dovecot, clock.now())
    return dovecot


def arrive(imap: Dovecot, clock: FixedClock, raw: bytes, user: str = REP_USER) -> None:
    append(imap, user, raw, clock.now())


@pytest.mark.parametrize(
    "write",
    [
        lambda sent: samples.gmail_reply("Ada Lovelace <ada@engines.example>", sent.message_id),
        lambda sent: samples.outlook_reply("ada@engines.example", "<other@x.example> " + sent.message_id),
        lambda sent: samples.apple_mail_reply("ada@engines.example", sent.message_id),
        lambda sent: samples.apple_mail_reply("ada@engines.example", None),  # references stripped: matched by address
    ],
    ids=["gmail", "outlook", "apple-mail", "apple-mail-no-references"],
)
def test_a_reply_ends_the_enrollment_and_cancels_its_planned_email(imap, engine, session, clock, write):
    sent = sent_email(session, "ada@engines.example", clock.now())
    arrive(imap, clock, write(sent))

    result = watcher(engine, clock, imap).read_all()

    reason = "replied at 2026-12-02 09:00 UTC"
    assert state(engine, sent) == (EnrollmentStatus.REPLIED, reason, SendStatus.CANCELLED, reason)
    [inbound] = inbound_rows(engine)
    assert (inbound.kind, inbound.send_id, inbound.rep_id) == ("reply", sent.sent_id, REP_ID)
    assert inbound.excerpt and ">" not in inbound.excerpt and "wrote" not in inbound.excerpt
    with Session(engine) as check:
        [notice] = check.exec(select(Notice)).all()
    assert (notice.kind, notice.rep_id, notice.inbound_id) == ("inbound", REP_ID, inbound.id)
    assert str(result) == "read 1 inbound message: 1 reply"


def test_reading_marks_nothing_seen_and_moves_nothing(imap, engine, session, clock):
    sent = sent_email(session, "ada@engines.example", clock.now())
    arrive(imap, clock, samples.gmail_reply("ada@engines.example", sent.message_id))

    watcher(engine, clock, imap).read_all()

    [read_flags] = flags(imap, REP_USER)  # still in the INBOX
    assert b"\\Seen" not in read_flags and b"\\Deleted" not in read_flags
    assert b"\\Recent" in read_flags  # EXAMINE, not SELECT: the session did not even take \Recent


def test_a_reply_from_someone_not_enrolled_changes_nothing(imap, engine, session, clock):
    sent = sent_email(session, "ada@engines.example", clock.now())
    arrive(imap, clock, samples.apple_mail_reply("zed@elsewhere.example", None))

    watcher(engine, clock, imap).read_all()

    assert state(engine, sent) == (EnrollmentStatus.ACTIVE, None, SendStatus.PLANNED, None)
    assert [row.kind for row in inbound_rows(engine)] == ["other"]


def test_a_mailing_list_message_from_the_person_is_not_a_reply(imap, engine, session, clock):
    sent = sent_email(session, "ada@engines.example", clock.now())
    arrive(imap, clock, samples.mailing_list("ada@engines.example"))

    watcher(engine, clock, imap).read_all()

    assert state(engine, sent) == (EnrollmentStatus.ACTIVE, None, SendStatus.PLANNED, None)


def test_with_stop_company_a_colleagues_reply_stops_the_company_but_never_a_free_mail_domain(
    imap, engine, session, clock
):
    ada = sent_email(session, "ada@engines.example", clock.now(), on_reply="stop_company")
    charles = sent_email(session, "charles@engines.example", clock.now())
    gmail_one = sent_email(session, "pat@gmail.com", clock.now())
    gmail_two = sent_email(session, "sam@gmail.com", clock.now())
    other = sent_email(session, "bob@builders.example", clock.now())
    arrive(imap, clock, samples.gmail_reply("Charles <charles@engines.example>", charles.message_id))
    arrive(imap, clock, samples.gmail_reply("Pat <pat@gmail.com>", gmail_one.message_id))

    watcher(engine, clock, imap).read_all()

    assert state(engine, ada)[0] == state(engine, charles)[0] == EnrollmentStatus.REPLIED
    assert state(engine, gmail_one)[0] == EnrollmentStatus.REPLIED
    assert state(engine, gmail_two)[0] == EnrollmentStatus.ACTIVE  # gmail.com is nobody's company
    assert state(engine, other)[0] == EnrollmentStatus.ACTIVE


def test_with_stop_person_a_colleagues_reply_stops_only_the_colleague(imap, engine, session, clock):
    ada = sent_email(session, "ada@engines.example", clock.now())
    charles = sent_email(session, "charles@engines.example", clock.now())
    arrive(imap, clock, samples.gmail_reply("charles@engines.example", charles.message_id))

    watcher(engine, clock, imap).read_all()

    assert (state(engine, ada)[0], state(engine, charles)[0]) == (EnrollmentStatus.ACTIVE, EnrollmentStatus.REPLIED)


def test_an_out_of_office_with_a_return_date_pauses_until_the_first_working_morning_after_it(
    imap, engine, session, clock
):
    sent = sent_email(session, "ada@engines.example", clock.now())
    text = "Ich bin bis zum 18.12.2026 nicht im Büro. In dringenden Fällen wenden Sie sich an Charles."
    arrive(
        imap,
        clock,
        samples.microsoft365_out_of_office(
            "ada@engines.example", sent.message_id, text, "Automatische Antwort: Analytical Engines"
        ),
    )

    watcher(engine, clock, imap).read_all()

    assert state(engine, sent)[0::2] == (EnrollmentStatus.PAUSED, SendStatus.PAUSED)
    with Session(engine) as check:
        enrollment = check.get(Enrollment, sent.enrollment_id)
        [inbound] = check.exec(select(Inbound)).all()
        assert enrollment is not None
        # Friday the 18th: back Monday 21 December, 09:00 in Stockholm.
        assert enrollment.resume_at == dt.datetime(2026, 12, 21, 8, 0, tzinfo=dt.UTC)
        assert (inbound.kind, inbound.return_on) == ("auto_reply", dt.date(2026, 12, 18))
        assert check.exec(select(Notice)).one().inbound_id == inbound.id  # the rep is told

    # The scheduler's periodic job resumes it then; the remaining days move later (no catch-up).
    with Session(engine) as job:
        enrollments.resume_due(job, dt.datetime(2026, 12, 21, 7, 59, tzinfo=dt.UTC))
        assert job.get(Enrollment, sent.enrollment_id).status == EnrollmentStatus.PAUSED  # type: ignore[union-attr]
        [resumed] = enrollments.resume_due(job, dt.datetime(2026, 12, 21, 8, 0, tzinfo=dt.UTC))
        assert resumed.status == EnrollmentStatus.ACTIVE and resumed.resume_at is None
        job.commit()
    with Session(engine) as check:
        planned = check.get(Send, sent.planned_id)
        assert planned is not None
        assert planned.status == SendStatus.PLANNED
        assert planned.due_at == dt.datetime(2026, 12, 23, 9, 0, tzinfo=dt.UTC)  # 4 Dec 09:00 + 19 paused days


def test_an_out_of_office_without_a_return_date_changes_nothing_but_the_rep_is_told(imap, engine, session, clock):
    sent = sent_email(session, "ada@engines.example", clock.now())
    arrive(
        imap,
        clock,
        samples.sieve_vacation("ada@engines.example", sent.message_id, "I am away and read email now and then."),
    )

    watcher(engine, clock, imap).read_all()

    assert state(engine, sent) == (EnrollmentStatus.ACTIVE, None, SendStatus.PLANNED, None)
    with Session(engine) as check:
        assert check.exec(select(Notice)).one().kind == "inbound"


@pytest.mark.parametrize(
    "bounce",
    [samples.postfix_bounce, samples.exchange_bounce, samples.gmail_bounce],
    ids=["postfix", "exchange", "gmail"],
)
def test_a_permanent_bounce_in_the_relays_bounce_mailbox_ends_the_enrollment_and_suppresses_the_address(
    imap, engine, session, clock, bounce
):
    sent = sent_email(session, "ada@engines.example", clock.now())
    arrive(imap, clock, bounce("ada@engines.example", sent.message_id), user=BOUNCE_USER)

    watcher(engine, clock, imap).read_all()

    status, reason, planned, _ = state(engine, sent)
    assert (status, planned) == (EnrollmentStatus.BOUNCED, SendStatus.CANCELLED)
    assert reason is not None and reason.startswith("bounced: 5.1.1")
    with Session(engine) as check:
        suppressed = check.get(Suppressed, "ada@engines.example")
        assert suppressed is not None and suppressed.reason.startswith("bounced: 5.1.1")


def test_a_bounce_that_names_only_the_address_matches_by_address(imap, engine, session, clock):
    sent = sent_email(session, "ada@engines.example", clock.now())
    arrive(imap, clock, samples.postfix_bounce("ada@engines.example", "<not-ours@elsewhere.example>"), user=BOUNCE_USER)

    watcher(engine, clock, imap).read_all()

    assert state(engine, sent)[0] == EnrollmentStatus.BOUNCED


def test_a_transient_bounce_is_noted_on_the_send_and_changes_nothing_else(imap, engine, session, clock):
    sent = sent_email(session, "ada@engines.example", clock.now())
    arrive(imap, clock, samples.gmail_bounce("ada@engines.example", sent.message_id, delayed=True), user=BOUNCE_USER)

    watcher(engine, clock, imap).read_all()

    assert state(engine, sent) == (EnrollmentStatus.ACTIVE, None, SendStatus.PLANNED, None)
    with Session(engine) as check:
        first = check.get(Send, sent.sent_id)
        assert first is not None and first.last_error is not None and first.last_error.startswith("delayed: 4.4.1")
        assert check.get(Suppressed, "ada@engines.example") is None


def test_a_reply_asking_to_stop_unsubscribes_and_suppresses(imap, engine, session, clock):
    sent = sent_email(session, "ada@engines.example", clock.now())
    arrive(
        imap,
        clock,
        samples.plain_reply("ada@engines.example", "Remove me.\n\nOn Wed, Rita wrote:\n> Hi", sent.message_id),
    )

    watcher(engine, clock, imap).read_all()

    reason = "unsubscribed at 2026-12-02 09:00 UTC"
    assert state(engine, sent) == (EnrollmentStatus.UNSUBSCRIBED, reason, SendStatus.CANCELLED, reason)
    with Session(engine) as check:
        assert check.get(Suppressed, "ada@engines.example") is not None


def test_a_restart_after_new_messages_misses_nothing_and_acts_on_nothing_twice(imap, engine, session, clock):
    ada = sent_email(session, "ada@engines.example", clock.now())
    bob = sent_email(session, "bob@builders.example", clock.now())
    arrive(imap, clock, samples.gmail_reply("ada@engines.example", ada.message_id))
    watcher(engine, clock, imap).read_all()
    arrive(imap, clock, samples.outlook_reply("bob@builders.example", bob.message_id))
    arrive(imap, clock, samples.mailing_list("zed@lists.example"))

    again = watcher(engine, clock, imap, worker_id="after-restart").read_all()
    idle = watcher(engine, clock, imap, worker_id="after-restart").read_all()

    assert (again.read, idle.read) == (2, 0)
    assert [row.uid for row in inbound_rows(engine)] == [1, 2, 3] or len({row.uid for row in inbound_rows(engine)}) == 3
    assert state(engine, bob)[0] == EnrollmentStatus.REPLIED
    with Session(engine) as check:
        assert len(check.exec(select(Notice)).all()) == 2  # one per reply, none twice


def test_a_changed_uidvalidity_starts_after_what_is_there_without_acting_on_old_mail(imap, engine, session, clock):
    sent = sent_email(session, "ada@engines.example", clock.now())
    watcher(engine, clock, imap).read_all()  # the cursor is set
    arrive(imap, clock, samples.gmail_reply("ada@engines.example", sent.message_id))
    with Session(engine) as change:
        cursor = change.get(MailboxCursor, (f"rep:{REP_ID}", "INBOX"))
        assert cursor is not None
        cursor.uidvalidity += 1  # as if the folder had been rebuilt since
        change.add(cursor)
        change.commit()

    result = watcher(engine, clock, imap).read_all()

    assert result.read == 0
    assert state(engine, sent)[0] == EnrollmentStatus.ACTIVE


def test_two_workers_reading_one_mailbox_at_once_act_on_each_message_once(imap, engine, session, clock, monkeypatch):
    monkeypatch.setattr(watcher_module, "CHUNK", 3)
    people = [sent_email(session, f"p{n}@firm{n}.example", clock.now()) for n in range(12)]
    for person, n in zip(people, range(12)):
        arrive(imap, clock, samples.plain_reply(f"p{n}@firm{n}.example", f"Reply number {n}", person.message_id))
    server = parse_imap_url(imap_url(imap, REP_USER))
    watched = Watched(f"rep:{REP_ID}", REP_ID, server, since=clock.now().date() - dt.timedelta(days=1))
    start = threading.Barrier(2)
    results = []

    def read() -> None:
        client = watcher_module.open_imap(server)
        start.wait()
        results.append(Reader(engine, clock, watched).read(client))  # no lease: both read everything
        client.logout()

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    rows = inbound_rows(engine)
    assert len(rows) == 12 and len({row.uid for row in rows}) == 12
    assert all(state(engine, person)[0] == EnrollmentStatus.REPLIED for person in people)
    with Session(engine) as check:
        assert len(check.exec(select(Notice)).all()) == 12
    assert sum(r.kinds.get("reply", 0) for r in results) == 12  # acted on by one reader or the other, once


def test_a_watcher_killed_mid_mailbox_is_taken_over_when_its_lease_runs_out_and_nothing_is_doubled(
    imap, engine, session, clock, monkeypatch
):
    monkeypatch.setattr(watcher_module, "CHUNK", 2)
    people = [sent_email(session, f"q{n}@co{n}.example", clock.now()) for n in range(5)]
    for n, person in enumerate(people):
        arrive(imap, clock, samples.plain_reply(f"q{n}@co{n}.example", f"Yes {n}", person.message_id))
    first = watcher(engine, clock, imap, worker_id="worker-1", listen_lease_seconds=60)
    [watched] = [w for w in first.mailboxes() if w.key == f"rep:{REP_ID}"]
    assert first._take(watched.key)
    chunks = iter([True, False])  # the first chunk is committed, then the worker dies

    client = watcher_module.open_imap(watched.server)
    killed = Reader(engine, clock, watched).read(client, still_mine=lambda: next(chunks, False))
    client.shutdown()
    second = watcher(engine, clock, imap, worker_id="worker-2", listen_lease_seconds=60)
    while_held = second.read_all()
    clock.advance(seconds=61)
    taken_over = second.read_all()

    assert (killed.read, while_held.read, taken_over.read) == (2, 0, 3)
    rows = inbound_rows(engine)
    assert len(rows) == 5 and all(state(engine, person)[0] == EnrollmentStatus.REPLIED for person in people)


def test_the_watcher_thread_acts_on_a_reply_it_hears_of_by_idle(imap, engine, session, clock):
    sent = sent_email(session, "ada@engines.example", clock.now())
    running = watcher(engine, clock, imap, listen_poll_seconds=30)  # IDLE hears it long before a poll
    running.start()
    try:
        deadline = threading.Event()
        arrive_after = threading.Timer(
            0.5, lambda: arrive(imap, clock, samples.gmail_reply("ada@engines.example", sent.message_id))
        )
        arrive_after.start()
        for _ in range(100):
            if state(engine, sent)[0] == EnrollmentStatus.REPLIED:
                break
            deadline.wait(0.1)  # a bounded wait for the watcher to act
        assert state(engine, sent)[0] == EnrollmentStatus.REPLIED
    finally:
        running.stop(10)


def test_a_reply_recorded_after_an_email_was_claimed_but_before_it_is_handed_over_stops_it(
    imap, engine, session, clock, tmp_path
):
    """The race: the email is claimed, the reply is acted on, the pass goes on: the email is not sent."""
    from bot.delivery.scheduler import build_scheduler
    from bot.services import queue
    from tests.e2e.listening import settings_for

    sent = sent_email(session, "ada@engines.example", clock.now())
    with Session(engine) as move:  # the follow-up is due now
        planned = move.get(Send, sent.planned_id)
        assert planned is not None
        planned.due_at = clock.now()
        move.add(planned)
        move.commit()
    settings = settings_for(imap, outbox_dir=str(tmp_path / "outbox"))
    scheduler = build_scheduler(settings, engine, None, clock)
    arrive(imap, clock, samples.gmail_reply("ada@engines.example", sent.message_id))

    def claim_then_reply(pass_session: Session, limit: int, skip_reps: set[str]) -> list[int]:
        ids = queue.claim_due(pass_session, clock.now(), scheduler.worker_id, limit=limit, lease=scheduler.lease)
        pass_session.commit()
        if ids:
            watcher(engine, clock, imap).read_all()  # the reply arrives while the email is claimed
        return ids

    result = scheduler._deliver(claim_then_reply, threading.Event())

    assert result.sent == 0
    assert state(engine, sent)[0::2] == (EnrollmentStatus.REPLIED, SendStatus.CANCELLED)
    assert not (tmp_path / "outbox").exists() or not list((tmp_path / "outbox").iterdir())


def test_the_scheduler_resumes_an_out_of_office_pause_on_the_return_morning(imap, engine, session, clock, tmp_path):
    from bot.delivery.scheduler import build_scheduler
    from tests.e2e.listening import settings_for

    sent = sent_email(session, "ada@engines.example", clock.now())
    arrive(
        imap,
        clock,
        samples.gmail_out_of_office("ada@engines.example", sent.message_id, "Out of the office until December 10."),
    )
    watcher(engine, clock, imap).read_all()
    assert state(engine, sent)[0] == EnrollmentStatus.PAUSED

    clock.at = dt.datetime(2026, 12, 11, 8, 0, tzinfo=dt.UTC)  # Friday 11 December, 09:00 in Stockholm
    build_scheduler(
        settings_for(imap, outbox_dir=str(tmp_path / "outbox"), digest_cron="0 0 1 1 *"), engine, None, clock
    ).tick()

    assert state(engine, sent)[0] == EnrollmentStatus.ACTIVE


def test_bot_tick_reads_each_mailbox_once_and_says_what_came_back(imap, engine, session, clock, db_url, tmp_path):
    import os
    import subprocess
    import sys

    from tests.e2e.listening import KEY

    sent = sent_email(session, "ada@engines.example", clock.now())
    arrive(imap, clock, samples.postfix_bounce("ada@engines.example", sent.message_id), user=BOUNCE_USER)
    arrive(imap, clock, samples.gmail_reply("bob@builders.example", "<unknown@x.example>"))
    session.close()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SECRET_KEY": KEY.get_secret_value(),
        "BOUNCE_IMAP_URL": imap_url(imap, BOUNCE_USER),
        "OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    env.pop("SLACK_BOT_TOKEN", None)

    done = subprocess.run(
        [sys.executable, "-m", "bot", "tick", "--now", "2026-12-02T09:00:00Z"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "read 2 inbound messages: 1 bounce"
    assert state(engine, sent)[0] == EnrollmentStatus.BOUNCED


# --- the List-Unsubscribe mailto ---------------------------------------------------------


def email_the_bot_sends(engine, clock: FixedClock, *, to: str) -> tuple[Send, EmailMessage]:
    """`to`'s first email, due now, delivered by the scheduler (PUBLIC_URL and SECRET_KEY set) to an SMTP server."""
    with Session(engine, expire_on_commit=False) as session:
        send = due_email(session, clock.now(), to)
        session.commit()
    settings = load_settings(
        secret_key=KEY.get_secret_value(), public_url="https://bot.example", digest_cron="0 0 1 1 *"
    )
    with SmtpSink() as sink:
        relay = Relay(lambda: SmtpTransport(sink.url, timeout=5))
        result = Scheduler(engine, clock, relay, RecordingNotifier(), settings, worker_id="worker-1").tick()
        [received] = [message for message in sink.messages if to in message.rcpt_tos]
    assert result.sent >= 1
    return send, received.message


@pytest.mark.parametrize(
    "body, headers",
    [
        ("", ""),  # most clients send the mailto's subject and nothing else
        ("This message was automatically generated by Gmail.", ""),
        ("", "Auto-Submitted: auto-generated\n"),  # a client that marks its request automatic (RFC 3834)
    ],
    ids=["empty", "gmail", "auto-submitted"],
)
def test_the_list_unsubscribe_mailto_of_an_email_the_bot_sent_unsubscribes_company_wide(
    imap, engine, session, clock, body, headers
):
    send, email = email_the_bot_sends(engine, clock, to="ada@engines.example")
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mailto = unsubscribe_mailto(email)
    assert mailto.startswith(f"mailto:{REP_USER}?subject=unsubscribe%20"), "to the rep's own, watched, address"
    # The same person in another rep's campaign: suppression is company-wide.
    make_rep(session, "U0REP0002", email="sam@seller.example")
    elsewhere = sent_email(
        session,
        "bob@builders.example",
        clock.now(),
        campaign=make_campaign(session, STEPS, name="Other", owner_id="U0REP0002"),
        rep_id="U0REP0002",
    )
    with Session(engine) as move:  # make the other campaign's enrollment Ada's
        other = move.get(Enrollment, elsewhere.enrollment_id)
        ada = move.get(Enrollment, send.enrollment_id)
        assert other is not None and ada is not None
        other.person_id = ada.person_id
        move.add(other)
        move.commit()

    arrive(
        imap, clock, samples.mailto_request("Ada Lovelace <ada@engines.example>", mailto, body=body, headers=headers)
    )
    result = watcher(engine, clock, imap).read_all()

    reason = "unsubscribed at 2026-12-02 09:00 UTC"
    with Session(engine) as check:
        ended = [check.get(Enrollment, n) for n in (send.enrollment_id, elsewhere.enrollment_id)]
        assert [(e.status, e.end_reason) for e in ended if e] == [(EnrollmentStatus.UNSUBSCRIBED, reason)] * 2
        following = check.exec(select(Send).where(Send.enrollment_id == send.enrollment_id, Send.position == 2)).one()
        assert (following.status, following.reason) == (SendStatus.CANCELLED, reason), "the next email is not sent"
        assert check.get(Send, elsewhere.planned_id).status == SendStatus.CANCELLED  # type: ignore[union-attr]
        suppressed = check.get(Suppressed, "ada@engines.example")
        assert suppressed is not None and suppressed.reason == reason
        [inbound] = check.exec(select(Inbound)).all()
        assert (inbound.kind, inbound.rep_id, inbound.enrollment_id) == ("unsubscribe", REP_ID, send.enrollment_id)
        [notice] = check.exec(select(Notice)).all()
        assert (notice.kind, notice.rep_id, notice.inbound_id) == ("inbound", REP_ID, inbound.id), "the rep is told"
    assert str(result) == "read 1 inbound message: 1 unsubscribe"


def test_a_forged_or_altered_mailto_token_unsubscribes_nobody(imap, engine, session, clock):
    send, email = email_the_bot_sends(engine, clock, to="ada@engines.example")
    bob = sent_email(session, "bob@builders.example", clock.now())
    mailto = unsubscribe_mailto(email)
    person_id, signature = mailto.rpartition("%20")[2].split(".")
    with Session(engine) as look:
        bob_id = look.get(Enrollment, bob.enrollment_id).person_id  # type: ignore[union-attr]
    altered = mailto.replace(signature, ("B" if signature[0] == "A" else "A") + signature[1:])
    someone_else = mailto.replace(f"{person_id}.", f"{bob_id}.")  # Ada's signature on Bob's id
    for forged in (altered, someone_else):
        arrive(imap, clock, samples.mailto_request("someone@elsewhere.example", forged))

    watcher(engine, clock, imap).read_all()

    with Session(engine) as check:
        assert check.exec(select(Suppressed)).all() == []
        statuses = [check.get(Enrollment, n).status for n in (send.enrollment_id, bob.enrollment_id)]  # type: ignore[union-attr]
        assert statuses == [EnrollmentStatus.ACTIVE] * 2
        assert [row.kind for row in check.exec(select(Inbound))] == ["other", "other"]


# --- polling ----------------------------------------------------------------------------


class CountedStop:
    """A stop for `Watcher.watch` that ends after `passes` waits; each wait moves the time on by what it waits."""

    def __init__(self, time: FakeMonotonic, passes: int) -> None:
        self.time = time
        self.passes = passes
        self.waits: list[float] = []

    def is_set(self) -> bool:
        return len(self.waits) >= self.passes

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        self.time.now += timeout
        return self.is_set()


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def test_polls_start_every_interval_however_long_a_pass_takes(imap, engine, session, clock, monkeypatch):
    """Without IDLE, a pass starts every LISTEN_POLL_SECONDS, start to start: a reply waits at most the interval."""
    fake = FakeMonotonic()
    monkeypatch.setattr(watcher_module, "time", fake)
    starts: list[float] = []
    real_read = Reader.read

    def slow_read(self, client, still_mine=lambda: True):
        starts.append(fake.now)
        result = real_read(self, client, still_mine)
        fake.now += 0.5  # the pass took half a second
        return result

    monkeypatch.setattr(Reader, "read", slow_read)
    polling = watcher(engine, clock, imap, listen_poll_seconds=2)
    polling.use_idle = False
    [mine] = [watched for watched in polling.mailboxes() if watched.rep_id == REP_ID]
    stop = CountedStop(fake, passes=3)

    polling.watch(mine, stop)  # type: ignore[arg-type]

    assert [start - starts[0] for start in starts] == [0.0, 2.0, 4.0]
    assert stop.waits == [1.5, 1.5, 1.5]
