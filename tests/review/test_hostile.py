"""500s the hostile-requests test does not reach: mail-derived values meeting user settings, odd bodies."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.review.helpers import client_as, post
from tests.servers.dovecot import Dovecot
from webapp.services.identity import users
from webapp.services.reading import messages
from webapp.services.receiving import fetching

FAR = (
    b"From: Far Future <far@example.test>\r\nTo: alice@example.test\r\nSubject: From the end of time\r\n"
    b"Date: Fri, 31 Dec 9999 23:59:59 +0000\r\nMessage-ID: <far@example.test>\r\n\r\nHello.\r\n"
)


def test_a_message_dated_9999_12_31_with_a_time_zone_east_of_utc(
    app: Flask, make_user, make_account, dovecot: Dovecot
) -> None:
    """Anyone can send such a Date header; a user who chose a time zone east of UTC then gets 500s."""
    account = make_account()
    reader = make_user("reader")
    users.grant(reader, account, read=True, send=False)
    dovecot.deliver("alice", FAR)
    fetching.fetch(account)
    (message,) = messages.listing(account)
    client = client_as(app, "reader")
    assert client.get(f"/accounts/{account.id}/mailbox").status_code == 200  # browser zone: fine
    assert post(client, "/settings/", {"timezone": "Asia/Tokyo"}, page="/settings/").status_code == 302
    failures = []
    for url in (f"/accounts/{account.id}/mailbox", f"/messages/{message.id}"):
        status = client.get(url).status_code
        if status >= 500:
            failures.append(f"{url} -> {status}")
    assert not failures, failures


def test_hostile_content_types_and_bodies(app: Flask, make_user, make_account) -> None:
    make_user("boss", role="admin")
    account = make_account()
    client = client_as(app, "boss")
    from tests.review.helpers import token_of

    token = token_of(client)
    bad = []
    urls = [
        "/login",
        "/password",
        "/settings/",
        "/admin/users",
        f"/accounts/{account.id}/compose",
        f"/accounts/{account.id}/edit",
        "/accounts/new",
        f"/accounts/{account.id}/webhooks",
        f"/accounts/{account.id}/fetch",
        f"/accounts/{account.id}/test",
    ]
    bodies = [
        ("application/json", b'{"csrf_token": "%s"}' % token.encode()),
        (
            "multipart/form-data; boundary=zzz",
            b'--zzz\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            + token.encode()
            + b'\r\n--zzz\r\nContent-Disposition: form-data; name="attachments"; filename="\xff\xfe"\r\n'
            b'Content-Type: text/html; charset="\r\n\r\nx\r\n--zzz--\r\n',
        ),
        ("multipart/form-data", b"garbage"),
        ("application/x-www-form-urlencoded; charset=utf-16", ("csrf_token=" + token).encode("utf-16")),
        (
            "application/x-www-form-urlencoded",
            b"csrf_token=" + token.encode() + b"&to=%ff%fe&subject=%C0%80&text=%ED%A0%80",
        ),
        (
            "application/x-www-form-urlencoded",
            b"csrf_token=" + token.encode() + b"&" + b"&".join(b"a%d=1" % i for i in range(20000)),
        ),
        ("text/plain", b"\x00" * 1000),
    ]
    for url in urls:
        for content_type, body in bodies:
            for hx in (
                {},
                {
                    "HX-Request": "true",
                    "HX-Target": "\x00<x>",
                    "HX-Current-URL": "javascript:alert(1)",
                    "HX-Trigger": "a" * 10000,
                    "HX-Boosted": "true",
                },
            ):
                response = client.post(url, data=body, content_type=content_type, headers=hx)
                if response.status_code >= 500:
                    bad.append(f"{url} {content_type[:30]} hx={bool(hx)} -> {response.status_code}")
    assert not bad, bad


def test_a_broken_ca_pem_is_an_error_message_not_a_500(app: Flask, make_user, make_account) -> None:
    from tests.review.helpers import token_of
    from webapp.extensions import db
    from webapp.services.errors import Invalid

    bogus = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    with pytest.raises(Invalid, match="CA certificate: not a certificate that can be used"):
        make_account(ca_cert_pem=bogus)  # refused when saved, since the wizard review
    # One stored before that check: every page and path still answers in words.
    account = make_account()
    account.ca_cert_pem = bogus
    db.session.commit()
    make_user("boss", role="admin")
    client = client_as(app, "boss")
    token = token_of(client, f"/accounts/{account.id}")
    statuses = {}
    for url, hx in (
        (f"/accounts/{account.id}/test", False),
        (f"/accounts/{account.id}/test/incoming", True),
        (f"/accounts/{account.id}/test/outgoing", True),
    ):
        statuses[url] = client.post(
            url, data={"csrf_token": token}, headers={"HX-Request": "true"} if hx else {}
        ).status_code
    statuses["folders"] = client.get(f"/accounts/{account.id}/server-folders").status_code
    statuses["fetch"] = client.post(f"/accounts/{account.id}/fetch", data={"csrf_token": token}).status_code
    assert all(code < 500 for code in statuses.values()), statuses
    from webapp.services.errors import ConnectorError
    from webapp.services.receiving import fetchruns

    try:
        fetchruns.run(account)
    except ConnectorError:
        pass
    from webapp import connector

    try:
        connector.send_email(account, {"to": "x@example.test", "subject": "s", "text": "t"})
    except ConnectorError:
        pass


def test_nul_in_bodies_sent_and_received(app: Flask, make_user, make_account, dovecot: Dovecot, smtp) -> None:
    from tests.review.helpers import token_of
    from webapp.services.receiving import fetchruns

    account = make_account(fetch_strategy="replicate")
    make_user("boss", role="admin")
    client = client_as(app, "boss")
    url = f"/accounts/{account.id}/compose"
    statuses = {}
    for field in ("text", "html"):
        data = {
            "csrf_token": token_of(client, url),
            "to": "bob@example.test",
            "subject": "nul",
            "text": "a",
            field: "before\x00after",
        }
        statuses[field] = client.post(url, data=data).status_code
    dovecot.deliver(
        "alice",
        b"From: a@example.test\r\nTo: alice@example.test\r\nSubject: nul\x00here\r\n"
        b"Content-Type: text/plain\r\n\r\nbody\x00with nul\r\n",
    )
    dovecot.deliver(
        "alice",
        b"From: a@example.test\r\nTo: alice@example.test\r\nSubject: nul html\r\n"
        b"Content-Type: text/html\r\n\r\n<p>body\x00with nul</p>\r\n",
    )
    summary = fetchruns.run(account)
    assert summary.stored == 2 and summary.quarantined == 0, summary
    for m in messages.listing(account, folder="INBOX"):
        statuses[m.id] = client.get(f"/messages/{m.id}").status_code
    assert all(code < 500 for code in statuses.values()), statuses
