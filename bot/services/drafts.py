"""Drafts: a send's email as it will go out, for its person, from its rep.

Task messages in Slack and emails over SMTP both come from `draft_for`, so the rep
sees exactly what will be sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.headerregistry import Address
from zoneinfo import ZoneInfo

from jinja2 import TemplateError
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core import rules
from bot.core.templates import MissingFields, TemplateProblem, render
from bot.services.unsubscribe import Links
from bot.store.models import Campaign, Enrollment, Person, Rep, Send, SendStatus, Step

log = logging.getLogger(__name__)
PROBLEM_CHARS = 200  # a reason short enough for a list item


@dataclass(frozen=True)
class Draft:
    send_id: int
    to: str  # "Name <address>", as people read it (see `mailbox`)
    to_email: str
    sender: str  # "Name <address>"; the address may be empty when Slack has none
    sender_email: str | None
    subject: str
    body: str  # this step's body (the rep's version where edited), without any quote
    full_body: str  # what goes out: the body plus, for a thread step, the quoted previous email
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # template fields with no value
    notice: str | None = None  # something the rep should be told (e.g. the thread target was skipped)
    footer: str = ""  # the campaign's footer, filled: after the body in both parts, never stored on the send
    unsubscribe_url: str | None = None  # the one-click link (List-Unsubscribe); None without PUBLIC_URL
    unsubscribe_mailto: str | None = None  # the mailto of List-Unsubscribe


def person_name(person: Person) -> str:
    return " ".join(part for part in (person.first_name, person.last_name) if part)


def rep_name(rep: Rep | None) -> str:
    if rep is None:
        return ""
    return rep.name or " ".join(part for part in (rep.first_name, rep.last_name) if part)


def mailbox(name: str, address: str | None) -> str:
    """`Name <address>` as people read it: quoted where the name needs it, never encoded.

    The one form of a person or a rep in a draft: the From and To headers are
    encoded from it (bot/delivery/mail.py) and the attribution of a quote shows it.
    """
    username, _, domain = (address or "").rpartition("@")
    # A name is one line, however it was typed or imported.
    return str(Address(display_name=" ".join(name.split()), username=username, domain=domain))


def rep_mailbox(rep: Rep | None) -> str:
    return mailbox(rep_name(rep), rep.email if rep else None)


def template_values(person: Person, rep: Rep | None, unsubscribe_url: str = "") -> dict[str, str | None]:
    """The flat values a template may read: person fields, custom fields, `sender.*`, `unsubscribe_url`."""
    values: dict[str, str | None] = dict(person.fields or {})
    values.update(
        first_name=person.first_name,
        last_name=person.last_name,
        email=person.email,
        company=person.company,
        title=person.title,
        unsubscribe_url=unsubscribe_url,
    )
    if rep is not None:
        values.update(
            {
                "sender.first_name": rep.first_name,
                "sender.last_name": rep.last_name,
                "sender.name": rep_name(rep),
                "sender.email": rep.email,
            }
        )
    return values


def _fill(template: str | None, values: dict[str, str | None], missing: list[str]) -> str:
    if not template:
        return ""
    try:
        return render(template, values)
    except MissingFields as exc:
        missing.extend(exc.names)
        return template
    except (TemplateProblem, TemplateError) as exc:
        # Imported templates are checked; a template that still fails to render
        # (e.g. the sandbox refusing an attribute) stops the send just the same.
        missing.append(f"template error: {exc}")
        return template


def _subject_of(session: Session, send: Send, values: dict[str, str | None], missing: list[str]) -> str:
    """The subject `send` went out with, or would have (a skipped thread step: `Re:` its own previous)."""
    if send.subject is not None:
        return send.subject
    step = session.get(Step, send.step_id)
    if step is not None and step.subject:
        return _fill(step.subject, values, missing)
    earlier = session.get(Send, send.thread_of_id) if send.thread_of_id else None
    return rules.reply_subject(_subject_of(session, earlier, values, missing)) if earlier is not None else ""


def draft_for(session: Session, send: Send, links: Links | None = None) -> Draft:
    """The email of `send` as it will go out now (edited version first, then the step's).

    `links` (bot/services/unsubscribe.py) gives the email its unsubscribe link; without
    them, as in Slack's previews, `{{ unsubscribe_url }}` is empty.
    """
    enrollment = session.get(Enrollment, send.enrollment_id)
    assert enrollment is not None
    step = session.get(Step, send.step_id)
    person = session.get(Person, enrollment.person_id)
    campaign = session.get(Campaign, enrollment.campaign_id)
    assert step is not None and person is not None and campaign is not None
    rep = session.get(Rep, send.rep_id)
    assert person.id is not None
    unsubscribe_url = links.url(person.id) if links else None
    values = template_values(person, rep, unsubscribe_url or "")
    missing: list[str] = []

    subject = send.subject if send.subject is not None else _fill(step.subject, values, missing)
    body = send.body if send.body is not None else _fill(step.body, values, missing)
    full_body, in_reply_to, references, notice = body, None, [], None

    previous = session.get(Send, send.thread_of_id) if send.thread_of_id else None
    if previous is not None and previous.status == SendStatus.SENT and previous.message_id:
        if send.subject is None:
            subject = rules.reply_subject(previous.subject or "")
        in_reply_to = previous.message_id
        references = rules.reply_references((previous.references or "").split(), previous.message_id)
        assert previous.sent_at is not None
        quoted = rules.Quoted(
            body=previous.body or "",
            sent_at=previous.sent_at,
            # The rep who sent it: the quote says who wrote it, whoever sends this one.
            sender=rep_mailbox(session.get(Rep, previous.rep_id)),
            zone=ZoneInfo(enrollment.zone),
        )
        full_body = rules.reply_body(body, quoted)
    elif previous is not None:
        if send.subject is None:
            subject = _subject_of(session, previous, values, missing)
        notice = f"step {previous.position} was {previous.status}, so step {send.position} goes out as a new email"

    footer = _fill(campaign.footer, values, missing)
    return Draft(
        send_id=send.id,  # type: ignore[arg-type]  # a stored row's id: int | None on the model, never None here
        to=mailbox(person_name(person), person.email),
        to_email=person.email,
        sender=rep_mailbox(rep),
        sender_email=rep.email if rep else None,
        subject=subject,
        body=body,
        full_body=full_body,
        in_reply_to=in_reply_to,
        references=references,
        missing=sorted(set(missing)),
        notice=notice,
        footer=footer,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=links.mailto_url(person.id, rep.email if rep else None) if links else None,
    )


def not_built(exc: Exception) -> str:
    """Why an email could not be built, in a few words (for the rep, and stored on a failed send)."""
    reason = f"the email could not be built: {str(exc) or type(exc).__name__}"
    return reason if len(reason) <= PROBLEM_CHARS else reason[: PROBLEM_CHARS - 1] + "…"


def draft_or_problem(session: Session, send: Send, links: Links | None = None) -> tuple[Draft | None, str | None]:
    """The send's draft, or why it cannot be built: one broken send must not break a list."""
    try:
        return draft_for(session, send, links), None
    except SQLAlchemyError:
        raise  # the database, not this send: nothing else on the list would build either
    except Exception as exc:
        log.warning("send %s: the email could not be built", send.id, exc_info=True)
        return None, not_built(exc)
