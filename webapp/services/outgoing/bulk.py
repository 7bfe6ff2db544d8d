"""Reading a JSONL file of messages to queue: one JSON object per line, checked before anything is queued."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from webapp.services.errors import Invalid
from webapp.services.outgoing.sending import Draft, OutgoingAttachment

KEYS = frozenset({"to", "cc", "bcc", "reply_to", "subject", "body", "html", "attachments", "key"})
MAX_LINE_BYTES = 1024 * 1024


def read_jsonl(path: Path) -> list[tuple[Draft, str | None]]:
    """The drafts of ``path`` with their keys; Invalid names the first bad line by number (blank lines
    are skipped). Attachment paths are relative to the file's folder unless absolute."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise Invalid(f"cannot be read: {exc.strerror}") from None
    items: list[tuple[Draft, str | None]] = []
    with handle:
        for number, line in enumerate(handle, start=1):
            if len(line) > MAX_LINE_BYTES:
                raise Invalid(f"line {number}: longer than {MAX_LINE_BYTES // 1024} KB")
            if not line.strip():
                continue
            try:
                # utf-8-sig on the first line: Windows editors start the file with a byte order mark.
                values = json.loads(line.decode("utf-8-sig" if number == 1 else "utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise Invalid(f"line {number}: not a JSON object ({exc})") from None
            except RecursionError:
                raise Invalid(f"line {number}: nested too deeply") from None
            items.append(_item(number, values, path.parent))
    if not items:
        raise Invalid("no messages in the file")
    return items


def _item(number: int, values: Any, folder: Path) -> tuple[Draft, str | None]:
    if not isinstance(values, dict):
        raise Invalid(f"line {number}: not a JSON object")
    try:
        json.dumps(values, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"line {number}: holds text that is not valid Unicode (a lone surrogate)") from None
    unknown = sorted(set(values) - KEYS)
    if unknown:
        raise Invalid(f"line {number}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})")

    def text(key: str) -> str:
        value = values.get(key, "")
        if isinstance(value, list) and key in ("to", "cc", "bcc", "reply_to"):
            if not all(isinstance(v, str) for v in value):
                raise Invalid(f"line {number}: {key}: a string or a list of strings")
            return "; ".join(value)
        if not isinstance(value, str):
            raise Invalid(f"line {number}: {key}: a string")
        return value

    paths = values.get("attachments", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise Invalid(f"line {number}: attachments: a list of file paths")
    attachments = []
    for name in paths:
        path = Path(name) if Path(name).is_absolute() else folder / name
        try:
            attachments.append(OutgoingAttachment(path.name, path.read_bytes()))
        except OSError as exc:
            raise Invalid(f"line {number}: attachment {name!r} cannot be read: {exc.strerror}") from None
        except ValueError:  # a NUL in the path
            raise Invalid(f"line {number}: attachment {name!r} is not a file path") from None
    key = values.get("key")
    if key is not None and not isinstance(key, str):
        raise Invalid(f"line {number}: key: a string")
    draft = Draft(
        to=text("to"),
        cc=text("cc"),
        bcc=text("bcc"),
        reply_to=text("reply_to"),
        subject=text("subject"),
        text=text("body"),
        html=text("html"),
        attachments=tuple(attachments),
    )
    return draft, key
