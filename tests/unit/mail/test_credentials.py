"""Mailbox credentials at rest: Fernet under SECRET_KEY, and clear refusals without a key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.mail.credentials import CredentialsError, decrypt, encrypt
from bot.settings import SettingsError, load_settings

PASSWORD = "correct horse battery staple"


def test_a_password_is_stored_encrypted_and_read_back(key: SecretStr):
    token = encrypt(PASSWORD, key)

    assert PASSWORD not in token
    assert decrypt(token, key) == PASSWORD


def test_without_a_secret_key_no_credentials_are_stored():
    with pytest.raises(CredentialsError, match="SECRET_KEY is not set") as error:
        encrypt(PASSWORD, None)
    assert "Fernet.generate_key()" in str(error.value)  # says how to make one


def test_another_key_cannot_read_a_password_and_says_so_without_showing_anything(key: SecretStr):
    token = encrypt(PASSWORD, key)
    other = SecretStr(Fernet.generate_key().decode())

    with pytest.raises(CredentialsError, match="cannot be read with this SECRET_KEY") as error:
        decrypt(token, other)
    assert token not in str(error.value) and PASSWORD not in str(error.value)


def test_the_secret_key_setting_must_be_a_fernet_key_and_never_shows_in_the_settings(key: SecretStr):
    with pytest.raises(SettingsError, match=r"^SECRET_KEY: must be a Fernet key .* make one with python -c"):
        load_settings(secret_key="not-a-key")

    settings = load_settings(secret_key=key.get_secret_value())
    assert settings.secret_key == key
    assert key.get_secret_value() not in repr(settings)
    assert load_settings(secret_key="").secret_key is None
