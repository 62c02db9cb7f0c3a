"""Inbound messages as real mail programs and servers write them, built by hand.

Replies as Gmail, Outlook and Apple Mail write them (quoted history, In-Reply-To and
References); out-of-office replies as Gmail, Microsoft 365 and Dovecot's Sieve
vacation write them; bounces as Postfix (RFC 3464), Exchange (its older non-standard
NDR) and Gmail write them; a mailing-list message; a List-Unsubscribe mailto request.
Each returns the bytes to APPEND.
"""

from __future__ import annotations

from urllib.parse import unquote

DATE = "Wed, 02 Dec 2026 10:15:00 +0100"
REP = "Rita Rep <rita@seller.example>"


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def gmail_reply(
    sender: str, in_reply_to: str, references: str = "", body: str = "Yes, let's talk on Thursday.\n\nAda"
) -> bytes:
    """Gmail: multipart/alternative, "On <date> <name> wrote:" wrapped over two lines, > quoting."""
    references = references or in_reply_to
    return _crlf(f"""\
MIME-Version: 1.0
Date: {DATE}
References: {references}
In-Reply-To: {in_reply_to}
Message-ID: <CAGmail{abs(hash(body)) % 10**8}@mail.gmail.com>
Subject: Re: Analytical Engines and Acme
From: {sender}
To: {REP}
Content-Type: multipart/alternative; boundary="000000000000gmailb"

--000000000000gmailb
Content-Type: text/plain; charset="UTF-8"

{body}

On Wed, 2 Dec 2026 at 09:00, Rita Rep <rita@seller.example>
wrote:

> Hi Ada,
>
> A quick idea for a team like yours.
> Rita
>

--000000000000gmailb
Content-Type: text/html; charset="UTF-8"

<div dir="ltr">{body.replace(chr(10), "<br>")}</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Wed, 2 Dec 2026 at 09:00, Rita Rep &lt;rita@seller.example&gt; wrote:<br></div><blockquote class="gmail_quote">Hi Ada,<br>A quick idea.</blockquote></div>

--000000000000gmailb--
""")


def outlook_reply(sender: str, in_reply_to: str, body: str = "Thanks Rita, please send the demo video.") -> bytes:
    """Outlook: HTML only, a "From: / Sent: / To: / Subject:" block after a rule, Thread-Index."""
    return _crlf(f"""\
From: Bob Builder <{sender}>
To: Rita Rep <rita@seller.example>
Subject: RE: A quick question
Thread-Topic: A quick question
Thread-Index: AQHZ1234567890abcdefg==
Date: {DATE}
Message-ID: <AM0PR01MB1234ABCD@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>
References: {in_reply_to}
In-Reply-To: {in_reply_to}
Content-Language: en-US
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable
MIME-Version: 1.0

<html><head><style>p {{margin:0}}</style></head><body>
<div class=3D"WordSection1"><p class=3D"MsoNormal">{body}</p></div>
<div id=3D"divRplyFwdMsg"><hr>
<p><b>From:</b> Rita Rep &lt;rita@seller.example&gt;<br><b>Sent:</b> Wednesday, December 2, 2026 9:00 AM<br>
<b>To:</b> Bob Builder<br><b>Subject:</b> A quick question</p></div>
<div><p>Did my note reach you, Bob?</p></div>
</body></html>
""")


def apple_mail_reply(sender: str, in_reply_to: str | None, body: str = "Sounds good. Call me Friday?") -> bytes:
    """Apple Mail: text/plain, "On 2 Dec 2026, at 09:00, ... wrote:" and > quoting; references optional."""
    threading = f"In-Reply-To: {in_reply_to}\nReferences: {in_reply_to}\n" if in_reply_to else ""
    return _crlf(f"""\
Content-Type: text/plain;
\tcharset=utf-8
Content-Transfer-Encoding: 7bit
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))
Subject: Re: Analytical Engines and Acme
From: Ada Lovelace <{sender}>
{threading}Date: {DATE}
To: Rita Rep <rita@seller.example>
Message-Id: <8A1B2C3D-4E5F-6789-ABCD-{abs(hash((sender, body))) % 10**12:012d}@example.com>
X-Mailer: Apple Mail (2.3774.600.62)

{body}

> On 2 Dec 2026, at 09:00, Rita Rep <rita@seller.example> wrote:
>
> Hi Ada,
> A quick idea for a team like yours.
""")


