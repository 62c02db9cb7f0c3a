"""Campaign files: every key, every refusal, and export that imports back the same."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.rules import SendIn, SendOption
from bot.services.campaign_file import CampaignFileError, CampaignSpec, StepSpec, dump_campaign, parse_campaign
from bot.services.errors import ServiceError

FULL = """\
name: Q4 outreach
timezone: America/New_York
skip_weekends: true
send_in: recipient
task_time: "10:15"
fields: [deal_size, referrer]
footer: |
  Acme Sales AB, Box 1, 111 11 Stockholm
  {{ sender.name }} · no more emails: {{ unsubscribe_url }}
steps:
  - day: 1
    send: choose
    subject: "{{ company }} and {{ deal_size }}"
    body: |
      Hi {{ first_name }},

      {{ referrer }} said you might like this.
      {{ sender.first_name }}
  - day: 2
    send: at_time
    time: "08:30"
    subject: Quick question
    body: Did you see my note?
  - day: 3
    send: same_as_previous
    subject: Still there?
    body: Just checking.
  - day: 4
    send: thread
    body: Bumping this up.
  - day: 6
    send: task
    time: "14:00"
    subject: Call {{ first_name }} {{ last_name }}
    body: Personal note to {{ title }} at {{ email }}.
"""


def campaign(steps: str, head: str = "name: Test\n") -> str:
    """A file with `head` and the given steps (YAML list items, dedented)."""
    return head + "steps:\n" + textwrap.indent(textwrap.dedent(steps), "  ")


def refusal(text: str) -> str:
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign(text, source="q4.yaml")
    return str(caught.value)


ONE_STEP = """\
- day: 1
  send: at_time
  time: "09:00"
  subject: Hi
  body: Hello
