"""Full-text search of stored messages: SQLite FTS5 or PostgreSQL full-text, same interface.

The index holds subject, sender and body text (the first ``MAX_BODY`` characters); it is filled when a
message's bodies are parsed, and rows go away with their message (trigger or foreign key).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Integer, bindparam, column, text

from webapp.extensions import db
from webapp.models import EmailMessage

MAX_BODY = 100_000
FEW = 500
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_WORD = re.compile(r"\w+", re.UNICODE)


def _is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def document(message_id: int, subject: str, sender: str, text_body: str, html_body: str) -> dict[str, object]:
    """One row of the index: the text body, or the HTML's text when there is none."""
    body = text_body or html.unescape(_TAGS.sub(" ", html_body or ""))
    return {"id": message_id, "subject": subject or "", "sender": sender, "body": body[:MAX_BODY]}


def index(batch: Sequence[EmailMessage]) -> None:
    """(Re)index ``batch`` in the caller's transaction (the messages must have ids: flush first)."""
    index_documents(
        [document(m.id, m.subject, f"{m.from_name} {m.from_address}", m.text_body, m.html_body) for m in batch]
    )


def index_documents(rows: Sequence[dict[str, object]]) -> None:
    """(Re)index rows made by :func:`document`, in the caller's transaction."""
    if not rows:
        return
    ids = [r["id"] for r in rows]
    if _is_postgres():
        db.session.execute(
            text("DELETE FROM message_search WHERE message_id IN :ids").bindparams(bindparam("ids", expanding=True)),
            {"ids": ids},
        )
        db.session.execute(
            text(
                "INSERT INTO message_search (message_id, document) VALUES (:id, "
                "setweight(to_tsvector('simple', :subject), 'A') || setweight(to_tsvector('simple', :sender), 'A')"
                " || to_tsvector('simple', :body))"
            ),
            list(rows),
        )
    else:
        db.session.execute(
            text("DELETE FROM message_fts WHERE rowid IN :ids").bindparams(bindparam("ids", expanding=True)),
            {"ids": ids},
        )
        db.session.execute(
            text("INSERT INTO message_fts (rowid, subject, sender, body) VALUES (:id, :subject, :sender, :body)"),
            list(rows),
        )


def matching(query: str) -> ColumnElement[bool] | None:
    """A condition on EmailMessage.id: every word of ``query`` appears (the last as a prefix); None if
    there are no words."""
    words = _WORD.findall(query)[:20]
    if not words:
        return None
    # Every word must appear; the last one may be a prefix (what the user is still typing): prefix
    # matching on every word costs PostgreSQL's GIN index several times more.
    if _is_postgres():
        tsquery = " & ".join([*words[:-1], f"{words[-1]}:*"])
        sql = "SELECT message_id AS id FROM message_search WHERE document @@ to_tsquery('simple', :q)"
        # PostgreSQL misjudges how few rows a tsquery matches and walks the date index instead: when the
        # matches are few, look them up first and filter by the list.
        few = list(db.session.scalars(text(sql + " LIMIT :most").bindparams(q=tsquery, most=FEW + 1)))
        if len(few) <= FEW:
            return EmailMessage.id.in_(few)
        sub = text(sql).bindparams(q=tsquery)
    else:
        quoted = ['"' + w.replace('"', '""') + '"' for w in words]
        match = " ".join([*quoted[:-1], quoted[-1] + "*"])
        sub = text("SELECT rowid AS id FROM message_fts WHERE message_fts MATCH :q").bindparams(q=match)
    return EmailMessage.id.in_(sub.columns(column("id", Integer)).subquery().select())