def gmail_out_of_office(sender: str, in_reply_to: str, text: str) -> bytes:
    """Gmail's vacation responder: Auto-Submitted: auto-replied, the rep's subject, the person's own words."""
    return _crlf(f"""\
MIME-Version: 1.0
Date: {DATE}
Message-ID: <CAvacation{abs(hash(text)) % 10**8}@mail.gmail.com>
Subject: Re: Analytical Engines and Acme
From: {sender}
To: rita@seller.example
In-Reply-To: {in_reply_to}
References: {in_reply_to}
Auto-Submitted: auto-replied
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: 8bit

{text}
""")


def microsoft365_out_of_office(
    sender: str, in_reply_to: str, text: str, subject: str = "Automatic reply: A quick question"
) -> bytes:
    """Microsoft 365: "Automatic reply:" (or the user's language), X-MS-Exchange auto-reply headers, HTML."""
    html = "".join(f"<p>{line}</p>" for line in text.splitlines())
    return _crlf(f"""\
From: Bob Builder <{sender}>
To: Rita Rep <rita@seller.example>
Subject: {subject}
Thread-Topic: A quick question
Date: {DATE}
Message-ID: <7d1b8c2a9e4f4a8b9c0d1e2f3a4b5c6d@EXCH01.builders.example>
In-Reply-To: {in_reply_to}
References: {in_reply_to}
X-MS-Has-Attach:
X-MS-Exchange-Inbox-Rules-Loop: {sender}
X-Auto-Response-Suppress: All
Auto-Submitted: auto-generated
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: 8bit
MIME-Version: 1.0

<html><body>{html}</body></html>
""")


def sieve_vacation(
    sender: str, in_reply_to: str, text: str, subject: str = "Auto: Analytical Engines and Acme"
) -> bytes:
    """Dovecot Pigeonhole's vacation: Auto-Submitted: auto-replied (vacation), "Auto: " subject, no Message-ID of ours."""
    return _crlf(f"""\
X-Sieve: Pigeonhole Sieve 0.5.19 (4eae2f79)
Message-ID: <dovecot-sieve-1701512345-1234-0@mx.engines.example>
Date: {DATE}
From: <{sender}>
To: <rita@seller.example>
Subject: {subject}
In-Reply-To: {in_reply_to}
References: {in_reply_to}
Auto-Submitted: auto-replied (vacation)
Precedence: bulk
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

{text}
""")


