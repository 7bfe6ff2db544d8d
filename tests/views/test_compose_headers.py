"""New Email (POST /accounts/<id>/compose): header injection is a form error, never a 500 or a sent
message; display names, dotless and internationalised addresses go through."""

from __future__ import annotations

import html
import io

import pytest
from flask.testing import FlaskClient

from tests.headerinjection import ENCODED, INJECTIONS, refused_for_a_reason
from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.models import EmailMessage, ErrorLog
from webapp.services.identity import users


@pytest.fixture
def page(make_user, make_account, login) -> str:
    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    return f"/accounts/{account.id}/compose"


def _errors(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize("variant", list(INJECTIONS))
def test_injection_in_any_field_is_a_form_error(post_form, page: str, smtp: SmtpServer, variant: str) -> None:
    value = INJECTIONS[variant]
    fields = {
        "Subject": {"subject": value},
        "To": {"to": f'"{value}" <bob@example.test>'},
        "CC": {"cc": f"{value} <carol@example.test>"},
    }
    for label, over in fields.items():
        data = {"to": "alice@example.test", "subject": "Hi", "text": "x", **over}
        response = post_form(page, data)
        assert response.status_code == 200, (label, response.status_code)
        text = _errors(response)
        assert f"{label}:" in text and refused_for_a_reason(text), (label, variant)
    assert smtp.received == []
    # What was written is kept as a draft (nothing is lost); nothing was queued or sent.
    assert {m.status for m in db.session.query(EmailMessage)} <= {"DRAFT"}  # a NUL is refused before saving


@pytest.mark.parametrize("variant", list(ENCODED))
def test_injection_in_an_uploaded_filename_is_a_form_error(
    post_form, page: str, smtp: SmtpServer, variant: str
) -> None:
    data = {
        "to": "alice@example.test",
        "subject": "Hi",
        "text": "x",
        "attachments": [(io.BytesIO(b"data"), ENCODED[variant])],
    }
    response = post_form(page, data, content_type="multipart/form-data")
    assert response.status_code == 200
    text = _errors(response)
    assert "attachment filename" in text and refused_for_a_reason(text)
    assert smtp.received == []


def test_the_accounts_display_name_is_checked_at_sending(app, make_account, post_form, login, make_user, smtp) -> None:
    account = make_account(display_name=INJECTIONS["language suffix"])
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    response = post_form(f"/accounts/{account.id}/compose", {"to": "alice@example.test", "subject": "Hi", "text": "x"})
    assert response.status_code == 200
    assert "From display name (the account's): an encoded line break or NUL is not allowed" in _errors(response)
    assert smtp.received == []


def test_names_commas_dotless_and_idn_addresses_are_sent(client: FlaskClient, post_form, page: str, smtp) -> None:
    data = {
        "to": '"Doe, John" <doe@example.test>, Bob <bob@example.test>; dev@localhost',
        "cc": "x@exämple.test",
        "subject": "Hi",
        "html": "<p>Only <b>HTML</b></p>",
    }
    response = post_form(page, data)
    assert response.status_code == 302, _errors(response)
    (received,) = smtp.received
    assert received.rcpt_tos == ["doe@example.test", "bob@example.test", "dev@localhost", "x@xn--exmple-cua.test"]
    assert b'To: "Doe, John" <doe@example.test>, Bob <bob@example.test>, dev@localhost\r\n' in received.data
    assert b"Content-Type: multipart/alternative" in received.data


def test_a_non_ascii_local_part_without_smtputf8_is_a_form_error_and_logged(
    post_form, page: str, smtp: SmtpServer
) -> None:
    smtp.smtputf8 = False
    response = post_form(page, {"to": "jü@exämple.test", "subject": "Hi", "text": "x"})
    assert response.status_code == 200
    assert "does not accept non-ASCII addresses (no SMTPUTF8): jü@exämple.test" in _errors(response)
    (entry,) = db.session.query(ErrorLog).all()
    assert entry.operation == "send" and "jü@exämple.test" in entry.message
    assert smtp.received == []
