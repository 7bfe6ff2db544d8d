"""Admins set how an account is fetched (with a folder picker reading the server) and its webhooks."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from webapp.services.account import accounts
from webapp.services.events import webhooks


def test_fetch_settings_folder_picker_and_webhooks(
    client: FlaskClient, make_user, make_account, login, post_form, dovecot: Dovecot
) -> None:
    dovecot.deliver_many("alice", generated.mix(2))
    dovecot.deliver_many("alice", generated.mix(3), folder="Archive")
    account = make_account()
    make_user("boss", role="admin")
    login("boss")
    edit = f"/accounts/{account.id}/edit"
    page = client.get(edit).get_data(as_text=True)
    assert "Choose from the server&#39;s folders" in page or "Choose from the server's folders" in page

    picker = client.get(f"/accounts/{account.id}/server-folders", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert re.search(r'value="Archive"\s*>\s*Archive <span class="muted">3 messages', picker)
    assert re.search(r'value="INBOX"\s*checked', picker)

    form = {k: v for k, v in vars(accounts.settings_of(account)).items() if v is not None and k != "folders"}
    listed = re.findall(r'name="listed_folders" value="([^"]+)"', picker)
    assert {"INBOX", "Archive"} <= set(listed)
    # The picker decides for what it listed: unticking INBOX (ticked because it was chosen) removes it.
    form.update(sanitize_html="y", fetch_strategy="replicate", batch_size=25, folders="INBOX",
                listed_folders=listed, picked_folders=["Archive"], after_fetch="move", after_fetch_folder="Fetched",
                fetch_every_minutes=15, max_message_size=1000000)  # fmt: skip
    assert post_form(edit, form).status_code == 302
    assert accounts.get("Work").fetch_folders == ["Archive"]
    form.update(folders="Archive\nNot/Listed", picked_folders=["INBOX", "Archive"])  # a typed folder stays
    assert post_form(edit, form).status_code == 302
    assert accounts.get("Work").fetch_folders == ["INBOX", "Not/Listed", "Archive"]  # the main folder first
    form.update(folders="INBOX", picked_folders=["INBOX", "Archive"])
    saved = post_form(edit, form)
    assert saved.status_code == 302, saved.get_data(as_text=True)
    account = accounts.get("Work")
    assert account.fetch_folders == ["INBOX", "Archive"] and account.fetch_strategy == "replicate"
    assert (account.batch_size, account.after_fetch_label, account.fetch_every_minutes) == (25, "move:Fetched", 15)
    shown = client.get(f"/accounts/{account.id}").get_data(as_text=True)
    assert "replicate every message" in shown and "after fetching: move:Fetched" in shown

    added = post_form(f"/accounts/{account.id}", {"url": "https://hooks.example/in", "event_fetch": "y"},
                      url=f"/accounts/{account.id}/webhooks")  # fmt: skip
    assert added.status_code == 200  # the page itself shows the secret, once (tests/views/test_webhooks.py)
    assert "Its signing secret is shown only now" in added.get_data(as_text=True)
    (hook,) = webhooks.webhooks(account)
    assert hook.events == ["fetch"] and "secret" not in hook.secret_encrypted
    bad = post_form(f"/accounts/{account.id}", {"url": "ftp://x"}, url=f"/accounts/{account.id}/webhooks")
    assert bad.status_code == 400 and len(webhooks.webhooks(account)) == 1
    post_form(f"/accounts/{account.id}", {}, url=f"/accounts/{account.id}/webhooks/{hook.id}/delete")
    assert webhooks.webhooks(account) == []