def postfix_bounce(recipient: str, original_id: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    """Postfix: an RFC 3464 report from MAILER-DAEMON with the original's headers (text/rfc822-headers)."""
    words = "User unknown in virtual mailbox table" if status.startswith("5") else "Connection timed out"
    return _crlf(f"""\
Return-Path: <>
Date: {DATE}
From: MAILER-DAEMON@mx.seller.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: rita@seller.example
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="5A1B2C3D4E.1701512345/mx.seller.example"
Message-Id: <20261202091500.5A1B2C3D4E@mx.seller.example>

This is a MIME-encapsulated message.

--5A1B2C3D4E.1701512345/mx.seller.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.seller.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.{recipient.split("@")[1]}[192.0.2.10] said: 550 {status}
    <{recipient}>: Recipient address rejected: {words} (in reply to RCPT TO command)

--5A1B2C3D4E.1701512345/mx.seller.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.seller.example
X-Postfix-Queue-ID: 5A1B2C3D4E
X-Postfix-Sender: rfc822; rita@seller.example
Arrival-Date: {DATE}

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.{recipient.split("@")[1]}
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected: {words}

--5A1B2C3D4E.1701512345/mx.seller.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Rita Rep <rita@seller.example>
To: {recipient}
Subject: Analytical Engines and Acme
Message-ID: {original_id}
Date: Wed, 02 Dec 2026 09:00:00 +0100

--5A1B2C3D4E.1701512345/mx.seller.example--
""")


def exchange_bounce(recipient: str, original_id: str) -> bytes:
    """Exchange's older non-standard NDR: "Undeliverable:", plain text, the original attached as message/rfc822."""
    return _crlf(f"""\
From: postmaster@builders.example
To: rita@seller.example
Date: {DATE}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="9B095B5ADSN=_01D9NDR"
Message-ID: <NDR-0123456789abcdef@EXCH01.builders.example>
Subject: Undeliverable: A quick question

--9B095B5ADSN=_01D9NDR
Content-Type: text/plain; charset=us-ascii

Your message

  To:      {recipient}
  Subject: A quick question
  Sent:    Wed, 2 Dec 2026 09:00:00 +0100

did not reach the following recipient(s):

{recipient} on Wed, 2 Dec 2026 09:00:05 +0100
            The e-mail account does not exist at the organization this message was sent to.
            Check the e-mail address, or contact the recipient directly to find out the correct address.
            <EXCH01.builders.example #5.1.1>

--9B095B5ADSN=_01D9NDR
Content-Type: message/rfc822

From: Rita Rep <rita@seller.example>
To: <{recipient}>
Subject: A quick question
Date: Wed, 02 Dec 2026 09:00:00 +0100
Message-ID: {original_id}
MIME-Version: 1.0
Content-Type: text/plain

Did my note reach you?

--9B095B5ADSN=_01D9NDR--
""")


def gmail_bounce(recipient: str, original_id: str, *, delayed: bool = False) -> bytes:
    """Gmail: "Delivery Status Notification (Failure|Delay)" from mailer-daemon@googlemail.com, an RFC 3464 report."""
    action, status = ("delayed", "4.4.1") if delayed else ("failed", "5.1.1")
    title = "Delay" if delayed else "Failure"
    said = (
        "The recipient server did not accept our requests to connect."
        if delayed
        else "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address"
    )
    return _crlf(f"""\
Return-Path: <>
Received: by mail-sor-f69.google.com with SMTP id a1so1234567
MIME-Version: 1.0
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: rita@seller.example
Auto-Submitted: auto-replied
Subject: Delivery Status Notification ({title})
References: {original_id}
In-Reply-To: {original_id}
Message-ID: <64f1c2a3.{"d" if delayed else "f"}0a1b2c3@mx.google.com>
Date: {DATE}
Content-Type: multipart/report; boundary="000000000000dsnb"; report-type=delivery-status

--000000000000dsnb
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to {recipient} because the address couldn't be found.

The response was:

{"452" if delayed else "550"} {status} {said}

--000000000000dsnb
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Arrival-Date: {DATE}

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {"452" if delayed else "550"} {status} {said}
Last-Attempt-Date: {DATE}

--000000000000dsnb
Content-Type: message/rfc822

From: Rita Rep <rita@seller.example>
To: {recipient}
Subject: Analytical Engines and Acme
Message-ID: {original_id}

Hi!

--000000000000dsnb--
""")


def mailing_list(sender: str) -> bytes:
    """A list's copy of the person's post: List-Id, Precedence: list, no references."""
    return _crlf(f"""\
From: Ada Lovelace <{sender}>
To: engines-users@lists.example
Subject: [engines-users] Difference engine meetup
Date: {DATE}
Message-ID: <list-post-42@lists.example>
List-Id: Engines users <engines-users.lists.example>
List-Unsubscribe: <mailto:engines-users-leave@lists.example>
Precedence: list
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Anyone up for a meetup next week?
""")


def plain_reply(
    sender: str, body: str, in_reply_to: str | None = None, subject: str = "Re: Analytical Engines and Acme"
) -> bytes:
    """A reply as any client writes it, with the body given."""
    threading = f"In-Reply-To: {in_reply_to}\nReferences: {in_reply_to}\n" if in_reply_to else ""
    return _crlf(f"""\
From: {sender}
To: Rita Rep <rita@seller.example>
Subject: {subject}
Date: {DATE}
Message-ID: <plain-{abs(hash((sender, body))) % 10**10}@example.com>
{threading}MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

{body}
""")


def mailto_request(sender: str, mailto: str, *, body: str | None = None, headers: str = "") -> bytes:
    """What a mail client sends for a List-Unsubscribe mailto (RFC 6068): To its address,
    its subject, its body if it has one (usually none), nothing that threads it."""
    address, _, query = mailto.removeprefix("mailto:").partition("?")
    pairs = (pair.partition("=") for pair in query.split("&") if pair)
    fields = {unquote(name).lower(): unquote(value) for name, _, value in pairs}  # "+" is a plus in a mailto
    text = fields.get("body", "") if body is None else body
    return _crlf(f"""\
From: {sender}
To: {unquote(address)}
Subject: {fields.get("subject", "")}
Date: {DATE}
Message-ID: <unsubscribe-{abs(hash((sender, mailto))) % 10**10}@example.com>
{headers}MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

{text}
""")
