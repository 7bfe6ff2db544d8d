"""Hostile received mail answered with Reply / Reply all / Forward; XSS on the outbox pages; send-now
with a partial refusal."""

from __future__ import annotations

import html
from email.policy import default

from flask.testing import FlaskClient

from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.models import EmailMessage
from webapp.models.message import MessageStatus
from webapp.services.identity import users
from webapp.services.outgoing import drafts, outbox
from webapp.services.outgoing.sending import Draft, OutgoingAttachment
from webapp.services.receiving import fetching

XSS = "<img src=x onerror=alert(1)>"

HOSTILE = [
    # encoded CR/LF in Subject
    b"From: Mallory <mallory@example.test>\r\nTo: alice@example.test\r\n"
    b"Subject: =?utf-8?q?a=0D=0ABcc:_x@evil.test?=\r\nMessage-ID: <h1@example.test>\r\n"
    b"Date: Wed, 07 Jan 2026 09:30:00 +0000\r\n\r\nbody\r\n",
    # encoded CR/LF in From display name and Reply-To display name
    b"From: =?utf-8?q?Mal=0D=0ABcc:_x@evil.test?= <mallory@example.test>\r\nTo: alice@example.test\r\n"
    b"Reply-To: =?utf-8?q?R=0D=0ABcc:_y@evil.test?= <r@example.test>\r\n"
    b"Subject: two\r\nMessage-ID: <h2@example.test>\r\nDate: Wed, 07 Jan 2026 09:30:00 +0000\r\n\r\nbody\r\n",
    # hostile References and Message-ID
    b"From: mallory@example.test\r\nTo: alice@example.test, =?utf-8?q?C=0Ac?= <c@example.test>\r\n"
    b'Cc: "x\r\n Bcc: z@evil.test" <d@example.test>\r\n'
    b"Subject: three\r\nMessage-ID: <h3@example.test>\r\n"
    b"References: <a@b> =?utf-8?q?=0D=0ABcc:_z@evil.test?= <c@d>\r\n"
    b"Date: Wed, 07 Jan 2026 09:30:00 +0000\r\n\r\nbody\r\n",
    b"From: mallory@example.test\r\nTo: alice@example.test\r\nSubject: four\r\n"
    b"Message-ID: <h4\r\n Bcc: q@evil.test@example.test>\r\nDate: Wed, 07 Jan 2026 09:30:00 +0000\r\n\r\nbody\r\n",
    b"From: mallory@example.test\r\nTo: alice@example.test\r\nSubject: five\r\n"
    b"Message-ID: h5-without-brackets\r\nReferences: <"
    + b"x" * 5000
    + b"@y>\r\nDate: Wed, 07 Jan 2026 09:30:00 +0000\r\n\r\nbody\r\n",
    # XSS in subject, From name, attachment filename
    b'From: "'
    + XSS.encode()
    + b'" <mallory@example.test>\r\nTo: alice@example.test\r\nSubject: '
    + XSS.encode()
    + b"\r\n"
    b"Message-ID: <h6@example.test>\r\nDate: Wed, 07 Jan 2026 09:30:00 +0000\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n</textarea>'
    + XSS.encode()
    + b"\r\n--b\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b'Content-Disposition: attachment; filename="' + XSS.encode() + b'.txt"\r\n\r\nx\r\n--b--\r\n',
    # attachment filename with encoded CRLF (RFC 2231)
    b"From: mallory@example.test\r\nTo: alice@example.test\r\nSubject: seven\r\nMessage-ID: <h7@example.test>\r\n"
    b"Date: Wed, 07 Jan 2026 09:30:00 +0000\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nt\r\n--b\r\n'
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''a%0D%0AContent-Type%3A%20text%2Fhtml.txt\r\n\r\nx\r\n--b--\r\n",
]