"""


def test_every_key_is_read() -> None:
    spec = parse_campaign(FULL)

    assert spec == CampaignSpec(
        name="Q4 outreach",
        timezone="America/New_York",
        skip_weekends=True,
        send_in=SendIn.RECIPIENT,
        task_time=dt.time(10, 15),
        fields=("deal_size", "referrer"),
        footer="Acme Sales AB, Box 1, 111 11 Stockholm\n{{ sender.name }} · no more emails: {{ unsubscribe_url }}\n",
        steps=(
            StepSpec(
                1,
                SendOption.CHOOSE,
                None,
                "{{ company }} and {{ deal_size }}",
                "Hi {{ first_name }},\n\n{{ referrer }} said you might like this.\n{{ sender.first_name }}\n",
            ),
            StepSpec(2, SendOption.AT_TIME, dt.time(8, 30), "Quick question", "Did you see my note?"),
            StepSpec(3, SendOption.SAME_AS_PREVIOUS, None, "Still there?", "Just checking."),
            StepSpec(4, SendOption.THREAD, None, None, "Bumping this up."),
            StepSpec(
                6,
                SendOption.TASK,
                dt.time(14, 0),
                "Call {{ first_name }} {{ last_name }}",
                "Personal note to {{ title }} at {{ email }}.",
            ),
        ),
    )


def test_optional_keys_have_their_defaults() -> None:
    spec = parse_campaign(campaign(ONE_STEP))

    assert spec.timezone is None  # the owner's Slack time zone, decided at import
    assert spec.skip_weekends is False
    assert spec.send_in is SendIn.CAMPAIGN
    assert spec.task_time == dt.time(9, 0)
    assert spec.fields == ()


@pytest.mark.parametrize(
    ("written", "time"),
    [
        ('"09:00"', dt.time(9, 0)),
        ("09:00", dt.time(9, 0)),
        # Plain YAML 1.1 reads these as base-60 numbers (630, 1425): still times here.
        ("10:30", dt.time(10, 30)),
        ("23:45", dt.time(23, 45)),
        ("00:00", dt.time(0, 0)),
    ],
)
def test_unquoted_times_are_read_as_written(written: str, time: dt.time) -> None:
    text = campaign(
        f"""\
        - day: 1
          send: at_time
          time: {written}
          subject: Hi
          body: Hello
        """,
        head=f"name: Test\ntask_time: {written}\n",
    )

    spec = parse_campaign(text)

    assert spec.steps[0].time == time
    assert spec.task_time == time


@pytest.mark.parametrize("written", ["25:00", '"25:00"', "24:00", "9:5", "9:00", "12:60", "540", '"9am"', "12:30:00"])
def test_a_time_that_is_not_hhmm_is_refused_naming_step_and_field(written: str) -> None:
    text = campaign(
        f"""\
        - day: 1
          send: at_time
          time: "08:00"
          subject: Hi
          body: Hello
        - day: 2
          send: at_time
          time: {written}
          subject: Again
          body: Hello again
        """
    )

    message = refusal(text)

    shown = written.strip('"')
    assert message.startswith("q4.yaml: step 2, time: ")
    assert shown in message  # as the file wrote it, not as a base-60 number
    assert message.endswith("is not a time of day; write HH:MM, from 00:00 to 23:59")


def test_a_bad_task_time_is_refused() -> None:
    assert refusal(campaign(ONE_STEP, head="name: Test\ntask_time: 25:00\n")) == (
        'q4.yaml: task_time: "25:00" is not a time of day; write HH:MM, from 00:00 to 23:59'
    )


def test_a_yaml_error_names_its_line() -> None:
    text = "name: Test\nsteps:\n  - day: 1\n    send: at_time\n   subject: [oops\n"

    with pytest.raises(CampaignFileError) as caught:
        parse_campaign(text, source="q4.yaml")

    assert caught.value.line == 5
    assert str(caught.value).startswith("q4.yaml, line 5: not valid YAML: ")
    assert "\n" not in str(caught.value)


def test_a_repeated_key_is_refused_with_its_line() -> None:
    text = "name: Test\ntimezone: Europe/Stockholm\ntimezone: Europe/Oslo\n"

    assert refusal(text) == 'q4.yaml, line 3: not valid YAML: the key "timezone" appears twice'


def test_an_unknown_key_is_refused_naming_it() -> None:
    assert refusal(campaign(ONE_STEP, head="name: Test\ncolour: red\n")) == (
        "q4.yaml: colour: unknown key; a campaign file has only "
        "name, timezone, skip_weekends, send_in, task_time, on_reply, fields, footer, steps"
    )


def test_an_unknown_step_key_is_refused_naming_step_and_key() -> None:
    text = campaign(
        """\
        - day: 1
          send: at_time
          time: "09:00"
          subject: Hi
          bdy: Hello
        """
    )

    assert refusal(text) == (
        "q4.yaml: step 1, bdy: unknown key; did you mean body? a step has only day, send, time, subject, body"
    )


@pytest.mark.parametrize("zone", ["Europe/Stockholmm", "Europe", "../etc/passwd", "CET+1"])
def test_an_unknown_time_zone_is_refused(zone: str) -> None:
    assert refusal(campaign(ONE_STEP, head=f"name: Test\ntimezone: {zone}\n")) == (
        f'q4.yaml: timezone: unknown time zone "{zone}"; use an IANA name like Europe/Stockholm'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just a list", "q4.yaml: a campaign file is a mapping of keys (name, timezone, steps, ...)"),
        ("", "q4.yaml: a campaign file is a mapping of keys (name, timezone, steps, ...)"),
        (campaign(ONE_STEP, head=""), "name: missing; every campaign needs a name"),
        (campaign(ONE_STEP, head="name: [a]\n"), "name: must be one line of text, the campaign's name"),
        ("name: Test\n", "steps: missing; a campaign needs at least one step"),
        ("name: Test\nsteps: []\n", "steps: must be a list of at least one step (day, send, time, subject, body)"),
        ("name: Test\nsteps:\n  - hello\n", "step 1: must be a mapping of day, send, time, subject, body"),
        (
            campaign(ONE_STEP, head="name: Test\nskip_weekends: sometimes\n"),
            'skip_weekends: must be true or false, not "sometimes"',
        ),
        (
            campaign(ONE_STEP, head="name: Test\nsend_in: person\n"),
            '"person" is not a send_in option; use one of campaign, recipient',
        ),
        (
            campaign(ONE_STEP, head="name: Test\nfields: deal_size\n"),
            "fields: must be a list of custom person field names",
        ),
    ],
)
def test_campaign_level_refusals(text: str, message: str) -> None:
    assert refusal(text).endswith(message)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("[company]", 'fields: "company" is already a person field; custom fields need names of their own'),
        ("[first_name]", 'fields: "first_name" is already a person field; custom fields need names of their own'),
        ("[sender]", 'fields: "sender" is already a person field; custom fields need names of their own'),
        ("[deal size]", 'fields: "deal size" cannot be a field name; use letters, digits and _ (like deal_size)'),
        ("[none]", 'fields: "none" cannot be a field name; use letters, digits and _ (like deal_size)'),
        ("[3]", "fields: 3 cannot be a field name; use letters, digits and _ (like deal_size)"),
        ("[deal, deal]", 'fields: "deal" is listed twice'),
    ],
)
def test_custom_field_names_must_be_usable_and_new(fields: str, message: str) -> None:
    assert refusal(campaign(ONE_STEP, head=f"name: Test\nfields: {fields}\n")) == f"q4.yaml: {message}"


def step_refusal(step: str, before: str = ONE_STEP) -> str:
    return refusal(campaign(before + textwrap.dedent(step)))


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("- send: task\n  subject: s\n  body: b\n", "step 2, day: missing"),
        ("- day: 2\n  subject: s\n  body: b\n", "step 2, send: missing"),
        ("- day: 2\n  send: task\n  subject: s\n", "step 2, body: missing"),
        ("- day: 2\n  send: task\n  subject: s\n  body: '  '\n", "step 2, body: must be the email's text"),
        (
            "- day: two\n  send: task\n  subject: s\n  body: b\n",
            'step 2, day: must be a whole number (1 for day 1), not "two"',
        ),
        (
            "- day: 2\n  send: later\n  subject: s\n  body: b\n",
            'step 2, send: "later" is not a send option; use one of choose, at_time, task, same_as_previous, thread',
        ),
        ("- day: 2\n  send: task\n  body: b\n", "step 2, subject: missing; every step but a thread step needs one"),
        ('- day: 2\n  send: task\n  subject: "a\\nb"\n  body: b\n', "step 2, subject: must be one line of text"),
        (
            "- day: 2\n  send: thread\n  subject: s\n  body: b\n",
            "step 2, subject: a thread step replies with Re: and the previous subject; remove it",
        ),
    ],
)
def test_step_refusals(step: str, message: str) -> None:
    assert step_refusal(step) == f"q4.yaml: {message}"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            "- {day: 1, send: at_time, time: '09:00', subject: s, body: b}\n"
            "- {day: 2, send: choose, subject: s, body: b}\n",
            "step 2, send: choose is allowed on the first step only",
        ),
        (
            "- {day: 1, send: same_as_previous, subject: s, body: b}\n",
            "step 1, send: same_as_previous is not allowed on the first step",
        ),
        ("- {day: 1, send: thread, body: b}\n", "step 1, send: thread is not allowed on the first step"),
        (
            "- {day: 1, send: task, subject: s, body: b}\n"
            "- {day: 3, send: task, subject: s, body: b}\n"
            "- {day: 2, send: task, subject: s, body: b}\n",
            "step 3, day: day 2 comes after day 3: days are out of order",
        ),
        ("- {day: 2, send: task, subject: s, body: b}\n", "step 1, day: the first step is on day 1, not day 2"),
        ("- {day: 1, send: at_time, subject: s, body: b}\n", "step 1, time: at_time needs a time (HH:MM)"),
        ("- {day: 1, send: choose, time: '09:00', subject: s, body: b}\n", "step 1, time: choose takes no time"),
    ],
)
def test_send_option_rules_are_reported_by_step_and_field(steps: str, message: str) -> None:
    assert refusal(campaign(steps)) == f"q4.yaml: {message}"


def test_a_thread_step_needs_no_subject() -> None:
    spec = parse_campaign(campaign(ONE_STEP + "- {day: 3, send: thread, body: Following up}\n"))

    assert spec.steps[1] == StepSpec(3, SendOption.THREAD, None, None, "Following up")


def test_a_template_with_an_unknown_field_is_refused_naming_step_and_field() -> None:
    text = campaign(ONE_STEP + "- {day: 2, send: task, subject: 'Hi {{ nickname }}', body: b}\n")

    assert refusal(text) == (
        'q4.yaml: step 2, subject: unknown field "nickname"; use first_name, last_name, email, company, title, '
        "sender.first_name (...), unsubscribe_url or a custom field declared under fields:"
    )


def test_a_body_template_is_checked_too() -> None:
    text = campaign(ONE_STEP + "- {day: 2, send: task, subject: s, body: 'From {{ sender.nickname }}'}\n")

    assert 'step 2, body: unknown field "sender.nickname"' in refusal(text)


def test_a_template_syntax_error_names_step_and_field() -> None:
    text = campaign(ONE_STEP + "- {day: 2, send: task, subject: s, body: 'Hi {{ first_name '}\n")

    assert refusal(text).startswith("q4.yaml: step 2, body: template syntax error on line 1: ")


def test_declared_custom_fields_may_be_used() -> None:
    step = "- {day: 2, send: task, subject: 'About {{ deal_size }}', body: '{{ referrer }} sent me'}\n"

    assert "deal_size" in refusal(campaign(ONE_STEP + step))  # undeclared: refused
    spec = parse_campaign(campaign(ONE_STEP + step, head="name: Test\nfields: [deal_size, referrer]\n"))

    assert spec.steps[1].subject == "About {{ deal_size }}"


def test_every_refusal_is_a_service_error_of_one_line() -> None:
    with pytest.raises(ServiceError) as caught:
        parse_campaign(FULL.replace('"08:30"', "25:00"))

    assert str(caught.value) == '<file>: step 2, time: "25:00" is not a time of day; write HH:MM, from 00:00 to 23:59'
    assert caught.value.step == 2  # type: ignore[attr-defined]


# --- files built to hurt -------------------------------------------------------------

# Nine levels of nine aliases: 1 KB that a plain YAML loader expands to 9**9 strings.
BILLION_LAUGHS = (
    "name: Laughs\n"
    "lol0: &lol0 lol\n"
    + "".join(f"lol{n}: &lol{n} [{', '.join([f'*lol{n - 1}'] * 9)}]\n" for n in range(1, 9))
    + "timezone: [*lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8]\n"
)
NO_ANCHORS = "anchors and aliases (&name, *name) are not allowed in a campaign file; write the value out"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BILLION_LAUGHS, f"q4.yaml, line 2: {NO_ANCHORS}"),
        ("name: Q\nskip_weekends: *flag\n", f"q4.yaml, line 2: {NO_ANCHORS}"),
        ("[" * 100_000, "q4.yaml, line 1: nested more than 10 levels deep; a campaign file needs 4"),
        (
            "name: Q\nfields: [" + "a, " * 6_000 + "]\n",
            "q4.yaml, line 2: more than 5,000 values; a campaign file has far fewer",
        ),
        ("x" * (256 * 1024 + 1), "q4.yaml: larger than 256 KB, the most a campaign file may be"),
        (bytes(range(256)) * 4, "q4.yaml, line 2: not UTF-8 text; save the file as UTF-8"),
        ("name: Q\n\nsteps: \x00\x07\n", "q4.yaml, line 3: not valid YAML: the character U+0000 is not allowed"),
        ("name: Q\nsteps:\n  - day: " + "9" * 5_000 + "\n", "q4.yaml, line 3: cannot read this int (Exceeds the limit"),
        (
            "name: 2026-02-30\n",
            "q4.yaml, line 1: cannot read this timestamp (day is out of range for month); put it in quotes if it is text",
        ),
        ("- name: Q\n", "q4.yaml: a campaign file is a mapping of keys (name, timezone, steps, ...)"),
        ("Q4 outreach\n", "q4.yaml: a campaign file is a mapping of keys (name, timezone, steps, ...)"),
        ("name: Q\n" + "k" * 1_000 + ": 1\n", "q4.yaml: " + "k" * 59 + "…: unknown key; "),
    ],
    ids=[
        "billion-laughs",
        "alias",
        "deep",
        "many-values",
        "huge",
        "binary",
        "control",
        "long-int",
        "bad-date",
        "list",
        "scalar",
        "long-key",
    ],
)
def test_any_file_is_refused_in_one_line_in_bounded_time(text: str | bytes, message: str) -> None:
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign(text, source="q4.yaml")

    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_utf8_bytes_read_as_text() -> None:
    assert parse_campaign(campaign(ONE_STEP, head="name: Café\n").encode()).name == "Café"


@pytest.mark.parametrize(
    "template",
    [
        "{{ " + "(" * 3_000 + "a }}",
        "{% if a %}" * 3_000,
        "{{ " + "-" * 30_000 + "a }}",
        "{% if a %}" * 150 + "{% endif %}" * 150,
    ],
    ids=["parens", "ifs", "unary", "ifs-closed"],
)
def test_a_template_nested_too_deeply_is_refused(template: str) -> None:
    step = f"- day: 2\n  send: task\n  subject: s\n  body: '{template}'\n"

    assert step_refusal(step) == "q4.yaml: step 2, body: the template is nested too deeply"


def test_a_subject_longer_than_the_limit_is_refused_naming_it() -> None:
    subject = "x" * 250

    assert (
        parse_campaign(campaign(f"- {{day: 1, send: task, subject: {subject}, body: b}}\n")).steps[0].subject == subject
    )
    assert step_refusal(f"- day: 2\n  send: task\n  subject: {subject}y\n  body: b\n") == (
        "q4.yaml: step 2, subject: 251 characters; a subject is at most 250 (what Slack's Edit dialog holds)"
    )


# --- export ------------------------------------------------------------------------


def test_export_reads_back_as_the_same_campaign() -> None:
    spec = parse_campaign(FULL)

    assert parse_campaign(dump_campaign(spec)) == spec


def test_export_writes_bodies_as_blocks_and_times_quoted() -> None:
    text = dump_campaign(parse_campaign(FULL))

    assert "  body: |\n    Hi {{ first_name }},\n\n    {{ referrer }} said you might like this.\n" in text
    assert 'task_time: "10:15"' in text
    assert '  time: "08:30"' in text
    assert text.index("name:") < text.index("timezone:") < text.index("steps:")


def test_export_leaves_out_what_the_campaign_does_not_have() -> None:
    text = dump_campaign(parse_campaign(campaign(ONE_STEP)))

    assert "timezone" not in text
    assert "fields" not in text
    assert "footer" not in text


def test_a_footer_is_a_template_with_the_campaigns_fields_and_the_unsubscribe_url() -> None:
    spec = parse_campaign(FULL)

    assert (
        spec.footer
        == "Acme Sales AB, Box 1, 111 11 Stockholm\n{{ sender.name }} · no more emails: {{ unsubscribe_url }}\n"
    )
    assert "footer: |\n  Acme Sales AB" in dump_campaign(spec)


@pytest.mark.parametrize(
    ("footer", "problem"),
    [
        ("'Call {{ nickname }}'", 'q4.yaml: footer: unknown field "nickname"; use first_name'),
        ("'{{ first_name'", "q4.yaml: footer: template syntax error on line 1"),
        ("''", "q4.yaml: footer: must be text (a template)"),
        ("[a, b]", "q4.yaml: footer: must be text (a template)"),
    ],
)
def test_a_footer_that_is_not_a_usable_template_is_refused(footer: str, problem: str) -> None:
    assert refusal(campaign(ONE_STEP, head=f"name: Test\nfooter: {footer}\n")).startswith(problem)


# Text a template leaves alone: no Jinja delimiters.
plain = st.text(st.characters(blacklist_characters="{}%#", blacklist_categories=("Cs",)), min_size=1)


@given(
    name=plain.filter(lambda s: len(s.splitlines()) == 1 and s.strip() == s),
    subject=plain.filter(lambda s: len(s.splitlines()) == 1 and s.strip() == s),
    body=plain.filter(lambda s: s.strip()),
    time=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    day=st.integers(1, 400),
)
def test_any_campaign_survives_export_and_import(name: str, subject: str, body: str, time: dt.time, day: int) -> None:
    spec = CampaignSpec(
        name=name,
        timezone="Europe/Stockholm",
        task_time=time,
        steps=(
            StepSpec(1, SendOption.AT_TIME, time, subject, body),
            StepSpec(day, SendOption.THREAD, None, None, body + "\n"),
        ),
    )

    assert parse_campaign(dump_campaign(spec)) == spec


def test_on_reply_defaults_to_stop_person_reads_stop_company_and_exports_back() -> None:
    from bot.core.inbound import OnReply

    assert parse_campaign(campaign(ONE_STEP)).on_reply is OnReply.STOP_PERSON
    spec = parse_campaign(campaign(ONE_STEP, head="name: Test\non_reply: stop_company\n"))
    assert spec.on_reply is OnReply.STOP_COMPANY
    assert "on_reply: stop_company" in dump_campaign(spec)
    assert parse_campaign(dump_campaign(spec)) == spec


def test_an_unknown_on_reply_is_refused_naming_the_choices() -> None:
    assert refusal(campaign(ONE_STEP, head="name: Test\non_reply: stop_all\n")) == (
        'q4.yaml: on_reply: "stop_all" is not a on_reply option; use one of stop_person, stop_company'
    )
