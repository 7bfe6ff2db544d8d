"""The plain-text alternative generated from an HTML-only body."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.adapters.mime.htmltext import html_to_text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>One</p><p>Two</p>", "One\n\nTwo\n"),
        ("<h1>Title</h1>Body", "Title\n\nBody\n"),
        ("a<br>b<br/><br>c", "a\nb\n\nc\n"),
        ("<div>a</div><div><div>b</div></div>c", "a\nb\nc\n"),
        ("<ul><li>one</li><li>two</li></ul>after", "- one\n- two\n\nafter\n"),
        ("<table><tr><td>1</td><td>2</td></tr><tr><th>3</th><td>4</td></tr></table>", "1 2\n3 4\n"),
        ("<p>  lots \n of\t  space  </p>", "lots of space\n"),
        ("<pre>  keep\n    this</pre>", "  keep\n    this\n"),
        ("&lt;tag&gt; &amp; &quot;q&quot; &#8364; &euro; a&nbsp;b", '<tag> & "q" € € a b\n'),
        ("<a href='https://x.test/a?b=1&amp;c=2'>the report</a>", "the report (https://x.test/a?b=1&c=2)\n"),
        ("<a href='https://x.test'>https://x.test</a>", "https://x.test\n"),
        ("<a href='mailto:a@x.test'>a@x.test</a>", "a@x.test\n"),
        ("<a href='mailto:a@x.test'>Write</a>", "Write (mailto:a@x.test)\n"),
        ("<a href='https://x.test'><img src='cid:logo'></a>", "https://x.test\n"),
        ("<a href='javascript:alert(1)'>js</a> <a href='#top'>top</a> <a href='/rel'>rel</a>", "js top rel\n"),
        ("<img alt='Logo' src='x'>text", "[Logo] text\n"),
        ("<script>alert(1)</script><style>p{}</style>visible<noscript>no</noscript>", "visible\n"),
        ("<head><title>T</title><meta charset=utf-8></head><body>B</body>", "B\n"),
        ("<script>if (a < b) { x = '</p>' }</script>ok", "ok\n"),
        ("<!-- comment -->x<![CDATA[y]]>", "x\n"),
        ("<p>unclosed <b>bold", "unclosed bold\n"),
        ("<script>never closed", ""),
        ("", ""),
        ("<img src='x'>", ""),
        ("a<hr>b", "a\n\n--------------------\n\nb\n"),
    ],
)
def test_html_becomes_readable_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


@given(st.text(alphabet=st.sampled_from(list("<>/ab &;#pscriptlyeh=\"'\n")), max_size=200))
def test_any_input_gives_text_without_tags_of_hidden_elements(html: str) -> None:
    text = html_to_text(html)
    assert isinstance(text, str)
    assert text == "" or (text.endswith("\n") and not text.startswith("\n"))
