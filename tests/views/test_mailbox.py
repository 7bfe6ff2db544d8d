"""The mailbox page: keyset pages, search, unread and attachment filters, cancelling a fetch."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from webapp.services import fetching, fetchjobs, messages, queues
from webapp.services.redisconn import get_redis


def _subjects(html: str) -> list[str]:
    return re.findall(r'<a href="/messages/\d+">([^<]+)</a>', html)


def test_pages_search_and_filters(client: FlaskClient, make_user, make_account, login, dovecot: Dovecot) -> None:
    dovecot.deliver_many("alice", generated.mix(120))
    account = make_account(fetch_strategy="replicate")
    fetching.fetch(account)
    make_user("boss", role="admin")
    login("boss")
    url = f"/accounts/{account.id}/mailbox"

    seen: list[str] = []
    page = client.get(url).get_data(as_text=True)
    for _ in range(5):
        seen += _subjects(page)
        more = re.search(r'<a rel="next" href="([^"]+)"', page)
        if not more:
            break
        page = client.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert len(seen) == 120 and len(set(seen)) == 120
    newest_first = [m.subject for m in messages.listing(account, "INBOX", limit=0)]
    assert seen == newest_first

    found = _subjects(client.get(url, query_string={"q": "Attachment message 1"}).get_data(as_text=True))
    assert found and all(s.startswith("Attachment message 1") for s in found)
    assert sorted(found) == [
        "Attachment message 105",
        "Attachment message 111",
        "Attachment message 117",
        "Attachment message 15",
    ]
    words = _subjects(client.get(url, query_string={"q": "Köln"}).get_data(as_text=True))
    assert len(words) == 20 and all("Köln" in s for s in words)
    body = messages.listing(account, "INBOX", limit=0)[0]
    word = body.text_body.split()[-1]
    assert body.subject in _subjects(client.get(url, query_string={"q": word}).get_data(as_text=True))
    sender = _subjects(client.get(url, query_string={"q": "sender42"}).get_data(as_text=True))
    assert sender == [
        m.subject for m in messages.listing(account, limit=0) if m.from_address == "sender42@example.test"
    ]
    assert _subjects(client.get(url, query_string={"q": '"); DROP TABLE x; --'}).get_data(as_text=True)) == []

    attached = _subjects(client.get(url, query_string={"attachments": "1"}).get_data(as_text=True))
    assert attached and all(s.startswith("Attachment message") for s in attached)
    dated = _subjects(
        client.get(url, query_string={"since": "2026-01-01", "until": "2026-01-01"}).get_data(as_text=True)
    )
    assert len(dated) == 50  # messages dated that day (one per minute), first page

    first = messages.listing(account, "INBOX", limit=1)[0]
    client.get(f"/messages/{first.id}")
    unread = _subjects(client.get(url, query_string={"unread": "1"}).get_data(as_text=True))
    assert first.subject not in unread and len(unread) == 50


def test_a_fetch_can_be_cancelled_and_keeps_what_it_stored(
    client: FlaskClient, make_user, make_account, login, post_form, dovecot: Dovecot
) -> None:
    dovecot.deliver_many("alice", generated.mix(10))
    account = make_account()
    make_user("boss", role="admin")
    login("boss")
    started = post_form(f"/accounts/{account.id}/mailbox", {}, url=f"/accounts/{account.id}/fetch",
                        headers={"HX-Request": "true"}).get_data(as_text=True)  # fmt: skip
    job_id = re.search(r"/fetch/([^/\"]+)\"", started).group(1)
    stopping = post_form(f"/accounts/{account.id}/mailbox", {}, url=f"/accounts/{account.id}/fetch/{job_id}/cancel",
                         headers={"HX-Request": "true"}).get_data(as_text=True)  # fmt: skip
    assert "stopping after this batch" in stopping
    SimpleWorker([queues.queue(queues.FETCH)], connection=get_redis(), serializer=JSONSerializer).work(burst=True)
    status = fetchjobs.status(job_id)
    assert status.state == "finished" and status.cancelled
    done = client.get(f"/accounts/{account.id}/fetch/{job_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Fetch cancelled" in done
