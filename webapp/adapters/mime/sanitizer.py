"""Sanitizing received HTML for display: bleach with an email allowlist, then our own checks.

bleach keeps relative URLs and decodes CSS escapes (``\\75 \\72 \\6C (`` comes out as ``url(``), so
after bleach a filter drops every URL that is not http, https, mailto or cid, and every style attribute
whose *sanitized* text still loads something. The result is shown in a sandboxed frame without scripts;
this module is the first wall, the sandbox and the CSP are the second and third.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import bleach
import markupsafe
from bleach.css_sanitizer import CSSSanitizer
from bleach.html5lib_shim import Filter

ALLOWED_TAGS = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "address",
        "b",
        "bdi",
        "bdo",
        "big",
        "blockquote",
        "br",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "font",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "time",
        "tr",
        "tt",
        "u",
        "ul",
        "wbr",
    ]
)
_CELL = ["align", "valign", "width", "height", "bgcolor", "colspan", "rowspan", "nowrap", "scope"]
ALLOWED_ATTRIBUTES: dict[str, list[str]] = {
    "*": ["style", "title", "dir", "lang", "align", "class"],
    "a": ["href", "name"],
    "img": ["src", "alt", "width", "height", "border", "hspace", "vspace"],
    "table": ["width", "height", "border", "cellpadding", "cellspacing", "bgcolor", "summary"],
    "td": _CELL,
    "th": _CELL,
    "tr": ["align", "valign", "bgcolor", "height"],
    "col": ["span", "width", "align", "valign"],
    "colgroup": ["span", "width", "align", "valign"],
    "font": ["color", "face", "size"],
    "ol": ["start", "type", "reversed"],
    "ul": ["type"],
    "li": ["value", "type"],
    "blockquote": ["cite"],
    "q": ["cite"],
    "del": ["datetime"],
    "ins": ["datetime"],
    "time": ["datetime"],
    "hr": ["width", "size", "noshade"],
}
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto", "cid"})
ALLOWED_CSS_PROPERTIES = frozenset(
    [
        "background",
        "background-color",
        "border",
        "border-bottom",
        "border-bottom-color",
        "border-bottom-style",
        "border-bottom-width",
        "border-collapse",
        "border-color",
        "border-left",
        "border-left-color",
        "border-left-style",
        "border-left-width",
        "border-radius",
        "border-right",
        "border-right-color",
        "border-right-style",
        "border-right-width",
        "border-spacing",
        "border-style",
        "border-top",
        "border-top-color",
        "border-top-style",
        "border-top-width",
        "border-width",
        "clear",
        "color",
        "direction",
        "display",
        "float",
        "font",
        "font-family",
        "font-size",
        "font-style",
        "font-variant",
        "font-weight",
        "height",
        "letter-spacing",
        "line-height",
        "list-style-type",
        "margin",
        "margin-bottom",
        "margin-left",
        "margin-right",
        "margin-top",
        "max-height",
        "max-width",
        "min-height",
        "min-width",
        "overflow",
        "padding",
        "padding-bottom",
        "padding-left",
        "padding-right",
        "padding-top",
        "table-layout",
        "text-align",
        "text-decoration",
        "text-indent",
        "text-transform",
        "vertical-align",
        "white-space",
        "width",
        "word-break",
        "word-spacing",
        "word-wrap",
        "overflow-wrap",
    ]
)
# Anything in sanitized CSS that can load a resource or run code; the style attribute is dropped whole.
_CSS_LOADERS = ("url(", "image(", "image-set(", "expression(", "var(", "@import", "-moz-binding", "behavior")
_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
_DROPPED_ELEMENTS = re.compile(
    r"<(script|style|head|title|template|noscript|xml|object|iframe|svg|math)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL
)


@dataclass(frozen=True)
class Display:
    """HTML ready for the sandboxed frame, and how many remote images were held back."""

    html: str
    blocked_images: int


def sanitize(html: str) -> str:
    """Return ``html`` reduced to the email allowlist; applying it twice changes nothing."""
    return _clean(html, _UrlFilter)


def for_display(html: str, inline_images: Mapping[str, str], show_images: bool) -> Display:
    """Sanitize, point ``cid:`` images at their links and hold back remote images unless allowed.

    ``inline_images`` maps a Content-ID to the link that serves that image (a cid: without one is dropped).
    """
    counter = _Counter()
    display_filter = partial(_DisplayFilter, inline_images=inline_images, show_images=show_images, counter=counter)
    return Display(_clean(html, display_filter), counter.blocked)


def _clean(html: str, url_filter: Any) -> str:
    # Drop elements whose *content* is not text (scripts, style sheets, SVG) before bleach, which would
    # otherwise keep their text. This only removes input; bleach below is the real gate.
    previous = None
    while previous != html:
        previous, html = html, _DROPPED_ELEMENTS.sub("", html)
    cleaner = bleach.Cleaner(
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        protocols=ALLOWED_PROTOCOLS,
        strip=True,
        strip_comments=True,
        css_sanitizer=CSSSanitizer(allowed_css_properties=ALLOWED_CSS_PROPERTIES),
        filters=[url_filter],
    )
    return cleaner.clean(html)


def is_allowed_url(value: str) -> bool:
    """Absolute http(s), mailto and cid URLs only: relative ones would resolve against our own site."""
    value = value.strip().lower()
    return value.startswith(("http://", "https://", "mailto:", "cid:")) and not value.startswith(
        ("http:///", "https:///")
    )


def _is_loading_css(value: str) -> bool:
    compact = re.sub(r"\s+|/\*.*?\*/", "", value.lower())
    return any(marker.replace(" ", "") in compact for marker in _CSS_LOADERS) or "\\" in compact


class _UrlFilter(Filter):  # type: ignore[misc]
    """Drop relative or foreign-scheme URLs and loading CSS; open links outside the frame."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag") and token.get("data"):
                token["data"] = self.attributes(token["name"], dict(token["data"]))
            yield token

    def attributes(self, tag: str, data: dict[tuple[str | None, str], str]) -> dict[tuple[str | None, str], str]:
        for key in list(data):
            name = key[1]
            if (name in _URL_ATTRIBUTES and not is_allowed_url(data[key])) or (
                name == "style" and _is_loading_css(data[key])
            ):
                del data[key]
        if tag == "a" and (None, "href") in data and not data[(None, "href")].lower().startswith("cid:"):
            data[(None, "target")] = "_blank"
            data[(None, "rel")] = "noopener noreferrer"
        elif tag == "a":
            data.pop((None, "href"), None)
            data.pop((None, "target"), None)
            data.pop((None, "rel"), None)
        return data


