"""Real mail servers that want a login: aiosmtpd with AUTH over STARTTLS, Dovecot over IMAP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from tests.support.dovecot import Dovecot
from tests.support.smtp_login import SmtpLogin
from tests.support.tls import Certificate, self_signed

USER = "pat@seller.example"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trusted(cert: Certificate, monkeypatch: pytest.MonkeyPatch) -> Certificate:
    """The test certificate is trusted as a real one would be (ssl's default context reads SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert))
    return cert


@pytest.fixture
def smtp_server(trusted: Certificate) -> Iterator[SmtpLogin]:
    with SmtpLogin(trusted, users={USER: PASSWORD}) as server:
        yield server


@pytest.fixture(scope="module")
def imap_server(cert: Certificate) -> Iterator[Dovecot]:
    with Dovecot(users={USER: PASSWORD}, cert=cert) as server:
        yield server


@pytest.fixture
def key() -> SecretStr:
    return SecretStr(Fernet.generate_key().decode())
