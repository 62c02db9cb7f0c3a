"""The client's logins: JWT and password (SOAP), refused ones saying why; a password login needs a salesforce.com URL."""

import pytest

from bot.salesforce.client import Client, LoginRefused
from bot.settings import load_settings
from tests.support.fake_salesforce import reach_salesforce_com


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


def password_settings(**values: str):
    return load_settings(
        _env_file=None,
        salesforce_url="https://login.salesforce.com",
        **{
            "salesforce_username": "integration@acme.example",
            "salesforce_password": "correct-horse-battery",
            "salesforce_security_token": "fakeSecurityToken0123",
            **values,
        },
    )


def test_a_password_login_uses_the_soap_login_then_the_instance_it_names(salesforce, monkeypatch):
    reach_salesforce_com(monkeypatch, salesforce.server.server_address[1])
    salesforce.add("Contact", Email="ada@example.com")
    client = Client(password_settings())

    [contact] = client.query("SELECT Id FROM Contact WHERE Email = {}", "ada@example.com")

    assert contact["Id"].startswith("003") and salesforce.logins == 1
    assert [path.split("?")[0] for _, path in salesforce.calls] == [
        "/services/Soap/u/59.0",
        "/services/data/v59.0/query/",
    ]
    salesforce.expire_sessions()  # INVALID_SESSION_ID: the same password logs in again
    assert len(client.query("SELECT Id FROM Contact WHERE Email = {}", "ada@example.com")) == 1
    assert salesforce.logins == 2


def test_a_refused_password_login_says_why_without_the_password(salesforce, monkeypatch):
    reach_salesforce_com(monkeypatch, salesforce.server.server_address[1])
    with pytest.raises(LoginRefused) as refused:
        Client(password_settings(salesforce_password="wrong-horse")).login()
    assert str(refused.value) == (
        "Salesforce refused the login (INVALID_LOGIN): Invalid username, password, security token; or user locked out."
    )
    assert "wrong-horse" not in str(refused.value) and "fakeSecurityToken0123" not in str(refused.value)
    assert salesforce.logins == 0
