"""Salesforce settings: unset means no sync; a half-set login is refused naming what is missing."""

import pytest

from bot.settings import NoMatch, SettingsError, load_settings


def test_without_salesforce_url_there_is_no_sync(monkeypatch):
    monkeypatch.delenv("SALESFORCE_URL", raising=False)
    settings = load_settings(_env_file=None)
    assert not settings.salesforce
    assert settings.salesforce_no_match == NoMatch.SKIP


def test_the_jwt_flow_needs_its_key_file(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    settings = load_settings(
        _env_file=None,
        salesforce_url="https://login.salesforce.com/",
        salesforce_client_id="3MVG9",
        salesforce_username="bot@acme.example",
        salesforce_private_key_file=key,
        salesforce_no_match="lead",
    )
    assert settings.salesforce and settings.salesforce_url == "https://login.salesforce.com"
    assert settings.salesforce_no_match == NoMatch.LEAD
    with pytest.raises(SettingsError, match="SALESFORCE_PRIVATE_KEY_FILE: no file"):
        load_settings(
            _env_file=None,
            salesforce_url="https://login.salesforce.com",
            salesforce_client_id="3MVG9",
            salesforce_username="bot@acme.example",
            salesforce_private_key_file=tmp_path / "missing.pem",
        )


def test_a_password_login_needs_the_security_token():
    with pytest.raises(SettingsError, match="SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN"):
        load_settings(
            _env_file=None,
            salesforce_url="https://login.salesforce.com",
            salesforce_username="bot@acme.example",
            salesforce_password="hunter2",
        )


def test_a_no_match_setting_it_does_not_know_is_refused():
    with pytest.raises(SettingsError, match="SALESFORCE_NO_MATCH"):
        load_settings(_env_file=None, salesforce_no_match="contact")
