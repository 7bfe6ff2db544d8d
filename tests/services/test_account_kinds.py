"""Send-only, receive-only and shared accounts in the services: what each may do, and what it refuses."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.models import EmailMessage
from webapp.models.message import MessageStatus
from webapp.services.account import accounts, connection
from webapp.services.errors import Conflict, Invalid
from webapp.services.outgoing import outbox
from webapp.services.outgoing.sending import Draft
from webapp.services.receiving import fetchjobs, subscriptions


def test_shared_logins_in_each_format() -> None:
    assert accounts.shared_login("exchange", "boss@corp.test", "sales@corp.test") == "boss@corp.test\\sales@corp.test"
    assert accounts.shared_login("dovecot", "boss", "sales") == "sales*boss"
    assert accounts.shared_login("plain", "boss", "sales") == "boss"


def test_an_account_needs_a_server_and_a_password_only_where_it_logs_in(make_account, smtp: SmtpServer) -> None:
    with pytest.raises(Invalid, match="needs an incoming server, an outgoing server, or both"):
        make_account(incoming_host="", outgoing_host="")
    with pytest.raises(Invalid, match="password: required"):
        make_account(name="Relay", incoming_host="", password=None)
    relay = make_account(name="Relay", incoming_host="", password=None, smtp_auth="none", tls_verify="system")
    assert (relay.receives, relay.sends, relay.password_encrypted) == (False, True, None)
    with pytest.raises(Invalid, match="copy to Sent: needs an IMAP incoming server"):
        accounts.update(relay, replace(accounts.settings_of(relay), append_to_sent=True))
    for refuse in (fetchjobs.enqueue, subscriptions.subscribe, accounts.incoming_endpoint):
        with pytest.raises(Invalid, match="Relay is send-only"):
            refuse(relay)


def test_mail_queued_before_an_account_became_receive_only_fails_with_the_reason(
    make_account, smtp: SmtpServer
) -> None:
    account = make_account(max_send_attempts=1)
    queued = outbox.enqueue(account, Draft(to="r@example.test", subject="s", text="t"), nudge_worker=False)
    accounts.update(account, replace(accounts.settings_of(account), outgoing_host=""))
    with pytest.raises(Invalid, match="Work is receive-only"):
        outbox.enqueue(account, Draft(to="r@example.test", subject="s", text="t"), nudge_worker=False)
    outbox.send_queued()
    db.session.expire_all()
    failed = db.session.get(EmailMessage, queued.id)
    assert failed is not None and failed.status == MessageStatus.FAILED
    assert "receive-only" in (failed.last_error or "")
    assert smtp.received == []
    report = connection.test_connection(account)
    assert report.ok and [c.server for c in report.checks] == ["incoming"]
    assert db.session.scalars(select(EmailMessage).where(EmailMessage.status == MessageStatus.SENT)).all() == []


def test_shared_mailboxes_keep_to_one_level_and_their_primary_stays(make_account) -> None:
    primary = make_account(name="Boss")
    shared = make_account(name="Sales", address="sales@example.test", password=None, primary_account_id=primary.id)
    assert shared.password_encrypted is None and accounts.primary_of(shared) is primary
    with pytest.raises(Invalid, match="is itself a shared mailbox"):
        make_account(name="Deeper", password=None, primary_account_id=shared.id)
    with pytest.raises(Invalid, match="cannot be its own primary"):
        accounts.update(primary, replace(accounts.settings_of(primary), primary_account_id=primary.id))
    other = make_account(name="Other", address="other@example.test")
    with pytest.raises(Invalid, match="Boss is the primary account of shared mailboxes"):
        accounts.update(primary, replace(accounts.settings_of(primary), primary_account_id=other.id))
    with pytest.raises(Invalid, match="password: required for an account that is no longer shared"):
        accounts.update(shared, replace(accounts.settings_of(shared), primary_account_id=None))
    with pytest.raises(Conflict, match="Boss is the primary account of Sales"):
        accounts.remove(primary)
    # The primary's password is the shared mailbox's: one password to change.
    accounts.update(primary, replace(accounts.settings_of(primary), password="new-password"))
    assert accounts.incoming_auth(shared).password == "new-password"
    assert accounts.outgoing_auth(shared) is not None and accounts.outgoing_auth(shared).username == "alice"
    accounts.remove(shared)
    accounts.remove(primary)


@pytest.mark.parametrize(("login_format", "username"), [("dovecot", "sales*x"), ("exchange", "corp\\sales")])
def test_a_shared_login_name_cannot_hold_its_forms_separator(make_account, login_format: str, username: str) -> None:
    primary = make_account(name="Boss")
    with pytest.raises(Invalid, match="cannot be in a shared mailbox's login name"):
        make_account(
            name="Sales", username=username, password=None, primary_account_id=primary.id, login_format=login_format
        )


def test_a_shared_mailbox_stays_on_its_primarys_servers(make_account, smtp: SmtpServer) -> None:
    primary = make_account(name="Boss")
    for over, says in (
        ({"incoming_host": "imap.elsewhere.test"}, "incoming server: a shared mailbox uses its primary account's"),
        ({"outgoing_port": 2525}, "outgoing server: a shared mailbox uses its primary account's"),
        ({"tls_verify": "off"}, "certificates: a shared mailbox checks them as its primary account does"),
    ):
        with pytest.raises(Invalid, match=says):
            make_account(name="Sales", password=None, primary_account_id=primary.id, **over)