class _Counter:
    blocked = 0


class _DisplayFilter(_UrlFilter):
    def __init__(self, source: Any, inline_images: Mapping[str, str], show_images: bool, counter: _Counter) -> None:
        super().__init__(source)
        self.inline_images = inline_images
        self.show_images = show_images
        self.counter = counter

    def attributes(self, tag: str, data: dict[tuple[str | None, str], str]) -> dict[tuple[str | None, str], str]:
        data = super().attributes(tag, data)
        src = data.get((None, "src"))
        if tag != "img" or src is None:
            return data
        if src.lower().startswith("cid:"):
            link = self.inline_images.get(_unquote_cid(src[4:]))
            if link is None:
                del data[(None, "src")]
            else:
                data[(None, "src")] = link
        elif not self.show_images:
            del data[(None, "src")]
            data[(None, "data-blocked")] = "remote image"
            self.counter.blocked += 1
        return data


def _unquote_cid(value: str) -> str:
    from urllib.parse import unquote

    return unquote(value).strip().strip("<>")


def text_to_html(text: str) -> markupsafe.Markup:
    """Escape plain text and turn http(s) URLs and mail addresses into links that open outside.

    Links are found in the text itself, not in its escaped form (where ``"`` or ``>`` would become part of
    a URL), and every piece is escaped on its own. The result is Markup: this is the one place that vouches
    for it, so templates need no ``|safe``.
    """
    pieces: list[str] = []
    position = 0
    for match in _LINKABLE.finditer(text):
        link = _trim(match.group(0))
        start, end = match.start(), match.start() + len(link)
        href = link if match.group("url") else f"mailto:{link}"
        pieces.append(str(markupsafe.escape(text[position:start])))
        pieces.append(
            f'<a href="{markupsafe.escape(href)}" target="_blank" rel="noopener noreferrer">'
            f"{markupsafe.escape(link)}</a>"
        )
        position = end
    pieces.append(str(markupsafe.escape(text[position:])))
    return markupsafe.Markup("".join(pieces))  # noqa: S704 - every piece escaped above


# A URL runs to the next space, quote or angle bracket; an address is the usual local@domain.tld.
_LINKABLE = re.compile(
    r"(?P<url>\bhttps?://[^\s<>\"'`]+)|(?P<mail>\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?"
_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _trim(link: str) -> str:
    """Drop what ends a sentence rather than the URL: a final full stop, or a bracket it did not open."""
    while link:
        last = link[-1]
        if last in _TRAILING or (last in _CLOSERS and link.count(last) > link.count(_CLOSERS[last])):
            link = link[:-1]
        else:
            break
    return link
