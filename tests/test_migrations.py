"""Migrations keep what is stored: every row of every table survives an upgrade (SQLite copies a table
to change it in a batch operation, and dropping the old one with foreign keys on deletes the rows that
refer to it — 0009 did that once, before it shipped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from webapp.extensions import db


def _counts() -> dict[str, int]:
    tables = [t for t in inspect(db.engine).get_table_names() if not t.startswith(("alembic", "search"))]
    return {t: int(db.session.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() or 0) for t in tables}


def test_upgrading_from_0008_keeps_every_row_and_downgrading_back_too(tmp_path: Path, make_app: Any) -> None:
    other = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'old.db'}")
    with other.app_context():
        upgrade(revision="0008")
        # Raw SQL: the models describe the newest schema, not revision 0008's.
        statements = [
            "INSERT INTO user (username, username_key, password_hash, role, created_at) "
            "VALUES ('u', 'u', 'x', 'user', '2025-01-01')",
            "INSERT INTO email_account (name, name_key, address, display_name, username, incoming_protocol, "
            "incoming_security, incoming_host, incoming_port, folder, outgoing_host, outgoing_port, "
            "outgoing_security, smtp_auth, timeout, tls_verify, fetch_count, fetch_strategy, fetch_order, "
            "batch_size, folders, max_message_size, fetch_every_minutes, after_fetch, after_fetch_folder, "
            "sanitize_html, created_at) VALUES ('W', 'w', 'w@x.test', '', 'w', 'imap', 'tls', 'mail.test', 993, "
            "'INBOX', 'mail.test', 587, 'starttls', 'login', 30, 'system', 50, 'latest', 'newest', 100, "
            "'[\"INBOX\"]', 0, 0, 'none', '', 1, '2025-01-01')",
            "INSERT INTO account_grant (user_id, account_id, can_read, can_send) VALUES (1, 1, 1, 0)",
            "INSERT INTO error_log (account_id, created_at, operation, message, detail) "
            "VALUES (1, '2025-01-01', 'fetch', 'm', 'd')",
            'INSERT INTO email_message (account_id, folder, status, subject, from_name, from_address, "to", cc, '
            "bcc, reply_to, received_at, sort_at, size, raw_sha256, text_body, html_body, has_attachments, seen, "
            "flags, defects, body_state, attempts) VALUES (1, 'INBOX', 'RECEIVED', 's', '', 'a@x.test', '[]', "
            "'[]', '[]', '[]', '2025-01-01', '2025-01-01', 1, 'aa', '', '', 1, 0, '', '', 'parsed', 0)",
            "INSERT INTO attachment (message_id, position, filename, content_type, size, sha256, content_id, "
            "inline) VALUES (1, 0, 'a.pdf', 'application/pdf', 1, 'bb', '', 0)",
        ]
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()
        before = _counts()
        assert before["email_message"] == before["attachment"] == before["error_log"] == 1
        upgrade()
        after = _counts()
        assert {t: after[t] for t in before} == before
        downgrade(revision="0008")
        assert _counts() == before
