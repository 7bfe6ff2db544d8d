"""Attacks on the outbox pages: hostile ids and form values, access control, CSRF."""

from __future__ import annotations

import html

import pytest
from flask.testing import FlaskClient

from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.models import EmailMessage
from webapp.models.message import MessageStatus
from webapp.services.identity import users
from webapp.services.outgoing import drafts, outbox
from webapp.services.outgoing.sending import Draft


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize("value", ["²", "¹²", "٣"])
def test_compose_draft_id_unicode_digits_never_500(
    client: FlaskClient, make_user, make_account, login, post_form, smtp, value
) -> None:
    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    page = f"/accounts/{account.id}/compose"
    r = post_form(
        page, {"to": "a@example.test", "subject": "S", "text": "t", "action": "save", "draft_id": value}, url=page
    )
    assert r.status_code < 500, r.status_code


@pytest.mark.parametrize("value", ["²", "1²"])
def test_compose_keep_attachment_unicode_digits_never_500(
    client: FlaskClient, make_user, make_account, login, post_form, smtp, value
) -> None:
    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    page = f"/accounts/{account.id}/compose"
    r = post_form(
        page,
        {"to": "a@example.test", "subject": "S", "text": "t", "action": "save", "keep_attachment": value},
        url=page,
    )
    assert r.status_code < 500, r.status_code


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59",  # user zone UTC: fine? + later arithmetic
        "0001-01-01T00:00",
        "2026-13-01T00:00",
        "2026-01-01T00:00:00+25:00",
        "  ",
        "x" * 5000,
    ],
)
def test_send_after_hostile_values_never_500(
    client: FlaskClient, make_user, make_account, login, post_form, smtp, value
) -> None:
    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    page = f"/accounts/{account.id}/compose"
    r = post_form(
        page, {"to": "a@example.test", "subject": "S", "text": "t", "action": "queue", "send_after": value}, url=page
    )
    assert r.status_code < 500, (value, r.status_code)
    # the tabs still render
    for tab in ("queued", "drafts"):
        assert client.get(f"/accounts/{account.id}/outbox/{tab}").status_code == 200
    # and a sending pass does not crash
    outbox.send_queued()


def test_access_control_sweep(client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer) -> None:
    mine = make_account()
    theirs = make_account(name="Theirs", address="theirs@example.test")
    q = outbox.enqueue(theirs, Draft(to="x@example.test", subject="TheirQ", text="x"))
    d = drafts.save(theirs, Draft(to="x@example.test", subject="TheirDraft", text="secret body"))
    failed = outbox.enqueue(theirs, Draft(to="x@example.test", subject="TheirF", text="x"))
    db.session.query(EmailMessage).filter_by(id=failed.id).update({"status": MessageStatus.FAILED})
    db.session.commit()
    users.grant(make_user("sender"), mine, read=True, send=True)
    users.grant(make_user("reader"), theirs, read=True, send=False)
    login("sender")
    own = f"/accounts/{mine.id}/outbox/queued"
    results = {}
    for mid in (q.id, d.id, failed.id, 0, -1, 2**63, 10**30):
        for path in (
            f"/accounts/{mine.id}/outbox/{mid}/retry",
            f"/accounts/{mine.id}/outbox/{mid}/cancel",
            f"/accounts/{mine.id}/drafts/{mid}/delete",
            f"/messages/{mid}/answer",
        ):
            r = post_form(own, {"how": "reply"}, url=path)
            results[path] = r.status_code
        results[f"compose?draft={mid}"] = client.get(f"/accounts/{mine.id}/compose?draft={mid}").status_code
        # POST compose with another account's draft id
        page = f"/accounts/{mine.id}/compose"
        r = post_form(
            page,
            {"to": "a@example.test", "subject": "S", "text": "t", "action": "queue", "draft_id": str(mid)},
            url=page,
        )
        results[f"compose POST draft_id={mid}"] = r.status_code
    for path in (
        f"/accounts/{theirs.id}/outbox/queued",
        f"/accounts/{theirs.id}/outbox/drafts",
        f"/accounts/{theirs.id}/compose?draft={d.id}",
    ):
        results[path] = client.get(path).status_code
    for path in (f"/accounts/{theirs.id}/outbox/retry-failed", f"/accounts/{theirs.id}/outbox/send-now"):
        results[path] = post_form(own, {}, url=path).status_code
    for path in (
        f"/accounts/{10**30}/outbox/queued",
        "/accounts/-1/outbox/queued",
        f"/accounts/{mine.id}/outbox/queued?before=-5",
        f"/accounts/{mine.id}/outbox/queued?before={10**30}",
        f"/accounts/{mine.id}/outbox/sent?before=abc",
    ):
        results[path] = client.get(path).status_code
    print(results)
    assert not [v for v in results.values() if v >= 500], results
    db.session.rollback()
    statuses = {m.subject: m.status for m in db.session.query(EmailMessage)}
    assert statuses.get("TheirQ") == MessageStatus.QUEUED, statuses
    assert statuses.get("TheirDraft") == MessageStatus.DRAFT, statuses
    assert statuses.get("TheirF") == MessageStatus.FAILED, statuses
    # read-only user on "theirs"
    post_form("/", {}, url="/logout")
    login("reader")
    for path in (f"/accounts/{theirs.id}/outbox/drafts", f"/accounts/{theirs.id}/compose?draft={d.id}"):
        assert client.get(path).status_code == 403, path
    for path in (
        f"/accounts/{theirs.id}/outbox/{failed.id}/retry",
        f"/accounts/{theirs.id}/outbox/{q.id}/cancel",
        f"/accounts/{theirs.id}/drafts/{d.id}/delete",
        f"/accounts/{theirs.id}/outbox/send-now",
        f"/accounts/{theirs.id}/outbox/retry-failed",
    ):
        assert post_form("/", {}, url=path).status_code == 403, path
    # what can the reader see of a draft through the message page?
    shown = client.get(f"/messages/{d.id}")
    assert shown.status_code == 403 and "secret body" not in _text(shown)  # unsent mail needs the send grant


def test_csrf_missing_on_every_post(client: FlaskClient, make_user, make_account, login, smtp) -> None:
    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    q = outbox.enqueue(account, Draft(to="x@example.test", subject="Q", text="x"))
    d = drafts.save(account, Draft(to="x@example.test", subject="D", text="x"))
    for path in (
        f"/accounts/{account.id}/outbox/{q.id}/retry",
        f"/accounts/{account.id}/outbox/{q.id}/cancel",
        f"/accounts/{account.id}/outbox/retry-failed",
        f"/accounts/{account.id}/outbox/send-now",
        f"/accounts/{account.id}/drafts/{d.id}/delete",
        f"/messages/{q.id}/answer",
        f"/accounts/{account.id}/compose",
    ):
        r = client.post(
            path,
            data={
                "how": "reply",
                "to": "a@example.test",
                "subject": "s",
                "text": "t",
                "action": "queue",
                "draft_id": str(d.id),
            },
        )
        assert r.status_code == 400 or (path.endswith("compose") and r.status_code == 200), (path, r.status_code)
    db.session.rollback()
    assert {m.subject: m.status for m in db.session.query(EmailMessage)} == {"Q": "QUEUED", "D": "DRAFT"}
