"""An account that signs in with OAuth tokens, on the pages: shown as such, and the form (which has no
OAuth fields yet) keeps its sign-in when other settings change."""

from __future__ import annotations

import html

from flask.testing import FlaskClient

from tests.formpage import submit
from tests.servers.oauthserver import OAuthServer
from tests.servers.pki import Pki
from webapp.services.account import accounts, connection, oauth
from webapp.services.account.oauth import ProviderSettings


def test_an_oauth_account_is_shown_and_edited_without_losing_its_sign_in(
    client: FlaskClient, make_user, login, make_account, oauth_server: OAuthServer, pki: Pki
) -> None:
    oauth_server.register_client("app-1", "app-secret-1", "contoso.test", mailbox="alice")
    provider = oauth.create(
        ProviderSettings(
            name="Contoso",
            flow="client_credentials",
            client_id="app-1",
            client_secret="app-secret-1",
            tenant_id="contoso.test",
            authority=oauth_server.authority,
            ca_cert_pem=pki.ca_pem.read_text(),
        )
    )
    account = make_account(password=None, auth_method="oauth", oauth_provider_id=provider.id)
    make_user("boss", role="admin")
    login("boss")
    page = html.unescape(client.get(f"/accounts/{account.id}").get_data(as_text=True))
    assert "OAuth 2.0 with Contoso (client credentials): tokens, no password" in page
    form = client.get(f"/accounts/{account.id}/edit").get_data(as_text=True)
    assert "signs in with OAuth 2.0 tokens" in form and 'name="password"' not in form
    saved = client.post(f"/accounts/{account.id}/edit", data=submit(form, {"fetch_count": "9"}))
    assert saved.status_code == 302, html.unescape(saved.get_data(as_text=True))
    account = accounts.get("Work")
    assert (account.auth_method, account.oauth_provider_id, account.fetch_count) == ("oauth", provider.id, 9)
    assert connection.test_connection(account).ok


def test_a_password_account_on_microsofts_servers_is_told_to_move_to_oauth(
    client: FlaskClient, make_user, login, make_account
) -> None:
    make_user("boss", role="admin")
    login("boss")
    office = make_account(name="Office", incoming_host="outlook.office365.com", outgoing_host="smtp.office365.com")
    local = make_account(name="Local")
    warning = "Microsoft is\nending basic authentication"
    assert warning in client.get(f"/accounts/{office.id}").get_data(as_text=True)
    assert warning not in client.get(f"/accounts/{local.id}").get_data(as_text=True)
    assert "/help/oauth" in client.get(f"/accounts/{office.id}").get_data(as_text=True)
    assert client.get("/help/oauth").status_code == 200
