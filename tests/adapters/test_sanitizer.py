"""The HTML sanitizer and the plain-text linkifier, on the shared XSS vectors and on what email needs."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.adapters.mime.sanitizer import for_display, is_allowed_url, sanitize, text_to_html

VECTORS = [
    line.split("\t")[0]
    for line in (Path(__file__).parent.parent / "data" / "xss_vectors.txt").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
DANGEROUS = ("<script", "javascript:", "onerror", "onload", "onclick", "onfocus", "onmouseover", "onanimationstart",
             "<svg", "<math", "<iframe", "<form", "<base", "<meta", "<style", "<link", "<object", "<input",
             "<textarea", "expression(", "url(", "data:text", "xlink", "<area", "<animate")  # fmt: skip


def test_the_vectors_file_is_complete() -> None:
    assert len(VECTORS) == 40


@pytest.mark.parametrize("payload", VECTORS)
def test_every_vector_is_defused_and_sanitizing_twice_changes_nothing(payload: str) -> None:
    once = sanitize(payload)
    assert sanitize(once) == once
    # Text (even "javascript:" or an escaped &lt;script&gt;) is harmless; only live tags can do anything.
    for tag in re.findall(r"<[^>]*>", once):
        for marker in DANGEROUS:
            assert marker not in tag.lower(), (marker, once)
    shown = for_display(payload, {}, show_images=False).html
    assert not re.search(r"\b(src|href|background|action)=\"(?!https?://|mailto:)", shown), shown
    assert 'src="http' not in shown


def test_email_html_keeps_its_formatting() -> None:
    html = (
        '<table width="600" cellpadding="4" bgcolor="#ffffff"><tr><td align="center" style="color: #333; '
        'font-family: Arial; padding: 8px">Hello <b>world</b> <font color="red">!</font></td></tr></table>'
    )
    assert sanitize(html) == (
        '<table width="600" cellpadding="4" bgcolor="#ffffff"><tbody><tr><td align="center" style="color: #333; '
        'font-family: Arial; padding: 8px;">Hello <b>world</b> <font color="red">!</font></td></tr></tbody></table>'
    )


@pytest.mark.parametrize(
    "css",
    [
        "background: url(http://evil/x.gif)",
        "background: \\75 \\72 \\6C (http://evil/x.gif)",
        "background-image: var(--x, url(http://evil.com/1.gif))",
        "background: URL( 'http://evil/x' )",
        "width: expression(alert(1))",
        "background: image-set('http://evil/x' 1x)",
    ],
)
def test_css_that_loads_anything_is_dropped_after_bleach_decodes_it(css: str) -> None:
    out = sanitize(f'<p style="{css}; color: red">x</p>')
    assert "url" not in out.lower() and "evil" not in out and "expression" not in out


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://example.com/", True),
        ("http://example.com/", True),
        ("mailto:a@example.com", True),
        ("cid:logo@x", True),
        ("/relative", False),
        ("relative/path", False),
        ("//evil.example/x", False),
        ("https:///x", False),
        ("ftp://x", False),
        ("data:image/png;base64,AA", False),
        ("javascript:alert(1)", False),
    ],
)
def test_only_absolute_http_mailto_and_cid_urls(url: str, allowed: bool) -> None:
    assert is_allowed_url(url) is allowed
    out = sanitize(f'<a href="{url}">x</a><img src="{url}">')
    assert (url in out) is allowed


def test_display_links_cid_images_and_blocks_remote_ones_until_allowed() -> None:
    html = '<img src="cid:a%40b"><img src="cid:missing"><img src="https://t.example/p.gif">'
    links = {"a@b": "/messages/1/inline/2?t=signed"}
    blocked = for_display(html, links, show_images=False)
    assert blocked.blocked_images == 1
    assert 'src="/messages/1/inline/2?t=signed"' in blocked.html
    assert "t.example" not in blocked.html and "cid:" not in blocked.html  # an unknown cid: loses its src
    assert blocked.html.count("<img") == 3
    allowed = for_display(html, links, show_images=True)
    assert allowed.blocked_images == 0 and 'src="https://t.example/p.gif"' in allowed.html


def test_links_open_outside_the_frame() -> None:
    assert sanitize('<a href="https://example.com">x</a>') == (
        '<a href="https://example.com" target="_blank" rel="noopener noreferrer">x</a>'
    )
    assert sanitize('<a href="https://example.com" target="_top">x</a>').count("_top") == 0


def test_plain_text_is_escaped_then_linkified() -> None:
    out = text_to_html("<b>hi</b> & see https://example.com/a?x=1&y=2 or write to me@example.com")
    assert out.startswith("&lt;b&gt;hi&lt;/b&gt; &amp; see ")
    assert '<a href="https://example.com/a?x=1&amp;y=2" target="_blank" rel="noopener noreferrer">' in out
    assert '<a href="mailto:me@example.com"' in out
    vector = 'Visit: http://google.com?"onmouseover="alert(\'XSS\')"'
    linked = text_to_html(vector)
    assert " onmouseover=" not in linked and '"onmouseover' not in linked
    assert text_to_html("javascript:alert(1)") == "javascript:alert(1)"


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ('"https://example.com/q"', "https://example.com/q"),
        ("<https://example.org/x>", "https://example.org/x"),
        ("'https://example.org/y'", "https://example.org/y"),
        ("see https://example.com/a.", "https://example.com/a"),
        ("(https://en.wikipedia.org/wiki/A_(b))", "https://en.wikipedia.org/wiki/A_(b)"),
        ("Bob <bob@example.com>", "mailto:bob@example.com"),
    ],
)
def test_links_next_to_quotes_and_brackets_are_clean(text: str, href: str) -> None:
    out = str(text_to_html(text))
    assert f'<a href="{html.escape(href, quote=True)}"' in out, out
    assert out.count("<a ") == 1


@given(st.lists(st.sampled_from([*"ab <>\"'&.:/()@x", "https://", "mailto:", "e.com"]), max_size=40).map("".join))
def test_linkified_text_reads_as_the_original(text: str) -> None:
    out = str(text_to_html(text))
    # Only our own anchors are markup; taking them away and unescaping gives the text back.
    bare = re.sub(r"</?a\b[^>]*>", "", out)
    assert html.unescape(bare) == text
    assert "<" not in bare and ">" not in bare
