"""OAuth 2.0 on the command line, client-credentials flow, against the kit's OAuth server: a provider is
added (its secret encrypted), an account signs in with app-only tokens (SASL XOAUTH2 at Dovecot and the
SMTP server, both checking the token with the OAuth server), fetches and sends; refusals in plain words."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from sqlalchemy import text

from tests.servers.dovecot import Dovecot
from tests.servers.oauthserver import OAuthServer
from tests.servers.pki import Pki
from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.services.account import accounts


def _provider(run: Callable[..., Result], oauth_server: OAuthServer, ca: Path, secret: str = "app-secret-1") -> Result:
    return run(
        "oauth", "add", "Contoso", "--flow", "client_credentials", "--client-id", "app-1", "--client-secret-stdin",
        "--tenant-id", "contoso.test", "--authority", oauth_server.authority, "--ca-file", str(ca),
        stdin=f"{secret}\n",
    )  # fmt: skip


def test_an_account_signs_in_with_app_only_tokens_fetches_and_sends(
    run: Callable[..., Result],
    oauth_server: OAuthServer,
    dovecot: Dovecot,
    smtp: SmtpServer,
    pki: Pki,
    mail_user,
    tmp_path: Path,
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(pki.ca_pem.read_text())
    oauth_server.register_client("app-1", "app-secret-1", "contoso.test", mailbox="alice")
    added = _provider(run, oauth_server, ca)
    assert added.exit_code == 0, added.output
    stored = db.session.execute(text("select client_secret_encrypted from oauth_provider")).scalar_one()
    assert "app-secret-1" not in stored
    listed = json.loads(run("oauth", "list", "--json").stdout)
    assert listed[0]["name"] == "Contoso" and "app-secret-1" not in json.dumps(listed)

    box = run(
        "accounts", "add", "Box", "--address", "alice@example.test", "--username", "alice", "--oauth", "Contoso",
        "--incoming", f"imaps://127.0.0.1:{dovecot.imaps_port}/INBOX",
        "--outgoing", f"smtp+starttls://127.0.0.1:{smtp.port}", "--ca-file", str(ca),
    )  # fmt: skip
    assert box.exit_code == 0, box.output
    row = next(r for r in json.loads(run("accounts", "list", "--json").stdout) if r["name"] == "Box")
    assert (row["sign_in"], row["oauth_provider"]) == ("oauth", "Contoso")
    tested = run("accounts", "test", "Box")
    assert tested.exit_code == 0, tested.output
    assert oauth_server.token_requests[-1]["grant_type"] == "client_credentials"
    assert oauth_server.token_requests[-1]["scope"].split()[0] == "https://outlook.office365.com/.default"

    dovecot.deliver("alice", b"From: a@b.test\r\nTo: alice@example.test\r\nSubject: by token\r\n\r\nhi\r\n")
    fetched = run("fetch", "Box", "--inline", "--json")
    assert fetched.exit_code == 0, fetched.output
    assert json.loads(fetched.stdout)["stored"] == 1
    sent = run("send", "--account", "Box", "--to", "bob@example.test", "--subject", "s", "--body", "b")
    assert sent.exit_code == 0, sent.output
    assert smtp.received[-1].authenticated_as == "alice"
    # The token is kept (encrypted) in the account's cache: the next logins ask the provider no more.
    asked = len(oauth_server.token_requests)
    assert run("accounts", "test", "Box").exit_code == 0
    assert len(oauth_server.token_requests) == asked
    cache = accounts.get("Box").oauth_token_cache_encrypted or ""
    assert cache and oauth_server.introspect("x") == {"active": False}

    refused = run("oauth", "remove", "Contoso")
    assert refused.exit_code == 1 and "Contoso signs in Box" in refused.stderr


def test_the_providers_refusals_are_advice(
    run: Callable[..., Result], oauth_server: OAuthServer, dovecot: Dovecot, smtp: SmtpServer, pki: Pki, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(pki.ca_pem.read_text())
    oauth_server.register_client("app-1", "app-secret-1", "contoso.test", mailbox="alice")
    assert _provider(run, oauth_server, ca, secret="a-wrong-secret").exit_code == 0
    assert run(
        "accounts", "add", "Box", "--address", "alice@example.test", "--username", "alice", "--oauth", "Contoso",
        "--incoming", f"imaps://127.0.0.1:{dovecot.imaps_port}/INBOX", "--ca-file", str(ca),
    ).exit_code == 0  # fmt: skip
    tested = run("accounts", "test", "Box")
    assert tested.exit_code == 1
    assert "the client secret is wrong: copy the secret's *value* (not its ID)" in tested.stderr
    assert "(AADSTS7000215)" in tested.stderr and "a-wrong-secret" not in tested.output
    oauth_server.fail_with = (400, "invalid_client", "AADSTS7000222: The provided client secret keys are expired.")
    assert "the client secret has expired" in run("accounts", "test", "Box").stderr
    oauth_server.fail_with = (400, "invalid_request", "AADSTS12345: Something new.\r\nTrace ID: x")
    assert "AADSTS12345: Something new." in run("accounts", "test", "Box").stderr
    for args, says in (
        (("oauth", "add", "X", "--flow", "client_credentials", "--client-id", "a", "--client-secret-stdin",
          "--authority", "http://plain.test"), "authority: an https:// address"),
        (("oauth", "add", "X", "--flow", "client_credentials", "--client-id", "a", "--client-secret-stdin",
          "--tenant-id", "a/b"), "tenant ID:"),
        (("oauth", "remove", "Nobody"), "no OAuth provider named 'Nobody'"),
        (("accounts", "add", "Y", "--address", "y@x.test", "--oauth", "Nobody", "--outgoing", "smtp://h.test"),
         "no OAuth provider named 'Nobody'"),
    ):  # fmt: skip
        refused = run(*args, stdin="secret\n")
        assert refused.exit_code == 1 and says in refused.stderr, (args, refused.output)
