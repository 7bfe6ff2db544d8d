"""The Markdown renderer of the help pages: what docs/ uses, everything else escaped."""

from __future__ import annotations

from webapp.views.help.markdown import render, slug


def test_markdown_subset() -> None:
    html = str(render(
        "# Title *one*\n\nText with `a <b>` and **bold** and *em*,\nwrapped.\n\n"
        "| a | b |\n|---|:-:|\n| `x\\|y` | [link](https://e.test/?a=1&b=2) |\n\n"
        "- one\n  more\n- two [other doc](mail.md#x)\n\n1. first\n2. second\n\n"
        "```python\nif a < b:\n    print('<hi>')\n```\n"
    ))  # fmt: skip
    assert '<h1 id="title-one">Title <em>one</em></h1>' in html
    assert "<p>Text with <code>a &lt;b&gt;</code> and <strong>bold</strong> and <em>em</em>, wrapped.</p>" in html
    assert '<th scope="col">a</th>' in html and "<td><code>x|y</code></td>" in html
    assert '<a href="https://e.test/?a=1&amp;b=2" rel="noopener noreferrer">link</a>' in html
    assert "<ul><li>one more</li><li>two other doc</li></ul>" in html  # other docs are not served: text
    assert "<ol><li>first</li><li>second</li></ol>" in html
    assert '<pre><code class="language-python">if a &lt; b:\n    print(&#39;&lt;hi&gt;&#39;)</code></pre>' in html


def test_nothing_gets_through_unescaped() -> None:
    html = str(render(
        "<script>alert(1)</script>\n\n[x](javascript:alert(1)) [y](#Some Anchor) [z](\"onmouseover=alert(1))\n\n"
        "**<img src=x onerror=alert(1)>** `\x00` \x000\x00\n\n```\"><script>\n```\n"
    ))  # fmt: skip
    assert "<script" not in html and "<img" not in html and "javascript:" not in html
    assert "&lt;script&gt;" in html and 'href="#' not in html.split("[y]")[0]
    assert "onmouseover" not in html.replace("&#34;onmouseover", "")
    assert slug("Delivery: at least once, recorded exactly once") == "delivery-at-least-once-recorded-exactly-once"
