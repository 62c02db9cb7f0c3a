"""Mailbox credentials encrypted at rest with Fernet, under the SECRET_KEY setting.

Make a key once and keep it (a new key cannot read what the old one wrote):

    python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from bot.services.errors import ServiceError

MAKE_A_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
NOT_A_KEY = f"must be a Fernet key (32 url-safe base64 bytes): make one with {MAKE_A_KEY}"


class CredentialsError(ServiceError):
    """No key, a malformed key, or a key that cannot read what is stored; never holds a secret."""


def cipher(key: SecretStr | None) -> Fernet:
    """The cipher for `key`; CredentialsError naming SECRET_KEY when there is none or it is malformed."""
    if key is None or not key.get_secret_value():
        raise CredentialsError(
            f"SECRET_KEY is not set, and mailbox credentials are only stored encrypted with it: make one with {MAKE_A_KEY}"
        )
    try:
        return Fernet(key.get_secret_value())
    except ValueError:
        raise CredentialsError(f"SECRET_KEY {NOT_A_KEY}") from None


def encrypt(secret: str, key: SecretStr | None) -> str:
    """`secret` encrypted (and authenticated) under `key`, as ASCII text to store."""
    return cipher(key).encrypt(secret.encode("utf-8")).decode("ascii")


def decrypt(token: str, key: SecretStr | None) -> str:
    """The secret that `encrypt` stored; a different key is a CredentialsError, never garbage."""
    try:
        return cipher(key).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise CredentialsError(
            "a stored mailbox password cannot be read with this SECRET_KEY (was the key changed?): "
            "set the mailbox again with `bot mailbox set`"
        ) from None
