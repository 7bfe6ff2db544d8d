"""Mailbox, Fetch Emails with its progress fragment, New Email, the message page and its downloads."""

from __future__ import annotations

import html
import io
import re
from email.message import EmailMessage as MimeMessage
from email.policy import SMTP

import pytest
from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.models import EmailMessage
from webapp.security import message_page_csp
from webapp.services.identity import users
from webapp.services.platform import queues
from webapp.services.platform.redisconn import get_redis
from webapp.services.reading import inline, messages
from webapp.services.receiving import fetching

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 20


def _rich_message() -> bytes:
    msg = MimeMessage(policy=SMTP)
    msg["From"] = "Mallory <mallory@example.test>"
    msg["To"] = "alice@example.test"
    msg["Subject"] = "<script>alert('subject')</script> Größe"
    msg["Date"] = "Tue, 24 Nov 2026 10:00:00 +0000"
    msg.set_content("Plain part: visit https://example.com/page?a=1&b=<2>")
    msg.add_alternative(
        '<p style="color:red" onclick="alert(1)">Hi <img src="cid:logo@x"> '
        '<img src="https://tracker.example/pixel.gif"> <a href="/relative">rel</a> '
        '<a href="https://example.test/ok">ok</a></p><script>alert(2)</script>',
        subtype="html",
    )
    msg.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid="<logo@x>")
    msg.add_attachment(b"<script>alert(3)</script>", maintype="text", subtype="html", filename="evil.html")
    msg.add_attachment(b"<svg onload=alert(4)></svg>", maintype="image", subtype="svg+xml", filename='Bericht "ä".svg')
    return msg.as_bytes()


@pytest.fixture
def reader(make_user, make_account, login):
    """A user who may read (not send) the Work account, logged in."""
    account = make_account()
    user = make_user("reader")
    users.grant(user, account, read=True, send=False)
    login("reader")
    return account


def test_message_page_is_sanitized_sandboxed_and_under_its_own_csp(
    client: FlaskClient, reader, dovecot: Dovecot
) -> None:
    dovecot.deliver("alice", _rich_message())
    fetching.fetch(reader)
    (message,) = messages.listing(reader)
    assert message.seen is False

    response = client.get(f"/messages/{message.id}")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == message_page_csp(False)
    assert "img-src 'self' data:;" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert "<script>alert" not in page  # the subject is escaped
    assert "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt; Größe" in page
    (frame,) = re.findall(r"<iframe[^>]*>", page, re.S)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame and "allow-scripts" not in frame
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert "onclick" not in srcdoc and "alert(2)" not in srcdoc and "<script" not in srcdoc
    (link,) = re.findall(rf'src="(/messages/{message.id}/inline/\d+\?t=[^"]+)"', srcdoc)  # cid: → signed link
    assert "tracker.example" not in srcdoc and 'data-blocked="remote image"' in srcdoc
    assert "/relative" not in srcdoc
    assert 'href="https://example.test/ok" target="_blank" rel="noopener noreferrer"' in srcdoc
    assert "1 remote image blocked" in page
    db.session.refresh(message)
    assert message.seen is True
    image = client.get(html.unescape(link))
    assert image.status_code == 200 and image.data == PNG and image.headers["Content-Type"] == "image/png"

    shown = client.get(f"/messages/{message.id}?view=html&images=1")
    assert "img-src 'self' data: https: http:" in shown.headers["Content-Security-Policy"]
    assert "https://tracker.example/pixel.gif" in html.unescape(shown.get_data(as_text=True))

    text = client.get(f"/messages/{message.id}?view=text").get_data(as_text=True)
    # A URL ends at an angle bracket (as in <https://…>): the rest is escaped text.
    assert '<a href="https://example.com/page?a=1&amp;b=" target="_blank" rel="noopener noreferrer">' in text
    assert "&lt;2&gt;" in text and "<2>" not in text and "<iframe" not in text


