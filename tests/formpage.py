"""Submit an HTML form as a browser would: every input, select and textarea of the page's form (hidden ones
included), checkboxes and radios only when checked, with the user's changes on top."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: list[tuple[str, str]] = []
        self.in_form = False
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._option_value: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.in_form = True
        if not self.in_form:
            return
        if tag == "input" and "name" in a and "disabled" not in a:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            self.values.append((a["name"], a.get("value", "on" if kind in ("checkbox", "radio") else "")))
        elif tag == "select" and "name" in a:
            self._select, self._select_first, self._select_chosen = a["name"], None, False
        elif tag == "option" and self._select is not None:
            self._option_value = a.get("value")
            if self._select_first is None:
                self._select_first = a.get("value", "")
            if "selected" in a and not self._select_chosen:
                self.values.append((self._select, a.get("value", "")))
                self._select_chosen = True
        elif tag == "textarea" and "name" in a:
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        elif tag == "select" and self._select is not None:
            if not self._select_chosen and self._select_first is not None:
                self.values.append((self._select, self._select_first))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # As a browser: the newline right after <textarea> is not content (CR LF counts as one).
            self.values.append((self._textarea, self._text.removeprefix("\r\n").removeprefix("\n")))
            self._textarea = None


def form_values(html: str) -> list[tuple[str, str]]:
    """The (name, value) pairs the page's first form would send (without its buttons)."""
    reader = _FormReader()
    reader.feed(html)
    return reader.values


def submit(html: str, changes: dict[str, Any] | None = None, button: tuple[str, str] | None = None) -> dict[str, Any]:
    """The data of a form post: the form's values, ``changes`` replacing every value of their names (a
    list for several; None removes), and the pressed ``button`` (name, value)."""
    data: dict[str, Any] = {}
    for name, value in form_values(html):
        data.setdefault(name, []).append(value)
    for name, value in (changes or {}).items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value if isinstance(value, list) else [value]
    if button is not None:
        data[button[0]] = [button[1]]
    return data
