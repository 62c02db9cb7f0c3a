"""A fake Salesforce over HTTPS on loopback, trusted by requests, and settings that point at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.clock import FixedClock
from bot.services import sync
from bot.settings import Settings, load_settings
from tests.support.fake_salesforce import SALESFORCE_NAMES, FakeSalesforce, connected_app_key
from tests.support.tls import Certificate, self_signed


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"), SALESFORCE_NAMES)


@pytest.fixture(scope="session")
def app_key(tmp_path_factory: pytest.TempPathFactory):
    return connected_app_key(tmp_path_factory.mktemp("salesforce"))


@pytest.fixture
def salesforce(
    cert: Certificate, app_key, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSalesforce]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert.cert))  # requests checks the fake's certificate
    monkeypatch.setattr(sync, "_enabled", True)
    fake = FakeSalesforce(cert, app_key[1], now=clock.now).start()
    yield fake
    fake.stop()


@pytest.fixture
def sf_settings(salesforce: FakeSalesforce, app_key, tmp_path) -> Settings:
    return load_settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path}/unused.db",
        salesforce_url=salesforce.url,
        salesforce_client_id=salesforce.client_id,
        salesforce_username=salesforce.username,
        salesforce_private_key_file=app_key[0],
    )
