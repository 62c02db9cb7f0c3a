"""OAuth 2.0 settings and endpoints: the table, the tenant, the test override, the Connect links."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.fernet import Fernet

from bot.mail import oauth
from bot.mail.mailboxes import Provider
from bot.settings import SettingsError, load_settings
from tests.support.fake_oauth import id_token

NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)


def settings(**values: object):
    values.setdefault("secret_key", Fernet.generate_key().decode())
    return load_settings(_env_file=None, **values)


def test_microsoft_endpoints_name_the_tenant_organizations_by_default() -> None:
    microsoft = oauth.ENDPOINTS[Provider.MICROSOFT365]
    assert oauth.urls(settings(), microsoft) == (
        "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
    )
    assert oauth.urls(settings(microsoft_tenant="contoso.onmicrosoft.com"), microsoft)[1].startswith(
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/"
    )
    assert oauth.urls(settings(oauth_base_url="http://127.0.0.1:9/"), microsoft) == (
        "http://127.0.0.1:9/microsoft/authorize",
        "http://127.0.0.1:9/microsoft/token",
    )


def test_a_provider_is_offered_only_when_its_client_public_url_and_secret_key_are_set() -> None:
    google = {"google_client_id": "id", "google_client_secret": "secret"}
    assert [e.name for e in oauth.configured(settings(public_url="https://bot.example.com", **google))] == ["Google"]
    assert oauth.configured(settings(**google)) == [], "no PUBLIC_URL: no redirect address"
    assert oauth.configured(settings(public_url="https://bot.example.com", google_client_id="id")) == [], "no secret"
    assert oauth.configured(settings(public_url="https://b.example", secret_key="", **google)) == [], "no SECRET_KEY"
    assert oauth.redirect_uri(settings(public_url="https://bot.example.com/"), oauth.ENDPOINTS[Provider.GOOGLE]) == (
        "https://bot.example.com/oauth/callback/google"
    )


def test_a_malformed_public_url_is_refused_naming_it() -> None:
    with pytest.raises(SettingsError, match="PUBLIC_URL: must be the bot.s https address"):
        settings(public_url="bot.example.com")


def test_client_secrets_never_show_in_the_settings_repr() -> None:
    shown = repr(settings(google_client_secret="g-very-secret", microsoft_client_secret="m-very-secret"))
    assert "g-very-secret" not in shown and "m-very-secret" not in shown


def test_a_connect_link_names_its_rep_for_a_day_and_cannot_be_forged_or_moved() -> None:
    values = settings(public_url="https://bot.example.com", google_client_id="id", google_client_secret="s")
    google, microsoft = oauth.ENDPOINTS[Provider.GOOGLE], oauth.ENDPOINTS[Provider.MICROSOFT365]
    link = oauth.start_url(values, google, "U0123ABCD", NOW)
    sealed = link.split("?t=")[1]
    assert len(link) < 300, "fits a button's url"
    assert oauth.rep_of_start(values, google, sealed, NOW + dt.timedelta(hours=23)) == "U0123ABCD"
    assert oauth.rep_of_start(values, google, sealed, NOW + dt.timedelta(hours=25)) is None, "too old"
    assert oauth.rep_of_start(values, microsoft, sealed, NOW) is None, "another provider's"
    other_key = values.model_copy(update={"secret_key": settings().secret_key})
    assert oauth.rep_of_start(other_key, google, sealed, NOW) is None, "not sealed with our key"


def test_the_mailbox_address_comes_from_the_id_token() -> None:
    assert oauth.email_of(id_token("pat@seller.example")) == "pat@seller.example"
    assert oauth.email_of("not a token") is None and oauth.email_of(None) is None
