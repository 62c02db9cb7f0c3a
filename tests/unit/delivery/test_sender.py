"""The sender process: emails handed over from a process of their own, and what happens when it dies."""

from __future__ import annotations

import signal
import threading

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.clock import FixedClock
from bot.delivery.mail import outbound
from bot.delivery.ports import Outbound
from bot.delivery.scheduler import CHUNK, Scheduler
from bot.delivery.sender import Handed, SenderGone, SenderProcess
from bot.delivery.transports import SmtpTransport
from bot.settings import load_settings
from bot.store.models import SendStatus
from tests.support.due_emails import due_email, reload
from tests.support.notifier import RecordingNotifier
from tests.support.smtp_sink import SmtpSink
from tests.support.transports import DyingTransport


def wire(to: str) -> Outbound:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "Rita Rep <rita@seller.example>"
    message["To"] = to
    message["Subject"] = "Hello"
    message["Message-ID"] = f"<{to.split('@')[0]}@seller.example>"
    message.set_content("Hi there.\n.\nA line that was only a dot, above.\n")
    return outbound(message)


def scheduler(engine: Engine, clock: FixedClock, notifier: RecordingNotifier, transport: SmtpTransport) -> Scheduler:
    settings = load_settings(digest_cron="0 0 1 1 *")
    return Scheduler(engine, clock, transport, notifier, settings, batch_size=100, sender_process_from=1)


def test_a_sender_process_hands_each_email_over_and_says_how_it_went():
    with SmtpSink() as sink:
        sink.reply_to("busy@buyer.example", "451 4.2.1 Mailbox busy")
        sink.reply_to("gone@buyer.example", "550 5.1.1 No such user")
        sender = SenderProcess(SmtpTransport(sink.url))
        try:
            sender.submit([wire("pat@buyer.example"), wire("busy@buyer.example"), None, wire("gone@buyer.example")])
            handed = sender.outcome()
        finally:
            sender.close()

        assert [h.handed for h in handed] == [True, True, False, True]
        assert handed[0] == Handed(True)
        busy, gone = handed[1].error, handed[3].error
        assert busy is not None and (busy.reason, busy.retry, busy.uncertain) == ("451 4.2.1 Mailbox busy", True, False)
        assert gone is not None and (gone.reason, gone.retry) == ("550 5.1.1 No such user", False)
        assert [r.rcpt_tos for r in sink.messages] == [["pat@buyer.example"]]
        assert sink.messages[0].data == wire("pat@buyer.example").data, "the bytes arrive as they were prepared"


def test_a_stopped_sender_finishes_the_email_in_flight_and_gives_back_every_chunk_it_has():
    people = [f"person{i}@buyer.example" for i in range(40)]
    with SmtpSink() as sink:
        sender = SenderProcess(SmtpTransport(sink.url))
        try:
            sender.submit([wire(email) for email in people[:20]])
            sender.submit([wire(email) for email in people[20:]])
            sender.process.send_signal(signal.SIGINT)  # Ctrl-C reaches the whole process group
            handed = sender.outcome() + sender.outcome()
        finally:
            sender.close()
        arrived = [r.rcpt_tos[0] for r in sink.messages]

    assert len(handed) == 40, "both chunks come back"
    assert [email for email, one in zip(people, handed) if one.handed] == arrived
    assert all(one.error is None for one in handed)
    assert len(arrived) < 40, "it stopped handing over"


def test_a_transport_that_cannot_go_to_another_process_is_refused_and_emails_go_out_from_this_one(
    engine: Engine, session: Session, clock: FixedClock
):
    class Unmovable(SmtpTransport):
        def __init__(self, url: str) -> None:
            super().__init__(url)
            self.lock = threading.Lock()  # cannot be pickled

    with SmtpSink() as sink:
        with pytest.raises(SenderGone, match="cannot be given to a sender process"):
            SenderProcess(Unmovable(sink.url))
        send = due_email(session, clock.now())
        session.commit()

        result = scheduler(engine, clock, RecordingNotifier(), Unmovable(sink.url)).tick()

        assert result.sent == 1 and len(sink.messages) == 1
        assert reload(session, send).status == SendStatus.SENT


def test_a_sender_that_dies_mid_batch_leaves_its_emails_uncertain_and_the_rest_for_the_next_pass(
    engine: Engine, session: Session, clock: FixedClock
):
    people = [f"person{i:03}@buyer.example" for i in range(4 * CHUNK)]
    fatal = CHUNK + 4  # the fifth email of the second chunk
    sends = [due_email(session, clock.now(), email) for email in people]
    session.commit()
    notifier = RecordingNotifier()

    with SmtpSink() as sink:
        with pytest.raises(SenderGone):
            scheduler(engine, clock, notifier, DyingTransport(sink.url, fatal=people[fatal])).tick()
        first_pass = {r.rcpt_tos[0] for r in sink.messages}
        stored = [reload(session, send) for send in sends]
        after_death = {email: (send.id, send.status, send.claimed_by, send.reason) for email, send in zip(people, stored)}
        session.commit()  # the next pass needs SQLite's write lock

        next_pass = scheduler(engine, clock, notifier, SmtpTransport(sink.url)).tick()

        arrived = [r.rcpt_tos[0] for r in sink.messages]

    assert first_pass == set(people[:fatal]), "the sender died on the way"
    statuses = {email: status for email, (_, status, _, _) in after_death.items()}
    assert {statuses[email] for email in people[:CHUNK]} == {SendStatus.SENT}
    uncertain = [email for email in people if statuses[email] == SendStatus.UNCERTAIN]
    assert people[CHUNK : fatal + 1] == uncertain[:5] and len(uncertain) <= 2 * CHUNK, "at most the two chunks the sender had"
    assert all("sender process stopped" in (after_death[email][3] or "") for email in uncertain)
    assert set(notifier.told("send_uncertain")) == {after_death[email][0] for email in uncertain}, "each rep is told"
    rest = [email for email in people if statuses[email] not in (SendStatus.SENT, SendStatus.UNCERTAIN)]
    assert rest == people[CHUNK + len(uncertain) :]
    assert {after_death[email][1:3] for email in rest} == {(SendStatus.PLANNED, None)}
    assert next_pass.sent == len(rest), "the next pass sends the rest"
    assert sorted(arrived) == sorted(set(arrived)), "no email arrived twice"
    assert set(arrived) == set(people) - (set(uncertain) - set(people[:fatal]))
