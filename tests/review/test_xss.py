"""Every new template field with hostile text: the raw marker tag must never appear unescaped."""

from __future__ import annotations

import html
import re

from flask import Flask

from tests.review.helpers import client_as
from tests.servers.dovecot import Dovecot
from webapp.adapters.mime.sanitizer import text_to_html
from webapp.services.account import errorlog
from webapp.services.events import dispatch, webhooks
from webapp.services.identity import users
from webapp.services.reading import messages
from webapp.services.receiving import fetchjobs, fetchruns
from webapp.views.help.markdown import render

MARK = "<x-evil onmouseover=alert(1)>"
ATTR = "\"'><x-evil>"


def _unescaped(page: str) -> bool:
    return "<x-evil" in page


def test_hostile_text_in_every_field_stays_text(app: Flask, make_user, make_account, dovecot: Dovecot) -> None:
    dovecot.add_user("mallory", "mallory-pw")
    evil_folder = "Evil<x-evil>\"'&"
    dovecot.doveadm("mailbox", "create", "-u", "alice", evil_folder)
    raw = (
        f"From: {MARK} <m@example.test>\r\nTo: {ATTR} <alice@example.test>\r\nCc: =?utf-8?q?=3Cx-evil=3E?= <c@example.test>\r\n"
        f"Subject: {MARK} javascript:alert(1)\r\nDate: Wed, 07 Jan 2026 09:30:00 +0000\r\n"
        f"Message-ID: <{ATTR}@x>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        'see https://example.com/"><x-evil>/ and javascript:alert(1) and data:text/html,<x-evil> '
        'and <https://a.example/?q="x"> and mailto:"><x-evil>@x.com\r\n'
    ).encode()
    dovecot.deliver("alice", raw)
    dovecot.deliver("alice", raw, folder=evil_folder)
    account = make_account(
        name=f"Acct{ATTR}"[:100], display_name="", folders=["INBOX", evil_folder], fetch_strategy="replicate"
    )
    fetchruns.run(account)
    bad = make_account(name="Broken", folder="<x-evil a=1>")  # the server echoes the name in its NO
    try:
        fetchruns.run(bad)
    except Exception:
        pass
    errorlog.record(account, "fetch", f"Incoming server: {MARK}", detail=MARK)
    hook, _ = webhooks.add_webhook(
        account,
        f"http://127.0.0.1:9/{ATTR}".replace(" ", "")
        .replace('"', "%22")
        .replace("'", "%27")
        .replace("<", "%3C")
        .replace(">", "%3E"),
    )
    dispatch.send_test(hook)
    make_user("boss", role="admin")
    reader = make_user("reader")
    users.grant(reader, account, read=True, send=True)
    users.grant(reader, bad, read=True, send=False)
    job = fetchjobs.enqueue(account)
    (message,) = list(messages.listing(account, folder="INBOX"))
    for who in ("boss", "reader"):
        client = client_as(app, who)
        urls = [
            "/",
            f"/accounts/{account.id}",
            f"/accounts/{bad.id}",
            f"/accounts/{account.id}/errors",
            f"/accounts/{bad.id}/errors",
            f"/accounts/{account.id}/mailbox",
            f"/accounts/{account.id}/mailbox?folder={evil_folder}",
            f"/accounts/{account.id}/mailbox?q={MARK}",
            f"/accounts/{account.id}/mailbox?q={ATTR}&unread=1",
            f"/messages/{message.id}",
            f"/messages/{message.id}?q={ATTR}&view=text",
            f"/accounts/{account.id}/fetch/{job}",
            f"/accounts/{account.id}/webhooks/{hook.id}",
            f"/accounts/{account.id}/server-folders",
            "/accounts/",
            "/admin/users",
            f"/admin/users/{reader.id}",
            "/help/webhooks",
            "/settings/",
            f"/accounts/{account.id}/compose",
            f"/accounts/{account.id}/edit",
        ]
        for url in urls:
            for headers in ({}, {"HX-Request": "true"}):
                response = client.get(url, headers=headers)
                page = response.get_data(as_text=True)
                assert response.status_code < 500, (who, url, response.status_code)
                assert not _unescaped(page), (who, url, page[max(0, page.find("<x-evil") - 200) :][:400])


def test_linkifier_and_markdown_with_hostile_input() -> None:
    for text in [
        'https://a.example/"onmouseover="x',
        "https://a.example/<x-evil>",
        "javascript:alert(1)",
        "data:text/html,<x-evil>",
        "https://a.example/'><x-evil>",
        'x@y.zz"><x-evil>',
        "https://\u202e<x-evil>",
        "https://a.example/`<x-evil>`",
        "(https://a.example/))<x-evil>",
    ]:
        out = str(text_to_html(text))
        assert "<x-evil" not in out, out
        hrefs = re.findall(r'href="([^"]*)"', out)
        assert all(html.unescape(h).startswith(("https://", "http://", "mailto:")) for h in hrefs), out
    for md in [
        "[x](javascript:alert(1))",
        '[x](https://a"onmouseover="x)',
        "<x-evil>",
        "`<x-evil>`",
        "**<x-evil>**",
        "# <x-evil>",
        "| <x-evil> |\n|---|\n| <x-evil> |",
        '```"><x-evil>\n<x-evil>\n```',
        "[<x-evil>](#<x-evil>)",
        '[a](mailto:"><x-evil>)',
        "* [x](https://a/)<x-evil>",
        "\x00<x-evil>\x00",
        "[**x**](https://a/**<x-evil>**)",
        '``` x"><x-evil\n```',
    ]:
        out = str(render(md))
        assert "<x-evil" not in out, (md, out)
        hrefs = re.findall(r'href="([^"]*)"', out)
        assert all(html.unescape(h).startswith(("https://", "http://", "mailto:", "#")) for h in hrefs), out
