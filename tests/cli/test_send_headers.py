"""``email-connector send``: header injection and unusable addresses end as one clear line on stderr and
exit status 1, never a traceback; display names reach the Sent copy (``messages list --json``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.headerinjection import FILE_NAMES, INJECTIONS, refused_for_a_reason
from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.models import EmailMessage
from webapp.services.account import errorlog

SEND = ("send", "--account", "Work", "--body", "x")


def _refused(result: Result, label: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {label}") or f": {label}" in result.stderr, result.stderr
    assert refused_for_a_reason(result.stderr), result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("variant", list(INJECTIONS))
def test_injection_through_any_option_is_refused(
    run: Callable[..., Result], make_account, smtp: SmtpServer, tmp_path: Path, variant: str
) -> None:
    value = INJECTIONS[variant]
    make_account()
    _refused(run(*SEND, "--to", "a@example.test", "--subject", value), "Subject")
    _refused(run(*SEND, "--to", f'"{value}" <b@example.test>', "--subject", "Hi"), "To")
    _refused(run(*SEND, "--to", "a@example.test", "--cc", f"{value} <c@example.test>", "--subject", "Hi"), "CC")
    if variant in FILE_NAMES:
        attachment = tmp_path / value
        attachment.write_bytes(b"x")
        _refused(run(*SEND, "--to", "a@example.test", "--subject", "Hi", "--attach", str(attachment)), "attachment")
    assert smtp.received == []
    assert db.session.query(EmailMessage).count() == 0


def test_display_names_reach_the_sent_copy(run: Callable[..., Result], make_account, smtp: SmtpServer) -> None:
    make_account()
    sent = run(*SEND, "--to", '"Doe, John" <doe@example.test>, Bob <bob@example.test>', "--subject", "Hi",
               "--cc", "Jürgen <dev@localhost>")  # fmt: skip
    assert sent.exit_code == 0, sent.output
    assert smtp.received[0].rcpt_tos == ["doe@example.test", "bob@example.test", "dev@localhost"]
    listed = run("messages", "list", "--account", "Work", "--folder", "Sent", "--json")
    (row,) = json.loads(listed.stdout)
    assert row["to"] == [
        {"name": "Doe, John", "address": "doe@example.test"},
        {"name": "Bob", "address": "bob@example.test"},
    ]
    assert row["cc"] == [{"name": "Jürgen", "address": "dev@localhost"}]


def test_a_non_ascii_address_without_smtputf8_is_one_line_and_logged(
    run: Callable[..., Result], make_account, smtp: SmtpServer
) -> None:
    account = make_account()
    smtp.smtputf8 = False
    result = run(*SEND, "--to", "jü@exämple.test", "--subject", "Hi")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "does not accept non-ASCII addresses (no SMTPUTF8): jü@exämple.test" in result.stderr
    (entry,) = errorlog.entries(account)
    assert entry.operation == "send"
    smtp.smtputf8 = True
    assert run(*SEND, "--to", "jü@exämple.test", "--subject", "Hi").exit_code == 0
    assert smtp.received[0].rcpt_tos == ["jü@xn--exmple-cua.test"]