def test_inline_images_are_served_by_signed_link_to_a_user_who_may_read_them(
    app, client: FlaskClient, reader, make_user, dovecot: Dovecot
) -> None:
    # The message frame sends no cookie (opaque origin), so its image links carry a token signed for the
    # user who opened the page; the route still checks that this user may read the message.
    dovecot.deliver("alice", _rich_message())
    fetching.fetch(reader)
    (message,) = messages.listing(reader)
    parts = {a.filename: a for a in message.attachments}
    png, svg = parts["part-1.png"], parts['Bericht "ä".svg']
    page = html.unescape(client.get(f"/messages/{message.id}").get_data(as_text=True))
    (link,) = re.findall(rf"/messages/{message.id}/inline/{png.id}\?t=[^\"]+", page)
    token = link.split("t=", 1)[1]

    client.get("/logout")
    anonymous = app.test_client()
    served = anonymous.get(link)
    assert served.status_code == 200 and served.data == PNG
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert served.headers["Cache-Control"].startswith("private")
    assert anonymous.get(f"/messages/{message.id}/inline/{png.id}").status_code == 403  # no token
    assert anonymous.get(link[:-3] + "abc").status_code == 403  # tampered
    assert anonymous.get(f"/messages/{message.id}/inline/{svg.id}?t={token}").status_code == 403  # another part
    with app.test_request_context():
        svg_token = inline.sign(inline.session_key_of(token, message.id, png.id), message.id, svg.id)
        assert inline.session_key_of(token, message.id, png.id, max_age=-1) is None  # expired
    assert anonymous.get(f"/messages/{message.id}/inline/{svg.id}?t={svg_token}").status_code == 404  # never SVG

    users.grant(users.get("reader"), reader, read=False, send=False)  # access taken away: the link dies too
    assert anonymous.get(link).status_code == 403
    users.set_password(users.get("reader"), "another long password 2")
    users.grant(users.get("reader"), reader, read=True, send=False)
    assert anonymous.get(link).status_code == 403  # a new password ends the old links as it ends sessions


