"""Unsubscribe tokens and the mailto: they name one person, and nobody can forge or alter them."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.services import unsubscribe
from bot.services.unsubscribe import Links, person_of, person_of_mailto, token
from bot.settings import SettingsError, load_settings

KEY = SecretStr(Fernet.generate_key().decode())
OTHER_KEY = SecretStr(Fernet.generate_key().decode())


def test_a_token_names_its_person_and_is_url_safe() -> None:
    value = token(42, KEY)

    assert person_of(value, KEY) == 42
    assert value.startswith("42.") and all(c.isalnum() or c in "._-" for c in value)
    assert token(43, KEY) != value.replace("42.", "43.")


def flip(value: str, index: int) -> str:
    return value[:index] + ("A" if value[index] != "A" else "B") + value[index + 1 :]


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(lambda v: v.replace("42.", "43.", 1), id="another person's id"),
        pytest.param(lambda v: flip(v, len(v) - 1), id="an altered signature"),
        pytest.param(lambda v: v[:-1], id="a cut signature"),
        pytest.param(
            lambda v: "42." + base64.urlsafe_b64encode(b"\0" * 16).decode().rstrip("="), id="a made-up signature"
        ),
        pytest.param(lambda v: token(42, OTHER_KEY), id="signed with another key"),
        pytest.param(lambda v: "042" + v[2:], id="a padded id"),
        pytest.param(lambda v: v + "=", id="padding"),
        pytest.param(lambda v: "", id="empty"),
        pytest.param(lambda v: "../../etc/passwd", id="not a token"),
    ],
)
def test_a_forged_or_altered_token_is_refused(forged) -> None:  # type: ignore[no-untyped-def]
    assert person_of(forged(token(42, KEY)), KEY) is None


def test_without_a_key_no_token_is_accepted() -> None:
    assert person_of(token(42, KEY), None) is None


def test_the_mailto_carries_the_token_in_its_subject_and_is_recognised_when_it_arrives() -> None:
    links = Links("https://bot.example.com", KEY)

    mailto = links.mailto_url(42, "rita@seller.example")

    assert mailto == f"mailto:rita@seller.example?subject=unsubscribe%20{token(42, KEY)}"
    subject = mailto.partition("subject=")[2].replace("%20", " ")
    assert person_of_mailto("rita@seller.example", subject, KEY) == 42
    assert person_of_mailto("rita@seller.example", f"Re: {subject}", KEY) == 42, "a client may prefix Re:"
    assert person_of_mailto("rita@seller.example", "Re: Hello Pat", KEY) is None
    assert person_of_mailto("rita@seller.example", f"unsubscribe {token(42, OTHER_KEY)}", KEY) is None
    assert person_of_mailto("rita@seller.example", f"unsubscribe {flip(token(42, KEY), 5)}", KEY) is None
    assert person_of_mailto("rita@seller.example", subject, None) is None


def test_the_mailto_goes_to_unsubscribe_mailto_when_set() -> None:
    links = unsubscribe.links_for(
        load_settings(
            _env_file=None,
            public_url="https://bot.example.com/",
            secret_key=KEY.get_secret_value(),
            unsubscribe_mailto="optout@seller.example",
        )
    )

    assert links is not None and links.url(7) == f"https://bot.example.com/unsubscribe/{token(7, KEY)}"
    assert (
        links.mailto_url(7, "rita@seller.example")
        == f"mailto:optout@seller.example?subject=unsubscribe%20{token(7, KEY)}"
    )


def test_without_public_url_or_secret_key_there_are_no_links() -> None:
    assert unsubscribe.links_for(load_settings(_env_file=None, secret_key=KEY.get_secret_value())) is None
    assert unsubscribe.links_for(load_settings(_env_file=None, public_url="https://bot.example.com")) is None


@pytest.mark.parametrize(
    "url", ["http://bot.example.com", "bot.example.com", "https://", "https://bot.example.com/?a=1"]
)
def test_public_url_must_be_an_https_address(url: str) -> None:
    with pytest.raises(SettingsError, match="PUBLIC_URL: must be the bot's https address"):
        load_settings(_env_file=None, public_url=url)
