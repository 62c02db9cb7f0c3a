"""Shared parts of the listening tests: a real Dovecot, a rep's mailbox on it, emails the bot sent."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from email.message import EmailMessage

from cryptography.fernet import Fernet
from imapclient import IMAPClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.clock import Clock
from bot.listen.watcher import Watcher
from bot.mail import mailboxes
from bot.mail.urls import parse_imap_url, parse_smtp_url
from bot.settings import Settings, load_settings
from bot.store.models import Campaign, Enrollment, Inbound, Mailbox, Rep, Send, SendStatus
from tests.support.dovecot import Dovecot
from tests.support.factories import REP_ID, make_campaign, make_rep
from tests.support.sends import enroll, make_person, make_send

REP_USER = "rita@seller.example"
BOUNCE_USER = "bounces@relay.example"
PASSWORD = "listen-s3cret"
USERS = {REP_USER: PASSWORD, BOUNCE_USER: PASSWORD}
KEY = SecretStr(Fernet.generate_key().decode())
STEPS = [
    {
        "day": 1,
        "send": "at_time",
        "time": "09:00",
        "subject": "Analytical Engines and Acme",
        "body": "Hi {{ first_name }}",
    },
    {"day": 3, "send": "thread", "body": "Following up"},
]


def imap_url(server: Dovecot, user: str) -> str:
    return f"imap://{user.replace('@', '%40')}:{PASSWORD}@127.0.0.1:{server.port}?timeout=5"


def settings_for(server: Dovecot, **values: object) -> Settings:
    values.setdefault("listen_poll_seconds", 0.2)
    return load_settings(secret_key=KEY.get_secret_value(), bounce_imap_url=imap_url(server, BOUNCE_USER), **values)


def append(server: Dovecot, user: str, raw: bytes, when: dt.datetime) -> None:
    """Deliver a message to the user's INBOX by IMAP APPEND, arriving at `when`."""
    with IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=5) as client:
        client.login(user, PASSWORD)
        client.append("INBOX", raw, msg_time=when)


def empty_inboxes(server: Dovecot) -> None:
    """Each test starts with empty inboxes (the server lives for the module)."""
    for user in USERS:
        with IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=5) as client:
            client.login(user, PASSWORD)
            client.select_folder("INBOX")
            uids = client.search(["ALL"])
            if uids:
                client.delete_messages(uids)
                client.expunge()


def flags(server: Dovecot, user: str) -> list[tuple[bytes, ...]]:
    with IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=5) as client:
        client.login(user, PASSWORD)
        client.select_folder("INBOX", readonly=True)
        return [data[b"FLAGS"] for _, data in sorted(client.fetch(client.search(["ALL"]), ["FLAGS"]).items())]


@dataclass
class Sent:
    """A person's first email, sent with `message_id`, and the planned follow-up."""

    enrollment_id: int
    sent_id: int
    planned_id: int
    message_id: str


def connect_mailbox(session: Session, server: Dovecot, now: dt.datetime, rep_id: str = REP_ID) -> None:
    if session.get(Mailbox, rep_id) is None:
        mailboxes.set_mailbox(
            session,
            rep_id,
            smtp=parse_smtp_url(f"smtp://{REP_USER.replace('@', '%40')}@127.0.0.1:2525"),
            imap=parse_imap_url(f"imap://{REP_USER.replace('@', '%40')}@127.0.0.1:{server.port}?timeout=5"),
            password=PASSWORD,
            provider=None,
            limits=mailboxes.Limits(),
            key=KEY,
            now=now - dt.timedelta(days=1),
        )
        session.commit()


def sent_email(
    session: Session,
    email: str,
    now: dt.datetime,
    *,
    campaign: Campaign | None = None,
    on_reply: str = "stop_person",
    rep_id: str = REP_ID,
) -> Sent:
    """`email`'s enrollment: step 1 sent an hour before `now`, step 2 planned two days later."""
    if session.get(Rep, rep_id) is None:
        make_rep(session, rep_id)
    if campaign is None:
        campaign = session.exec(select(Campaign).where(Campaign.name == "Q4 outreach")).first()
        if campaign is None:
            campaign = make_campaign(session, STEPS)
            campaign.on_reply = on_reply  # type: ignore[assignment]
            session.add(campaign)
    enrollment = enroll(
        session,
        campaign,
        make_person(session, email, company=email.split("@")[1]),
        rep_id=rep_id,
        launched_at=now - dt.timedelta(hours=1),
    )
    message_id = f"<{enrollment.id}.step1@seller.example>"
    first = make_send(
        session,
        enrollment,
        1,
        due_at=now - dt.timedelta(hours=1),
        status="sent",
        message_id=message_id,
        sent_at=now - dt.timedelta(hours=1),
        subject="Analytical Engines and Acme",
    )
    planned = make_send(
        session, enrollment, 2, due_at=now + dt.timedelta(days=2), status="planned", thread_of_id=first.id
    )
    return Sent(enrollment.id, first.id, planned.id, message_id)  # type: ignore[arg-type]


def state(engine: Engine, sent: Sent) -> tuple[str, str | None, str, str | None]:
    """The enrollment's status and end reason, and its planned follow-up's status and reason."""
    with Session(engine) as session:
        enrollment = session.get(Enrollment, sent.enrollment_id)
        planned = session.get(Send, sent.planned_id)
        assert enrollment is not None and planned is not None
        return enrollment.status, enrollment.end_reason, planned.status, planned.reason


def inbound_rows(engine: Engine) -> list[Inbound]:
    with Session(engine) as session:
        return list(session.exec(select(Inbound).order_by(Inbound.uid)))


def unsubscribe_mailto(message: EmailMessage) -> str:
    """The mailto of an email's List-Unsubscribe header (RFC 2369: each link in <>)."""
    links = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    [mailto] = [link for link in links if link.startswith("mailto:")]
    return mailto


def watcher(engine: Engine, clock: Clock, server: Dovecot, worker_id: str = "worker-1", **settings: object) -> Watcher:
    return Watcher(engine, clock, settings_for(server, **settings), worker_id=worker_id)


PLANNED = SendStatus.PLANNED