def test_attachments_and_raw_download_safely(client: FlaskClient, reader, dovecot: Dovecot) -> None:
    raw = _rich_message()
    dovecot.deliver("alice", raw)
    fetching.fetch(reader)
    (message,) = messages.listing(reader)
    by_name = {a.filename: a for a in message.attachments}
    assert set(by_name) == {"part-1.png", "evil.html", 'Bericht "ä".svg'}
    assert by_name["part-1.png"].inline and by_name["part-1.png"].content_id == "logo@x"

    for name in ("evil.html", 'Bericht "ä".svg'):
        response = client.get(f"/messages/{message.id}/attachments/{by_name[name].id}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert "sandbox" in response.headers["Content-Security-Policy"]
    svg_id = by_name['Bericht "ä".svg'].id
    svg = client.get(f"/messages/{message.id}/attachments/{svg_id}")
    assert "filename*=UTF-8''Bericht%20%22%C3%A4%22.svg" in svg.headers["Content-Disposition"]
    assert svg.data == b"<svg onload=alert(4)></svg>"

    eml = client.get(f"/messages/{message.id}/raw")
    assert eml.data == raw
    assert eml.headers["Content-Type"] == "message/rfc822"
    assert eml.headers["Content-Disposition"] == f"attachment; filename=message-{message.id}.eml"
    assert client.get(f"/messages/{message.id}/attachments/999999").status_code == 404


def test_reading_and_sending_need_their_grants(
    client: FlaskClient, reader, dovecot: Dovecot, make_user, login, post_form
) -> None:
    dovecot.deliver("alice", _rich_message())
    fetching.fetch(reader)
    (message,) = messages.listing(reader)
    assert client.get(f"/accounts/{reader.id}/mailbox").status_code == 200
    assert client.get(f"/accounts/{reader.id}/compose").status_code == 403
    make_user("stranger")
    post_form("/", {}, url="/logout")
    login("stranger")
    for url in (
        f"/accounts/{reader.id}/mailbox",
        f"/messages/{message.id}",
        f"/messages/{message.id}/raw",
        f"/messages/{message.id}/attachments/{message.attachments[0].id}",
        f"/accounts/{reader.id}/compose",
    ):
        assert client.get(url).status_code == 403, url
    assert client.get("/messages/999999").status_code == 404


def test_compose_sends_with_attachments_and_shows_it_in_sent(
    client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer
) -> None:
    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    page = f"/accounts/{account.id}/compose"
    bad = post_form(page, {"to": "alice@example.test; oops", "subject": "Hi", "text": "x"})
    assert bad.status_code == 200
    assert "&#39;oops&#39; is not a valid email address" in bad.get_data(as_text=True)
    assert 'value="alice@example.test; oops"' in bad.get_data(as_text=True)
    missing = post_form(page, {"to": "alice@example.test", "subject": "Hi", "text": "", "html": ""})
    assert "a text or HTML body is required" in missing.get_data(as_text=True)

    sent = post_form(
        page,
        {
            "to": "alice@example.test; bob@example.test",
            "cc": "carol@example.test",
            "subject": "Quarterly ✓",
            "text": "See attached.",
            "attachments": [(io.BytesIO(b"a,b\n1,2\n"), "report.csv"), (io.BytesIO(PNG), "chart.png")],
        },
        content_type="multipart/form-data",
    )
    assert sent.status_code == 302 and sent.headers["Location"].endswith(f"/accounts/{account.id}/mailbox?folder=Sent")
    (received,) = smtp.received
    assert received.rcpt_tos == ["alice@example.test", "bob@example.test", "carol@example.test"]
    listing = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert "Quarterly ✓" in listing and "alice@example.test, bob@example.test" in listing
    stored = db.session.query(EmailMessage).filter_by(status="SENT").one()
    assert [a.filename for a in stored.attachments] == ["report.csv", "chart.png"]
    # The two attempts that were refused are kept as drafts; the one sent is not a draft any more.
    assert db.session.query(EmailMessage).filter_by(status="DRAFT").count() == 2


def test_fetch_emails_shows_progress_then_the_new_messages(
    client: FlaskClient, make_user, make_account, login, post_form, dovecot: Dovecot
) -> None:
    dovecot.deliver("alice", _rich_message())
    account = make_account()
    make_user("boss", role="admin")
    login("boss")
    mailbox = f"/accounts/{account.id}/mailbox"
    assert "No messages in INBOX yet" in client.get(mailbox).get_data(as_text=True)

    started = post_form(mailbox, {}, url=f"/accounts/{account.id}/fetch", headers={"HX-Request": "true"})
    fragment = started.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="fetch"') and 'hx-trigger="every 1s"' in fragment
    assert "<progress" in fragment
    progress_url = re.search(r'hx-get="([^"]+)"', fragment).group(1)
    assert client.get(progress_url, headers={"HX-Request": "true"}).get_data(as_text=True).count("every 1s") == 1

    SimpleWorker([queues.queue(queues.FETCH)], connection=get_redis(), serializer=JSONSerializer).work(burst=True)

    done = client.get(progress_url, headers={"HX-Request": "true"})
    assert "HX-Request" in done.headers["Vary"]
    text = done.get_data(as_text=True)
    assert "every 1s" not in text and "Fetched: 1 new, 0 already stored" in text
    assert 'id="messages" hx-swap-oob="true"' in text and "Größe" in text

    no_js = post_form(mailbox, {}, url=f"/accounts/{account.id}/fetch")
    assert no_js.status_code == 302 and "job=" in no_js.headers["Location"]
    assert client.get(f"/accounts/{account.id}/fetch/not-a-job").status_code == 404


def test_error_logs_list_fetch_send_and_test_failures(
    client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer, dovecot: Dovecot
) -> None:
    account = make_account(password="wrong password")
    make_user("boss", role="admin")
    login("boss")
    with pytest.raises(Exception, match="authentication failed"):
        fetching.fetch(account)
    post_form(f"/accounts/{account.id}/compose", {"to": "alice@example.test", "subject": "x", "text": "y"})
    post_form(f"/accounts/{account.id}", {}, url=f"/accounts/{account.id}/test")
    page = client.get(f"/accounts/{account.id}/errors").get_data(as_text=True)
    for operation in ("fetch", "send", "test connection"):
        assert f"<td>{operation}</td>" in page
    assert "wrong password" not in page


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def test_previous_and_next_walk_the_list_the_user_came_from(client: FlaskClient, reader, dovecot: Dovecot) -> None:
    from tests.servers import messages as generated

    dovecot.deliver_many("alice", generated.mix(12))
    fetching.fetch(reader)
    listed = messages.listing(reader, "INBOX", limit=0)  # newest first, as the list shows them
    first, second, last = listed[0], listed[1], listed[-1]

    page = client.get(f"/messages/{first.id}").get_data(as_text=True)
    assert _link(page, "prev") is None and _link(page, "next") == f"/messages/{second.id}"
    assert '<span class="muted" aria-disabled="true">← Previous</span>' in page
    page = client.get(f"/messages/{second.id}").get_data(as_text=True)
    assert _link(page, "prev") == f"/messages/{first.id}"
    assert _link(client.get(f"/messages/{last.id}").get_data(as_text=True), "next") is None

    # Within a search the steps skip what does not match, and carry the search along.
    found = [m for m in listed if m.subject.startswith("HTML message")]
    assert len(found) == 2
    page = client.get(f"/messages/{found[0].id}?q=HTML+message").get_data(as_text=True)
    assert _link(page, "next") == f"/messages/{found[1].id}?q=HTML+message"
    assert f'href="/accounts/{reader.id}/mailbox?folder=INBOX&amp;q=HTML+message"' in page  # back to that list
    page = client.get(_link(page, "next")).get_data(as_text=True)
    assert _link(page, "prev") == f"/messages/{found[0].id}?q=HTML+message" and _link(page, "next") is None
    # Unread only: a message just read still has its neighbours.
    unread = client.get(f"/messages/{second.id}?unread=1").get_data(as_text=True)
    assert _link(unread, "prev") is None and _link(unread, "next") == f"/messages/{listed[2].id}?unread=1"


def test_mark_unread_changes_the_stored_copy_only_and_needs_the_csrf_token(
    client: FlaskClient, reader, dovecot: Dovecot, post_form
) -> None:
    dovecot.deliver("alice", _rich_message())
    fetching.fetch(reader)
    (message,) = messages.listing(reader)
    page = f"/messages/{message.id}?q=Gr%C3%B6%C3%9Fe"
    assert f'action="/messages/{message.id}/unread?q=Gr%C3%B6%C3%9Fe"' in client.get(page).get_data(as_text=True)
    assert client.post(f"/messages/{message.id}/unread").status_code == 400  # no token
    db.session.refresh(message)
    assert message.seen is True  # the page view read it
    done = post_form(page, {}, url=f"/messages/{message.id}/unread?q=Gr%C3%B6%C3%9Fe")
    assert done.status_code == 302
    assert done.headers["Location"] == f"/accounts/{reader.id}/mailbox?folder=INBOX&q=Gr%C3%B6%C3%9Fe"
    db.session.refresh(message)
    assert message.seen is False
    listing = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Marked as unread." in listing and '<tr class="unread">' in listing
    # The server's copy was never touched: a fresh fetch of the flags would still say unseen.
    assert "\\Seen" not in dovecot.doveadm("fetch", "-u", "alice", "flags", "mailbox", "INBOX", "all")


def test_the_message_page_shows_the_date_the_list_shows_in_the_users_time_zone(
    client: FlaskClient, reader, dovecot: Dovecot
) -> None:
    from tests.pages import undated_message
    from webapp.services.identity import preferences

    dovecot.deliver("alice", _rich_message())  # Date: Tue, 24 Nov 2026 10:00:00 +0000
    dovecot.deliver("alice", undated_message())
    fetching.fetch(reader)
    dated, undated = sorted(messages.listing(reader), key=lambda m: m.date is None)
    listing = client.get(f"/accounts/{reader.id}/mailbox").get_data(as_text=True)
    utc = '<time datetime="2026-11-24T10:00:00Z" title="2026-11-24 10:00:00 UTC" data-local="minutes">'
    assert utc + "2026-11-24 10:00 UTC</time>" in listing  # app.js shows it in the browser's zone
    page = client.get(f"/messages/{dated.id}").get_data(as_text=True)
    assert '<dt>Date</dt><dd class="date"><time datetime="2026-11-24T10:00:00Z"' in page
    assert "(none)" not in page
    arrived = undated.sort_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    page = client.get(f"/messages/{undated.id}").get_data(as_text=True)
    assert f'<dt>Received</dt><dd class="date"><time datetime="{arrived}"' in page
    assert f'<time datetime="{arrived}"' in client.get(f"/accounts/{reader.id}/mailbox").get_data(as_text=True)

    preferences.set_time_zone(users.get("reader"), "Asia/Tokyo")
    listing = client.get(f"/accounts/{reader.id}/mailbox").get_data(as_text=True)
    assert '<time datetime="2026-11-24T10:00:00Z" title="2026-11-24 10:00:00 UTC">2026-11-24 19:00</time>' in listing
    page = client.get(f"/messages/{dated.id}").get_data(as_text=True)
    assert '<time datetime="2026-11-24T10:00:00Z" title="2026-11-24 10:00:00 UTC">2026-11-24 19:00:00</time>' in page
