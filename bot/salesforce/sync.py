"""The syncer: writes the queued sync work (bot/services/sync.py) to Salesforce as Tasks,
and reads back email tasks the rep completed in Salesforce.

A pass: claim due items (a lease; PostgreSQL workers skip each other's rows), and for
each one match the person to a Contact by email, else an unconverted Lead (else
skip it, or create a Lead: SALESFORCE_NO_MATCH), the rep to a User by email (the
Task's owner), and write:

    task_queued     a Task "Email: <subject>", Not Started, due on the task's day, the draft
    task_sent       that Task Completed, with the subject and body as sent
    task_scheduled  that Task's ActivityDate moved to the new day
    task_skipped    that Task Completed, marked skipped
    email_sent      a Completed Task "Email: <subject>" with the body as sent
    reply           a Completed Task "Reply: <subject>" with the reply

Every Task it creates carries `REF` and the item's id as the last line of its
Description; an item tried before (its answer may have been lost, or its worker
died) first looks for a Task with that line, so no Task is ever made twice.
Salesforce at its limit or down ends the pass: that item waits a growing delay,
the rest are given back; nothing is lost. Then it polls Tasks modified since the
last poll: an email task completed in Salesforce is done here too (as Skip).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from bot.background import Background
from bot.clock import UTC, Clock
from bot.salesforce.client import Client, SalesforceDown, SalesforceRefused
from bot.services import sync, tasks
from bot.services.drafts import draft_or_problem
from bot.services.errors import ServiceError
from bot.settings import NoMatch, Settings
from bot.store.models import Enrollment, Person, Rep, SalesforceSync, Send, SendStatus, Step, SyncEvent

log = logging.getLogger(__name__)

REF = "campaign-bot ref"  # "campaign-bot ref 123": the sync item that created the Task
NO_COMPANY = "[not provided]"  # a Lead's Company is required
BATCH = 50
POLL = "tasks"  # the cursor of the poll of modified Tasks
POLL_OVERLAP = dt.timedelta(minutes=2)  # re-read a little: a Task saved late may carry an earlier time
NOT_STARTED, COMPLETED = "Not Started", "Completed"
UPDATES = (SyncEvent.TASK_SENT, SyncEvent.TASK_SCHEDULED, SyncEvent.TASK_SKIPPED)


@dataclass
class SyncResult:
    synced: int = 0
    unmatched: int = 0
    failed: int = 0
    retrying: int = 0
    completed_in_salesforce: int = 0
    down: str | None = None  # why the pass stopped early

    def __str__(self) -> str:
        text = (
            f"salesforce: {self.synced} synced, {self.unmatched} unmatched, {self.failed} failed, "
            f"{self.retrying} to retry, {self.completed_in_salesforce} completed in Salesforce"
        )
        return f"{text} (stopped: {self.down})" if self.down else text


class Unmatched(Exception):
    """Nothing in Salesforce to write this item to; str() says why."""


@dataclass
class _Pass:
    session: Session
    now: dt.datetime
    who: dict[str, str | None] = field(default_factory=dict)  # person email -> Contact or Lead Id
    owner: dict[str, str | None] = field(default_factory=dict)  # rep email -> User Id


class Syncer(Background):
    """Syncs pass after pass beside the scheduler (`bot serve`, `bot worker`), or once (`bot tick`)."""

    thread_name = "salesforce"

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        settings: Settings,
        client: Client | None = None,
        worker_id: str | None = None,
        *,
        batch: int = BATCH,
    ) -> None:
        self.engine, self.clock, self.settings, self.batch = engine, clock, settings, batch
        self.client = client or Client(settings)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        super().__init__()

    # --- one pass -------------------------------------------------------------------------
    def sync(self) -> SyncResult:
        """Write everything due to Salesforce, then read back tasks completed there."""
        result = SyncResult()
        with Session(self.engine, expire_on_commit=False) as session:
            while result.down is None:
                items = sync.claim_due(session, self.clock.now(), self.worker_id, limit=self.batch)
                session.commit()
                if not items:
                    break
                work = _Pass(session, self.clock.now())
                for index, item in enumerate(items):
                    if not self._one(work, item, result):
                        sync.release(session, items[index + 1 :])
                        session.commit()
                        break
            if result.down is None:
                try:
                    result.completed_in_salesforce = self._poll(session)
                except SalesforceDown as exc:
                    result.down = str(exc)
                except SalesforceRefused as exc:
                    log.error("reading modified Tasks from Salesforce was refused: %s", exc)
                session.commit()
        return result

    def _one(self, work: _Pass, item: SalesforceSync, result: SyncResult) -> bool:
        """Write one item and commit; False when Salesforce is down (the pass stops)."""
        session, now = work.session, self.clock.now()
        try:
            who, task_id = self._write(work, item)
        except Unmatched as why:
            sync.unmatched(session, item, now, str(why))
            result.unmatched += 1
        except SalesforceDown as exc:
            log.warning("Salesforce is unavailable (%s): sync item %s waits", exc, item.id)
            sync.not_synced(session, item, now, str(exc), busy=True)
            result.retrying += 1
            result.down = str(exc)
        except Exception as exc:  # refused, or a bug: this item must not hold up the rest
            if not isinstance(exc, SalesforceRefused):
                log.exception("sync item %s could not be written", item.id)
            if sync.not_synced(session, item, now, str(exc) or type(exc).__name__, busy=False):
                result.failed += 1
            else:
                result.retrying += 1
        else:
            sync.synced(session, item, now, who_id=who, task_id=task_id)
            result.synced += 1
        session.commit()
        return result.down is None

    # --- writing an item ---------------------------------------------------------------------
    def _write(self, work: _Pass, item: SalesforceSync) -> tuple[str | None, str]:
        """Create or update the item's Task; (the Contact or Lead, the Task)."""
        session = work.session
        send = session.get(Send, item.send_id, populate_existing=True)
        assert send is not None
        enrollment = session.get(Enrollment, send.enrollment_id)
        assert enrollment is not None
        zone = ZoneInfo(enrollment.zone)
        if item.event in UPDATES:
            queued = sync.task_id_of(session, send.id)  # type: ignore[arg-type]  # a stored Send: its id is set
            if queued is None or queued.sf_task_id is None:
                why = (
                    queued.last_error
                    if queued is not None and queued.last_error
                    else "it was not written to Salesforce"
                )
                raise Unmatched(f"its task has no Salesforce Task: {why}")
            self.client.update("Task", queued.sf_task_id, self._update_fields(session, item, send, zone))
            return queued.sf_who_id, queued.sf_task_id
        person = session.get(Person, enrollment.person_id)
        assert person is not None
        who = self._who(work, person, send.rep_id)
        fields = {
            **self._create_fields(session, item, send, zone),
            "WhoId": who,
            "TaskSubtype": "Email",
            "Priority": "Normal",
        }
        owner = self._owner(work, send.rep_id)
        if owner:
            fields["OwnerId"] = owner
        ref = f"{REF} {item.id}"
        fields["Description"] = f"{fields['Description']}\n\n{ref}"
        if item.attempts > 1:  # tried before: its Task may exist though the answer never came
            found = self.client.query(
                "SELECT Id, Description FROM Task WHERE WhoId = {} AND Subject = {}", who, fields["Subject"]
            )
            for task in found:
                if (task.get("Description") or "").rstrip().endswith(ref):
                    return who, str(task["Id"])
        return who, self.client.create("Task", fields)

    def _create_fields(self, session: Session, item: SalesforceSync, send: Send, zone: ZoneInfo) -> dict[str, Any]:
        now = self.clock.now()
        if item.event == SyncEvent.REPLY:
            subject = item.subject or ""
            return {
                "Subject": _cut(f"Reply: {subject}"),
                "Status": COMPLETED,
                "ActivityDate": _day(now, zone),
                "Description": item.body or "",
            }
        if item.event == SyncEvent.EMAIL_SENT:
            subject, body = _as_sent(session, send)
            return {
                "Subject": _cut(f"Email: {subject}"),
                "Status": COMPLETED,
                "ActivityDate": _day(send.sent_at or now, zone),
                "Description": body,
            }
        # task_queued: the draft as it is now (the rep's edits included)
        subject, body = _as_sent(session, send)
        return {
            "Subject": _cut(f"Email: {subject}"),
            "Status": NOT_STARTED,
            "ActivityDate": _day(send.due_at, zone),
            "Description": body,
        }

    def _update_fields(self, session: Session, item: SalesforceSync, send: Send, zone: ZoneInfo) -> dict[str, Any]:
        if item.event == SyncEvent.TASK_SCHEDULED:
            return {"ActivityDate": _day(send.due_at, zone)}
        subject, body = _as_sent(session, send)
        if item.event == SyncEvent.TASK_SENT:
            return {
                "Subject": _cut(f"Email: {subject}"),
                "Status": COMPLETED,
                "ActivityDate": _day(send.sent_at or self.clock.now(), zone),
                "Description": body,
            }
        return {  # skipped
            "Subject": _cut(f"Email: {subject} (skipped)"),
            "Status": COMPLETED,
            "ActivityDate": _day(send.done_at or self.clock.now(), zone),
            "Description": f"Skipped: this email was not sent.\n\n{body}",
        }

    def _who(self, work: _Pass, person: Person, rep_id: str) -> str:
        """The person's Contact, else unconverted Lead; else a new Lead or Unmatched."""
        email = person.email
        if email not in work.who:
            found = self.client.query("SELECT Id FROM Contact WHERE Email = {} ORDER BY CreatedDate LIMIT 1", email)
            if not found:
                found = self.client.query(
                    "SELECT Id FROM Lead WHERE Email = {} AND IsConverted = false ORDER BY CreatedDate LIMIT 1", email
                )
            work.who[email] = str(found[0]["Id"]) if found else None
        who = work.who[email]
        if who is not None:
            return who
        if self.settings.salesforce_no_match != NoMatch.LEAD:
            raise Unmatched(f"no Contact or Lead in Salesforce has the email {email}")
        lead: dict[str, Any] = {
            "FirstName": person.first_name or None,
            "LastName": person.last_name or email.split("@")[0],  # required
            "Company": person.company or NO_COMPANY,  # required
            "Email": email,
            "Title": person.title or None,
        }
        owner = self._owner(work, rep_id)
        if owner:
            lead["OwnerId"] = owner
        who = work.who[email] = self.client.create("Lead", {k: v for k, v in lead.items() if v is not None})
        log.info("created a Salesforce Lead for %s", email)
        return who

    def _owner(self, work: _Pass, rep_id: str) -> str | None:
        """The rep's Salesforce User (by email); None: the Task is owned by the integration user."""
        rep = work.session.get(Rep, rep_id)
        if rep is None or not rep.email:
            return None
        if rep.email not in work.owner:
            found = self.client.query("SELECT Id FROM User WHERE Email = {} AND IsActive = true LIMIT 1", rep.email)
            work.owner[rep.email] = str(found[0]["Id"]) if found else None
            if not found:
                log.warning(
                    "no active Salesforce User has the email %s: its Tasks are owned by the integration user", rep.email
                )
        return work.owner[rep.email]

    # --- two-way: tasks completed in Salesforce -------------------------------------------------
    def _poll(self, session: Session) -> int:
        """Email tasks completed in Salesforce since the last poll are done here too (as Skip)."""
        now = self.clock.now()
        since = (sync.read_to(session, POLL) or now) - POLL_OVERLAP
        records = self.client.query(
            "SELECT Id, Status, IsClosed, LastModifiedDate FROM Task "
            "WHERE TaskSubtype = 'Email' AND IsClosed = true AND LastModifiedDate >= {} ORDER BY LastModifiedDate",
            since.astimezone(UTC),
        )
        completed = 0
        newest = since + POLL_OVERLAP
        for record in records:
            newest = max(newest, _instant(record["LastModifiedDate"]))
            send_id = sync.send_of_task(session, str(record["Id"]))
            send = session.get(Send, send_id, populate_existing=True) if send_id else None
            if send is None or send.status != SendStatus.QUEUED:
                continue  # not ours, or no longer waiting (sent, skipped, scheduled here)
            try:
                tasks.skip(session, send.id, send.rep_id, now, in_salesforce=True)  # type: ignore[arg-type]  # a stored Send: its id is set
            except ServiceError as exc:  # paused, or no longer in the campaign: nothing to do
                log.info("task %s was completed in Salesforce but %s", send.id, exc)
                continue
            completed += 1
            log.info("task %s was completed in Salesforce: done here too", send.id)
        sync.set_read_to(session, POLL, newest)
        return completed

    # --- the loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Pass after pass, every SALESFORCE_INTERVAL seconds, until `stop` is set."""
        while not stop.is_set():
            try:
                result = self.sync()
                if result.synced or result.unmatched or result.failed or result.completed_in_salesforce or result.down:
                    log.info("%s", result)
            except Exception:  # a database outage must not end the loop
                log.exception("Salesforce sync pass failed; trying again in %ss", self.settings.salesforce_interval)
            stop.wait(self.settings.salesforce_interval)


def syncer_for(settings: Settings, engine: Engine, clock: Clock) -> Syncer | None:
    """A syncer when SALESFORCE_URL is set (and sync work recorded from now on), else None."""
    sync.enable(settings.salesforce)
    return Syncer(engine, clock, settings) if settings.salesforce else None


def _as_sent(session: Session, send: Send) -> tuple[str, str]:
    """The subject and body: as sent (or as the rep edited them), else the draft."""
    if send.subject is not None and send.body is not None:
        return send.subject, send.body
    draft, problem = draft_or_problem(session, send)
    if draft is not None:
        return send.subject or draft.subject, send.body or draft.full_body
    step = session.get(Step, send.step_id)
    return send.subject or (step.subject if step else "") or "", f"(the draft cannot be built: {problem})"


def _day(at: dt.datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).date().isoformat()


def _cut(subject: str) -> str:
    return subject if len(subject) <= 255 else subject[:254] + "…"  # Task.Subject holds 255


def _instant(text: str) -> dt.datetime:
    """Salesforce's `2026-12-02T09:00:00.000+0000`."""
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)
