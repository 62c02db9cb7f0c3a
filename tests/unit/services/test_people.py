"""Reading people as a rep types them, in Slack or on the command line."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.services.people import AddressCheck, Invalid, PersonInput, check_people, parse_people, split_name


def emails(text: str) -> list[str]:
    return [person.email for person in parse_people(text)[0]]


def test_names_and_bare_addresses_separated_by_commas_spaces_and_new_lines():
    people, invalid = parse_people("Ada Lovelace <ada@example.com>, bob@example.com\ncarol@x.org dan@x.org")
    assert invalid == []
    assert people == [
        PersonInput("ada@example.com", "Ada", "Lovelace"),
        PersonInput("bob@example.com"),
        PersonInput("carol@x.org"),
        PersonInput("dan@x.org"),
    ]


def test_slack_mailto_links_and_escaped_angle_brackets_are_read_as_typed():
    # What Slack sends for `Ada Lovelace <ada@example.com> bob@example.com` typed in a command.
    text = "Ada Lovelace &lt;<mailto:ada@example.com|ada@example.com>&gt; <mailto:bob@example.com|bob@example.com>"
    people, invalid = parse_people(text)
    assert invalid == []
    assert people == [PersonInput("ada@example.com", "Ada", "Lovelace"), PersonInput("bob@example.com")]


def test_quoted_names_and_last_comma_first():
    people, _ = parse_people('"Lovelace, Ada" <ada@example.com>; "Grace B. Hopper" <grace@example.com>')
    assert [(p.first_name, p.last_name) for p in people] == [("Ada", "Lovelace"), ("Grace", "B. Hopper")]


def test_a_name_that_repeats_the_address_is_no_name():
    people, _ = parse_people("ada@example.com <ada@example.com>")
    assert people == [PersonInput("ada@example.com")]


def test_addresses_are_normalized_as_email_validator_does_and_matched_in_any_case():
    assert emails("Ada@Example.COM, POSTMASTER@example.com, ada@xn--bcher-kva.example") == [
        "ada@example.com",
        "postmaster@example.com",
        "ada@xn--bcher-kva.example",
    ]


def test_a_domain_in_unicode_is_kept_in_its_ascii_form_and_a_unicode_local_part_as_typed():
    assert emails("ana@bücher.example, Ana@BÜCHER.example, José@Bücher.example") == [
        "ana@xn--bcher-kva.example",
        "ana@xn--bcher-kva.example",
        "josé@xn--bcher-kva.example",
    ]


def test_invalid_entries_never_stop_valid_ones_and_say_why():
    people, invalid = parse_people("ada@example.com, x@@example.com\nBob Builder, Dan <dan@nodot>, carol@example.com")
    assert emails_of(people) == ["ada@example.com", "carol@example.com"]
    assert invalid == [
        Invalid("x@@example.com", "The part after the @-sign contains invalid characters: '@'."),
        Invalid("Bob Builder", "An email address must have an @-sign."),
        Invalid("Dan <dan@nodot>", "The part after the @-sign is not valid. It should have a period."),
    ]


def emails_of(people: list[PersonInput]) -> list[str]:
    return [person.email for person in people]


def test_empty_text_is_nobody():
    assert parse_people("  \n , ") == ([], [])


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("Ada Lovelace", "Ada", "Lovelace"),
        ("Ludwig van Beethoven", "Ludwig", "van Beethoven"),
        ("Cher", "Cher", ""),
        ("Lovelace, Ada", "Ada", "Lovelace"),
        ("  Ada   Lovelace ", "Ada", "Lovelace"),
        ("", "", ""),
    ],
)
def test_a_display_name_is_split_into_first_and_last_name(name, first, last):
    assert split_name(name) == (first, last)


def test_people_from_a_file_are_checked_the_same_way():
    valid, invalid = check_people([PersonInput("Ada@Example.com", company="Acme"), PersonInput("nope", company="Acme")])
    assert valid == [PersonInput("ada@example.com", company="Acme")]
    assert invalid == [Invalid("nope", "An email address must have an @-sign.")]


# The short path shares each domain's check; its verdict must be email-validator's own.
addresses = st.one_of(
    st.emails(),
    st.builds(
        lambda local, domain: f"{local}@{domain}",
        st.text(alphabet=st.sampled_from("aZ09.+-_!'\"() \\é@"), max_size=70),
        st.sampled_from(
            [
                "example.com",
                "EXAMPLE.COM",
                "bücher.example",
                "xn--bcher-kva.example",
                "nodot",
                "a..b.com",
                "-x.com",
                "[127.0.0.1]",
                "example.invalid",
                "x" * 250 + ".com",
                "",
            ]
        ),
    ),
    st.text(max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(addresses, min_size=1, max_size=5))
def test_the_shared_domain_check_agrees_with_email_validator(batch):
    check = AddressCheck()  # one check for the whole batch, as in one add
    for address in batch:
        try:
            checked = validate_email(address, check_deliverability=False)
            expected: str | Exception = f"{checked.local_part}@{checked.ascii_domain}".lower()
        except EmailNotValidError as error:
            expected = error
        try:
            got: str | Exception = check(address)
        except EmailNotValidError as error:
            got = error
        assert str(got) == str(expected) and type(got) is type(expected)