def test_answers_to_hostile_mail_never_inject_and_never_500(
    client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer, dovecot: Dovecot
) -> None:
    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    for raw in HOSTILE:
        dovecot.deliver("alice", raw)
    fetching.fetch(account)
    db.session.rollback()
    received = list(db.session.query(EmailMessage).filter_by(status=MessageStatus.RECEIVED).order_by(EmailMessage.id))
    assert len(received) == len(HOSTILE)
    problems = []
    for original in received:
        page = f"/messages/{original.id}"
        for how in ("reply", "reply-all", "forward", "forward-eml"):
            made = post_form(page, {"how": how}, url=f"/messages/{original.id}/answer")
            if made.status_code != 302:
                problems.append((original.subject, how, "answer", made.status_code))
                continue
            opened = client.get(made.headers["Location"])
            body = opened.get_data(as_text=True)
            if opened.status_code != 200:
                problems.append((original.subject, how, "open", opened.status_code))
            if XSS in body:
                problems.append((original.subject, how, "XSS on compose"))
            db.session.rollback()
            draft_id = int(made.headers["Location"].rsplit("=", 1)[1])
            draft = db.session.get(EmailMessage, draft_id)
            fields = dict(draft.draft_fields or {})
            print(
                "DRAFT",
                original.subject[:20],
                how,
                {k: v for k, v in fields.items() if k in ("to", "cc", "in_reply_to", "references")},
            )
            if not fields.get("to"):
                fields["to"] = "dave@example.test"
            keep = [str(a.id) for a in draft.attachments]
            before = len(smtp.received)
            sent = post_form(
                made.headers["Location"],
                {**fields, "action": "send", "draft_id": str(draft_id), "keep_attachment": keep},
                url=f"/accounts/{account.id}/compose",
            )
            if sent.status_code >= 500:
                problems.append((original.subject, how, "send", sent.status_code))
            if sent.status_code == 200:
                errs = [
                    line
                    for line in html.unescape(sent.get_data(as_text=True)).splitlines()
                    if "kept as a draft" in line
                ]
                problems.append((original.subject, how, "not sendable", errs[:1]))
            for rec in smtp.received[before:]:
                head = rec.data.split(b"\r\n\r\n", 1)[0]
                lines = head.split(b"\r\n")
                if any(line.lower().startswith((b"bcc:", b"content-type: text/html")) for line in lines) or any(
                    "evil" in r for r in rec.rcpt_tos
                ):
                    problems.append((original.subject, how, "INJECTED", head[:600]))
    for p in problems:
        print(p)
    assert not [
        p for p in problems if p[2] in ("INJECTED", "XSS on compose") or (isinstance(p[-1], int) and p[-1] >= 500)
    ]


def test_xss_on_outbox_tabs(client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer) -> None:
    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    drafts.save(
        account,
        Draft(
            to=f'"{XSS}" <a@example.test>; {XSS}',
            subject=XSS,
            text=XSS,
            attachments=(OutgoingAttachment(XSS + ".txt", b"x"),),
        ),
    )
    outbox.enqueue(account, Draft(to=f'"{XSS}" <a@example.test>', subject=XSS, text="x"))
    smtp.fail_with = "550 " + XSS
    outbox.send_queued()
    outbox.enqueue(account, Draft(to="b@example.test", subject=XSS, text="x"))
    smtp.fail_with = None
    outbox.send_queued()
    for tab in ("drafts", "queued", "sent", "failed"):
        r = client.get(f"/accounts/{account.id}/outbox/{tab}")
        assert r.status_code == 200 and XSS not in r.get_data(as_text=True), tab
    db.session.rollback()
    (d,) = db.session.query(EmailMessage).filter_by(status=MessageStatus.DRAFT)
    page = client.get(f"/accounts/{account.id}/compose?draft={d.id}").get_data(as_text=True)
    assert XSS not in page
    failed = db.session.query(EmailMessage).filter_by(status=MessageStatus.FAILED).first()
    print("last_error:", failed.last_error if failed else None)
    for m in db.session.query(EmailMessage):
        r = client.get(f"/messages/{m.id}")
        assert r.status_code == 200 and XSS not in r.get_data(as_text=True), (m.status, r.status_code)


