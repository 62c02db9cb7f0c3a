"""Email templates: which names a template may use, and filling them for a person."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from bot.core.templates import MissingFields, TemplateProblem, fields_used, render, unknown_fields

PERSON = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "company": "AT&T",
    "title": "CTO",
    "sender.first_name": "Bo",
    "sender.last_name": "Rep",
    "sender.name": "Bo Rep",
    "sender.email": "bo@example.com",
}


# --- which names a template uses ------------------------------------------------------


def test_fields_used_names_person_and_sender_fields() -> None:
    source = "Hi {{ first_name }} at {{ company|upper }},\n-- {{ sender.first_name }} <{{ sender['email'] }}>"
    assert fields_used(source) == {"first_name", "company", "sender.first_name", "sender.email"}


def test_person_sender_and_declared_custom_fields_are_allowed() -> None:
    source = "{{ first_name }} {{ last_name }} {{ email }} {{ company }} {{ title }} {{ deal_size }} {{ sender.name }}"
    assert unknown_fields(source, custom_fields=["deal_size"]) == []


def test_an_undeclared_name_is_unknown() -> None:
    assert unknown_fields("Hi {{ frist_name }}, about {{ deal_size }}") == ["deal_size", "frist_name"]


@pytest.mark.parametrize(
    ("source", "unknown"), [("{{ sender.phone }}", ["sender.phone"]), ("{{ sender }}", ["sender"])]
)
def test_sender_means_one_of_the_reps_fields(source: str, unknown: list[str]) -> None:
    assert unknown_fields(source) == unknown


@pytest.mark.parametrize(
    "source",
    [
        "{% for word in ['a', 'b'] %}{{ loop.index }}: {{ word }} {% endfor %}{{ first_name }}",
        "{% set greeting = 'Hello' %}{{ greeting }} {{ first_name }}",
        "{% for n in range(3) %}{{ n }}{% endfor %}{{ first_name }}",
        "{% macro hi(name) %}Hi {{ name }}{% endmacro %}{{ hi(first_name) }}",
        "{% with who = first_name %}{{ who }}{% endwith %}",
        "{% set ns = namespace(n=1) %}{{ ns.n }}{{ first_name }}",
    ],
    ids=["loop", "set", "range", "macro", "with", "namespace"],
)
def test_loop_and_set_variables_are_not_fields(source: str) -> None:
    assert fields_used(source) == {"first_name"}


def test_a_name_read_before_it_is_set_is_a_field() -> None:
    assert unknown_fields("{{ greeting }} {% set greeting = 'Hi' %}") == ["greeting"]


def test_a_syntax_error_names_the_line() -> None:
    with pytest.raises(TemplateProblem, match=r"template syntax error on line 3: "):
        unknown_fields("Hi {{ first_name }},\n\nDid you see {{ company }?\n")


# --- filling a template -----------------------------------------------------------------


def test_render_fills_person_sender_and_custom_fields() -> None:
    source = "Hi {{ first_name }},\nhow is {{ company }} doing with {{ deal_size }}?\n-- {{ sender.name }}\n"
    assert (
        render(source, {**PERSON, "deal_size": "40 seats"}) == "Hi Ada,\nhow is AT&T doing with 40 seats?\n-- Bo Rep\n"
    )


def test_render_refuses_empty_values_naming_every_field() -> None:
    values = {**PERSON, "company": "", "title": "   ", "sender.email": None}
    with pytest.raises(MissingFields) as refused:
        render("{{ first_name }} {{ company }} {{ title }} {{ sender.email }} {{ deal_size }}", values)
    assert refused.value.names == ["company", "deal_size", "sender.email", "title"]
    assert str(refused.value) == "no value for company, deal_size, sender.email, title"


def test_render_only_asks_for_the_fields_the_template_uses() -> None:
    assert render("Hi {{ first_name }}", {"first_name": "Ada", "company": ""}) == "Hi Ada"


def test_render_names_the_line_of_a_syntax_error() -> None:
    with pytest.raises(TemplateProblem, match="line 2"):
        render("Hi\n{% if company %}", PERSON)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ first_name.__class__.__mro__ }}",
        "{{ sender.name.__class__ }}",
        "{% set xs = [1] %}{{ xs.append(2) }}",
    ],
)
def test_the_sandbox_refuses_unsafe_access(source: str) -> None:
    with pytest.raises(SecurityError):
        render(source, PERSON)


def test_a_variable_set_only_inside_an_if_is_a_field_outside_it() -> None:
    # Jinja cannot tell it is always set; the file is refused rather than failing at send time.
    assert unknown_fields("{% if company %}{% set greeting = 'Hi' %}{% endif %}{{ greeting }}") == ["greeting"]


def test_the_last_newline_and_plain_text_are_kept() -> None:
    assert render("{{ company }} & co\n", PERSON) == "AT&T & co\n"
