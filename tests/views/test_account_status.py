"""What an account is doing, where users look: the overview and the account page show unread mail, the
last fetch and its result, the next scheduled fetch and a problem; the mailbox shows a fetch started
elsewhere and says when only the newest N of more were fetched; Test connection asks both servers at
once and explains a TLS mismatch."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from webapp.services.account import accounts, connection
from webapp.services.platform import queues
from webapp.services.platform.redisconn import get_redis
from webapp.services.reading import messages
from webapp.services.receiving import fetchjobs, fetchruns


def _row(page: str, name: str) -> str:
    match = re.search(rf'<tr[^>]*data-account="{name}".*?</tr>', page, re.S)
    assert match, page
    return match.group(0)


def test_the_overview_shows_each_accounts_state(client: FlaskClient, make_user, make_account, login, dovecot) -> None:
    dovecot.deliver_many("alice", generated.mix(6))
    work = make_account(fetch_every_minutes=15)
    fetchruns.run(work)
    messages.mark_seen(messages.listing(work, limit=1)[0])
    broken = make_account(name="Broken", incoming_port=1)
    with pytest.raises(Exception, match="refused"):
        fetchruns.run(broken)
    make_user("boss", role="admin")
    login("boss")
    page = client.get("/").get_data(as_text=True)

    work_row, broken_row = _row(page, "Work"), _row(page, "Broken")
    assert re.search(r'class="unread">5<', work_row)
    assert "6 new messages" in work_row and "OK" in work_row
    assert "not scheduled" not in work_row and "<time" in work_row  # the next fetch, in 15 minutes
    assert "failed" in broken_row and "The last fetch failed" in broken_row and 'class="attention"' in broken_row
    assert "not scheduled" in broken_row


def test_the_account_page_shows_its_status_and_last_runs(
    client: FlaskClient, make_user, make_account, login, dovecot: Dovecot
) -> None:
    dovecot.deliver_many("alice", generated.mix(3))
    account = make_account()
    fetchruns.run(account)
    # A new port needs the password again (a stored password only goes to the servers it was saved for).
    moved = replace(accounts.settings_of(account), incoming_port=1, password="alice-mail-pw")
    account = accounts.update(account, moved)
    with pytest.raises(Exception, match="refused"):
        fetchruns.run(account)
    make_user("boss", role="admin")
    login("boss")
    page = client.get(f"/accounts/{account.id}").get_data(as_text=True)
    assert "The last fetch failed" in page and "refused the connection" in page
    runs = re.findall(r'<tr data-status="(\w+)">', page)
    assert runs == ["failed", "finished"]


def test_the_mailbox_shows_a_running_fetch_and_how_much_the_server_holds(
    client: FlaskClient, make_user, make_account, login, dovecot: Dovecot
) -> None:
    dovecot.deliver_many("alice", generated.mix(12))
    account = make_account(fetch_count=5)
    make_user("boss", role="admin")
    login("boss")
    job_id = fetchjobs.enqueue(account, trigger="command")  # started elsewhere: the command line
    page = client.get(f"/accounts/{account.id}/mailbox").get_data(as_text=True)
    assert f"/fetch/{job_id}" in page and 'hx-trigger="every 1s"' in page
    SimpleWorker([queues.queue(queues.FETCH)], connection=get_redis(), serializer=JSONSerializer).work(burst=True)
    done = client.get(f"/accounts/{account.id}/fetch/{job_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Fetched the newest 5 of 12 on the server" in done and "fetch settings" in done


@pytest.mark.parametrize(
    ("security", "port_of", "advice"),
    [
        ("tls", "imap_port", "does not speak TLS directly on port"),
        ("starttls", "imaps_port", "choose TLS"),
    ],
)
def test_a_tls_mismatch_is_explained_and_the_detail_logged(make_account, dovecot: Dovecot, security, port_of, advice):
    account = make_account(incoming_security=security, incoming_port=getattr(dovecot, port_of), timeout=2)
    result = connection.check(account, "incoming")
    assert not result.ok and result.kind in ("tls", "timeout")
    assert advice in result.message, result.message
    from webapp.services.account import errorlog

    (entry,) = errorlog.entries(account)
    assert entry.message == result.message and "kind=" in entry.detail
    if security == "tls":
        assert "WRONG_VERSION_NUMBER" in entry.detail  # the technical text stays in the Error logs


def test_starttls_to_an_implicit_tls_smtp_port_gets_the_same_advice(make_account, smtp) -> None:
    account = make_account(outgoing_security="starttls", outgoing_port=smtp.tls_port, timeout=2)
    result = connection.check(account, "outgoing")
    assert not result.ok and result.kind == "timeout"
    assert "if this port expects TLS right away, choose TLS" in result.message, result.message
