"""The mailbox page: keyset pages, search, unread and attachment filters, cancelling a fetch."""

from __future__ import annotations

import html as html_module
import re
import time
from collections.abc import Callable

from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy
from webapp.services.platform import queues
from webapp.services.platform.redisconn import get_redis
from webapp.services.reading import messages
from webapp.services.receiving import fetching, fetchjobs


def _subjects(html: str) -> list[str]:
    found = re.findall(r'<a href="/messages/\d+[^"]*" title="[^"]*">([^<]+)</a>', html)
    return [html_module.unescape(subject) for subject in found]


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
    job_id = re.search(r"/fetch/([^/\"?]+)[\"?]", started).group(1)
    stopping = post_form(f"/accounts/{account.id}/mailbox", {}, url=f"/accounts/{account.id}/fetch/{job_id}/cancel",
                         headers={"HX-Request": "true"}).get_data(as_text=True)  # fmt: skip
    assert "stopping after this batch" in stopping
    SimpleWorker([queues.queue(queues.FETCH)], connection=get_redis(), serializer=JSONSerializer).work(burst=True)
    status = fetchjobs.status(job_id)
    assert status.state == "finished" and status.cancelled
    done = client.get(f"/accounts/{account.id}/fetch/{job_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Fetch cancelled" in done


def _until(condition: Callable[[], bool], timeout: float = 30) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass (a bounded wait for another process)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _text(page: str) -> str:
    """The page's text, tags removed and whitespace squeezed (what a reader sees)."""
    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_a_search_says_how_many_match_and_how_to_clear_it(
    client: FlaskClient, make_user, make_account, login, dovecot: Dovecot
) -> None:
    dovecot.deliver_many("alice", generated.mix(30))
    account = make_account(fetch_strategy="replicate")
    fetching.fetch(account)
    make_user("boss", role="admin")
    login("boss")
    url = f"/accounts/{account.id}/mailbox"
    clear = f'<a class="clear" href="/accounts/{account.id}/mailbox?folder=INBOX">Clear</a>'

    four = client.get(url, query_string={"q": "Attachment"}).get_data(as_text=True)
    assert "5 messages match “Attachment” in INBOX." in _text(four) and clear in four
    one = client.get(url, query_string={"q": "Attachment message 3"}).get_data(as_text=True)
    assert "1 message matches “Attachment message 3” in INBOX." in _text(one)
    none = client.get(url, query_string={"q": "zebra"}).get_data(as_text=True)
    assert "No messages match “zebra” in INBOX. Clear" in _text(none) and "match “zebra” in INBOX. <a" not in none
    assert f'<a href="/accounts/{account.id}/mailbox?folder=INBOX">Clear</a>' in none
    filtered = client.get(url, query_string={"attachments": "1"}).get_data(as_text=True)
    assert "5 messages match the filters in INBOX." in _text(filtered)
    assert filtered.count('alt="Has attachments" title="Has attachments"') == 5  # words, not an emoji glyph
    nothing = client.get(url, query_string={"unread": "1", "q": "Attachment message 3"})
    client.get(f"/messages/{messages.listing(account, limit=0)[0].id}")
    assert "1 message matches" in _text(nothing.get_data(as_text=True))
    plain = client.get(url).get_data(as_text=True)
    assert "match" not in _text(plain)  # no count without a search
    for page in (four, one, none, filtered, plain):
        assert not re.search(r"\b1 messages\b", _text(page))


def test_the_filters_are_labelled_in_words(client: FlaskClient, make_user, make_account, login) -> None:
    account = make_account()
    make_user("boss", role="admin")
    login("boss")
    page = client.get(f"/accounts/{account.id}/mailbox").get_data(as_text=True)
    assert "> Has attachments</label>" in page and '<label for="since">Received between</label>' in page
    assert 'aria-label="Received until"' in page
    assert "From <input" not in page and "📎</label>" not in page


def test_the_progress_brings_the_list_along_when_batches_were_stored_since_the_last_poll(
    client: FlaskClient, make_user, make_account, login, post_form, dovecot: Dovecot, worker
) -> None:
    dovecot.deliver_many("alice", generated.mix(200))
    proxy = FaultProxy(dovecot.imap_port).start()
    held = proxy.hold(b"UID FETCH 101:150 ")  # the third batch waits: the fetch is mid-way, for sure
    try:
        account = make_account(incoming_security="none", incoming_port=proxy.port, fetch_strategy="replicate",
                               batch_size=50, timeout=60)  # fmt: skip
        make_user("boss", role="admin")
        login("boss")
        # (Bodies, and so the search index, are completed at the end of a fetch: a filter on the rows here.)
        mailbox = f"/accounts/{account.id}/mailbox?folder=INBOX&unread=1"
        started = post_form(mailbox, {}, url=f"/accounts/{account.id}/fetch?folder=INBOX&unread=1",
                            headers={"HX-Request": "true"}).get_data(as_text=True)  # fmt: skip
        poll = html_module.unescape(re.search(r'hx-get="([^"]+)"', started).group(1))
        assert "batch=0" in poll and "unread=1" in poll and "folder=INBOX" in poll  # the list the user looks at
        assert held.arrived.wait(60)
        job_id = re.search(r"/fetch/([^/?]+)\?", poll).group(1)
        # Polled until the second batch is reported (then the fetch waits for the third).
        assert _until(lambda: fetchjobs.status(job_id).batch == 2)

        fresh = client.get(poll, headers={"HX-Request": "true"}).get_data(as_text=True)
        assert '<section id="messages" hx-swap-oob="true">' in fresh
        assert len(_subjects(fresh)) == 50 and "100 messages match the filters" in _text(fresh)
        again = html_module.unescape(re.search(r'hx-get="([^"]+)"', fresh).group(1))
        assert "batch=2" in again
        unchanged = client.get(again, headers={"HX-Request": "true"}).get_data(as_text=True)
        assert "hx-swap-oob" not in unchanged and "every 1s" in unchanged  # nothing new: the list is left alone

        held.release()
        assert fetchjobs.wait(job_id, timeout=60).finished
        done = client.get(again, headers={"HX-Request": "true"}).get_data(as_text=True)
        assert "Fetched: 200 new" in done and '<section id="messages" hx-swap-oob="true">' in done
        assert "200 messages match the filters" in _text(done) and 'rel="next"' in done
    finally:
        proxy.stop()


def test_answers_that_depend_on_htmx_say_so(client: FlaskClient, make_user, make_account, login, post_form) -> None:
    """Fetch Emails and Cancel answer a fragment to HTMX and a redirect otherwise: both vary on HX-Request."""
    account = make_account()
    make_user("boss", role="admin")
    login("boss")
    page = f"/accounts/{account.id}/mailbox"
    plain = post_form(page, {}, url=f"/accounts/{account.id}/fetch")
    assert plain.status_code == 302 and "HX-Request" in plain.headers["Vary"]
    job_id = fetchjobs.current(account)
    htmx = post_form(page, {}, url=f"/accounts/{account.id}/fetch", headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and "HX-Request" in htmx.headers["Vary"]
    cancel = post_form(page, {}, url=f"/accounts/{account.id}/fetch/{job_id}/cancel")
    assert cancel.status_code == 302 and "HX-Request" in cancel.headers["Vary"]
