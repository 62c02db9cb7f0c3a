"""The client's logins: a refused JWT login says why; a password login needs a salesforce.com URL."""

import pytest

from bot.salesforce.client import Client, LoginRefused
from bot.settings import load_settings


def test_a_refused_jwt_login_says_why_without_the_key(sf_settings, salesforce, app_key):
    settings = sf_settings.model_copy(update={"salesforce_client_id": "not-the-app"})
    with pytest.raises(LoginRefused, match="^Salesforce refused the login: client identifier invalid$"):
        Client(settings).query("SELECT Id FROM Contact WHERE Email = {}", "ada@example.com")
    assert salesforce.logins == 0


def test_a_password_login_needs_a_salesforce_com_url(salesforce):
    settings = load_settings(
        _env_file=None,
        salesforce_url=salesforce.url,
        salesforce_username="bot@acme.example",
        salesforce_password="hunter2",
        salesforce_security_token="tok",
    )
    with pytest.raises(LoginRefused, match="password login needs SALESFORCE_URL on salesforce.com"):
        Client(settings).login()
    assert salesforce.calls == []  # the password went nowhere
