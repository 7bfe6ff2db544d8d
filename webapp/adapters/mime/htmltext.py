"""The plain-text alternative of an HTML body: what a reader without HTML should see."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements that end a paragraph (a blank line) and those that only end a line.
_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl", "hr", "form",
     "fieldset", "figure", "address", "center"}
)  # fmt: skip
_LINES = frozenset(
    {"div", "section", "article", "header", "footer", "nav", "aside", "main", "li", "tr", "dt", "dd",
     "figcaption", "caption", "details", "summary"}
)  # fmt: skip
_HIDDEN = frozenset({"script", "style", "head", "title", "noscript", "template", "object", "iframe", "svg", "math"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"})
_LINK_SCHEMES = ("http://", "https://", "mailto:", "ftp://", "tel:")
_SPACES = re.compile(r"[ \t\n\r\f\v]+")


def html_to_text(html: str) -> str:
    """Render ``html`` as plain text: blocks become line breaks, links ``text (url)``, entities decoded,
    scripts and styles dropped."""
    converter = _Converter()
    converter.feed(html)
    converter.close()
    return converter.text()


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden: list[str] = []
        self.pre = 0
        self.links: list[tuple[str, int]] = []  # (href, length of the output when the link opened)
        self.last = "\n"  # the last character written ("\n" at the start)
        self.newlines = 2  # how many line breaks end the output (as if after a paragraph at the start)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden:
            if tag == self.hidden[-1] or (tag in _HIDDEN and tag not in _VOID):
                self.hidden.append(tag)
            return
        if tag in _HIDDEN:
            self.hidden.append(tag)
            return
        self._break(tag)
        values = {name: value or "" for name, value in attrs}
        if tag == "li":
            self._emit("- ")
        elif tag == "pre":
            self.pre += 1
        elif tag in ("td", "th") and self.last != "\n":
            self._emit(" ")
        elif tag == "img" and values.get("alt", "").strip():
            self._write(f" [{_SPACES.sub(' ', values['alt']).strip()}] ")
        elif tag == "a":
            self.links.append((values.get("href", "").strip(), len(self.out)))
        elif tag == "hr":
            self._emit("-" * 20)
            self._break(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            if tag in self.hidden:
                while self.hidden.pop() != tag:
                    pass
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if href.lower().startswith(_LINK_SCHEMES) and href not in (label, f"mailto:{label}"):
                self._write(f" ({href})" if label else href)
        elif tag == "pre" and self.pre:
            self.pre -= 1
        self._break(tag)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        data = data.replace("\xa0", " ")
        if self.pre:
            self._emit(data)
            return
        self._write(_SPACES.sub(" ", data))

    def _write(self, text: str) -> None:
        if self.last in " \n":
            text = text.lstrip(" ")
        self._emit(text)

    def _emit(self, text: str) -> None:
        if text:
            self.out.append(text)
            self.last = text[-1]
            stripped = text.rstrip("\n")
            ending = len(text) - len(stripped)
            self.newlines = self.newlines + ending if not stripped else ending

    def _break(self, tag: str) -> None:
        """End the line (``br`` always; a block unless the line is empty) or the paragraph."""
        if tag == "br":
            self._emit("\n")
        elif tag in _PARAGRAPHS:
            self._emit("\n" * max(0, 2 - self.newlines))
        elif tag in _LINES:
            self._emit("\n" * max(0, 1 - self.newlines))

    def text(self) -> str:
        lines = [line.rstrip() for line in "".join(self.out).split("\n")]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
        return text.strip("\n") + "\n" if text.strip() else ""