def test_send_now_partly_refused_keeps_no_draft_to_send_again(
    client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer
) -> None:
    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    smtp.refuse = {"b@example.test": "550 no such user"}
    page = f"/accounts/{account.id}/compose"
    fields = {"to": "a@example.test; b@example.test", "subject": "Partly", "text": "t"}
    first = post_form(page, {**fields, "action": "send"}, url=page)
    assert first.status_code == 302 and first.headers["Location"].endswith("folder=Sent")
    assert "Sent, but not to everyone" in html.unescape(client.get(first.headers["Location"]).get_data(as_text=True))
    db.session.rollback()
    assert sorted(m.status for m in db.session.query(EmailMessage)) == [MessageStatus.SENT]
    assert [r.rcpt_tos for r in smtp.received] == [["a@example.test"]]


def test_an_oversize_message_is_not_forwarded_as_an_attachment_of_its_headers(
    client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer, dovecot: Dovecot
) -> None:
    account = make_account(max_message_size=2000)
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    dovecot.deliver(
        "alice",
        b"From: m@example.test\r\nTo: alice@example.test\r\nSubject: Big\r\n"
        b"Message-ID: <big@example.test>\r\nDate: Wed, 07 Jan 2026 09:30:00 +0000\r\n\r\n" + b"BODYLINE\r\n" * 1000,
    )
    fetching.fetch(account)
    db.session.rollback()
    (original,) = db.session.query(EmailMessage).filter_by(status=MessageStatus.RECEIVED)
    refused = post_form(f"/messages/{original.id}", {"how": "forward-eml"}, url=f"/messages/{original.id}/answer")
    assert refused.status_code == 302 and refused.headers["Location"].endswith(f"/messages/{original.id}")
    assert "only its headers were kept" in html.unescape(client.get(refused.headers["Location"]).get_data(as_text=True))
    db.session.rollback()
    assert db.session.query(EmailMessage).filter_by(status=MessageStatus.DRAFT).count() == 0
    made = post_form(f"/messages/{original.id}", {"how": "forward"}, url=f"/messages/{original.id}/answer")
    assert made.status_code == 302 and "draft=" in made.headers["Location"]  # a plain forward still works


def test_forward_as_attachment_is_sent_with_the_original_attached(
    client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer, dovecot: Dovecot
) -> None:
    import email as email_lib

    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    raw = (
        b"From: m@example.test\r\nTo: alice@example.test\r\nSubject: Plain\r\n"
        b"Message-ID: <plain@example.test>\r\nDate: Wed, 07 Jan 2026 09:30:00 +0000\r\n\r\nHello\r\nWorld\r\n"
    )
    dovecot.deliver("alice", raw)
    fetching.fetch(account)
    db.session.rollback()
    (original,) = db.session.query(EmailMessage).filter_by(status=MessageStatus.RECEIVED)
    made = post_form(f"/messages/{original.id}", {"how": "forward-eml"}, url=f"/messages/{original.id}/answer")
    draft_id = int(made.headers["Location"].rsplit("=", 1)[1])
    db.session.rollback()
    draft = db.session.get(EmailMessage, draft_id)
    base = {
        **(draft.draft_fields or {}),
        "to": "dave@example.test",
        "action": "send",
        "draft_id": str(draft_id),
        "keep_attachment": [str(a.id) for a in draft.attachments],
    }
    as_made = post_form(made.headers["Location"], base, url=f"/accounts/{account.id}/compose")
    assert as_made.status_code == 302, html.unescape(as_made.get_data(as_text=True))[:500]
    sent = email_lib.message_from_bytes(smtp.received[-1].data, policy=default)
    (attached,) = list(sent.iter_attachments())
    assert attached.get_filename() == "Plain.eml" and attached.get_payload(decode=True) == original_bytes(original)


def original_bytes(message: EmailMessage) -> bytes:
    from webapp.services.platform import blobs

    return blobs.get(message.raw_sha256)
