"""Composing: a send's draft in, the email as it goes over the wire out. Pure: no database.

`draft_for` (bot/services/drafts.py) decides what a send says; this module only
turns that into a standard message: encoded headers for non-ASCII names and
subjects, a plain text and an HTML part, threading headers, CRLF line ends.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.policy
import html
import io
import random
import re
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import Compat32, EmailPolicy
from email.utils import format_datetime, getaddresses, make_msgid

from bot.delivery.ports import Email
from bot.services.drafts import Draft


class _WirePolicy(Compat32):
    """compat32 with CRLF, passing short ASCII headers through as they are.

    compat32 writes the MIME structure at a tenth of the header registry's cost; only
    the headers that carry data (names, addresses, the subject) and need more than a
    short ASCII line go through the email package's modern policy, which encodes
    non-ASCII (RFC 2047, or UTF-8 itself under SMTPUTF8) and folds any length within
    78 characters, where compat32 leaves a long word on one line of any length.
    """

    modern: EmailPolicy[EmailMessage] = email.policy.SMTP

    def fold_binary(self, name: str, value: str) -> bytes:
        # A header is one line: a line break in a subject or a name never starts a header of its own.
        value = " ".join(value.splitlines())
        if value.isascii() and len(name) + len(value) + 2 <= 78:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        if name in _DATA_HEADERS:
            folded = self.modern.header_factory(name, value).fold(policy=self.modern)
            return folded.encode("utf-8" if self.modern.utf8 else "ascii")
        return super().fold_binary(name, value)  # Message-IDs: folded between ids, never encoded


class _Utf8WirePolicy(_WirePolicy):
    """For an SMTPUTF8 message (RFC 6532): addresses and names in UTF-8 itself."""

    modern = email.policy.SMTPUTF8


_DATA_HEADERS = frozenset({"From", "To", "Subject"})
# The generator must never change a body: no ">From " for a line that starts with "From ".
WIRE = _WirePolicy(linesep="\r\n", mangle_from_=False)
WIRE_UTF8 = _Utf8WirePolicy(linesep="\r\n", mangle_from_=False)


class NotSendable(Exception):
    """The send cannot go out as an email; `task` says it becomes a task for the rep."""

    def __init__(self, reason: str, *, task: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.task = task


def new_message_id(sender_email: str) -> str:
    """A fresh Message-ID in the rep's own domain."""
    return make_msgid(domain=sender_email.rpartition("@")[2] or None)


def sendable(draft: Draft) -> None:
    """Raise NotSendable when a draft cannot go out as an automatic email."""
    if draft.missing:
        raise NotSendable(f"no value for {', '.join(draft.missing)}", task=True)
    if not draft.sender_email:
        raise NotSendable("the rep has no email address in their Slack profile", task=False)


def compose_email(draft: Draft, *, mailbox: str, message_id: str, date: dt.datetime) -> Email:
    """The email of a sendable draft, ready to hand over through `mailbox`."""
    assert draft.sender_email is not None, "check sendable() first"
    data = wire_bytes(compose(draft, message_id=message_id, date=date))
    return Email(
        send_id=draft.send_id,
        mailbox=mailbox,
        sender=draft.sender_email,
        recipients=[draft.to_email],
        data=data,
        message_id=message_id,
        subject=draft.subject,
        body=draft.body,
        in_reply_to=draft.in_reply_to,
        references=" ".join(draft.references) or None,
        notice=draft.notice,
    )


def compose(draft: Draft, *, message_id: str, date: dt.datetime) -> EmailMessage:
    """The email of a draft: headers, then plain text and HTML alternatives.

    Built with the email package's compat32 machinery (see _WirePolicy) rather than
    the header registry: the same standard output at a tenth of the cost, which
    matters at thousands of emails a minute. An address with non-ASCII before the @
    makes it an SMTPUTF8 message (RFC 6532), which the transport sends as such.
    """
    policy = WIRE if draft.to_email.isascii() and (draft.sender_email or "").isascii() else WIRE_UTF8
    message = EmailMessage(policy=policy)
    message["From"] = draft.sender
    message["To"] = draft.to
    message["Subject"] = draft.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    if draft.in_reply_to:
        message["In-Reply-To"] = draft.in_reply_to
        message["References"] = " ".join(draft.references)
    message["MIME-Version"] = "1.0"
    # A boundary of our own: the generator's would compile a regex per message. "=_"
    # never occurs in quoted-printable text, so it cannot collide with a part; kept
    # short enough that the header needs no folding, and drawn from `random` rather
    # than uuid4, whose os.urandom() call lets the GIL go on every email.
    message["Content-Type"] = f'multipart/alternative; boundary="=_{random.getrandbits(96):024x}"'
    message.set_payload([_text_part(draft.full_body, "plain"), _text_part(html_body(draft), "html")])
    return message


def _text_part(text: str, subtype: str) -> EmailMessage:
    part = EmailMessage(policy=WIRE)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    # Quoted-printable keeps every part 7-bit, whatever the server's 8BITMIME support.
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"))
    return part


def html_body(draft: Draft) -> str:
    """The HTML part: the body's paragraphs, then the quoted email in a blockquote."""
    parts = [_paragraphs(draft.body)]
    quote = quoted_part(draft)
    if quote is not None:
        attribution, quoted = quote
        parts.append(f"<p>{html.escape(attribution)}</p>")
        parts.append(
            f'<blockquote style="margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex">{_paragraphs(quoted)}</blockquote>'
        )
    return "<!DOCTYPE html>\n<html><body>\n" + "\n".join(parts) + "\n</body></html>\n"


def quoted_part(draft: Draft) -> tuple[str, str] | None:
    """A thread step's attribution line and the previous email's text (unquoted)."""
    if draft.full_body == draft.body:
        return None
    tail = draft.full_body[len(draft.body.rstrip()) :].strip("\n")
    attribution, _, quoted = tail.partition("\n")
    lines = [line[2:] if line.startswith("> ") else line.removeprefix(">") for line in quoted.splitlines()]
    return attribution, "\n".join(lines)


def _paragraphs(text: str) -> str:
    blocks = [block for block in re.split(r"\n\s*\n", text.strip()) if block]
    return "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in block.splitlines()) + "</p>" for block in blocks
    )


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as sent: CRLF line ends, long headers folded."""
    buffer = io.BytesIO()
    # compose() picks the policy (SMTPUTF8 or not); any other message goes out as WIRE writes it.
    policy = message.policy if isinstance(message.policy, _WirePolicy) else WIRE
    BytesGenerator(buffer, policy=policy).flatten(message)
    return buffer.getvalue()


def envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """The envelope sender and recipients of a message, from its headers."""
    sender = getaddresses([str(message["From"])])[0][1]
    recipients = [address for _, address in getaddresses([str(value) for value in message.get_all("To", [])])]
    return sender, recipients
