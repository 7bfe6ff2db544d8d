"""A small Markdown renderer for our own docs: headings, paragraphs, lists, tables, code, emphasis, links.

It covers what docs/*.md use, escapes everything else, and makes only http(s), mailto and same-page
links clickable (the other docs are not served by the app, so links to them are shown as text).
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^(```|~~~)\s*([\w+-]*)\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)\d+[.)]\s+(.*)$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_PLACEHOLDER = "\x00{}\x00"


def slug(text: str) -> str:
    """The anchor of a heading, as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", re.sub(r"<[^>]+>", "", text).lower())
    return text.strip().replace(" ", "-")


def inline(text: str) -> Markup:
    """Render code spans, links, bold and italics; escape the rest."""
    saved: list[str] = []

    def keep(html: str) -> str:
        saved.append(html)
        return _PLACEHOLDER.format(len(saved) - 1)

    text = text.replace("\x00", "")
    text = _CODE_SPAN.sub(lambda m: keep(f"<code>{escape(m.group(2).strip())}</code>"), text)
    text = _LINK.sub(lambda m: keep(_link(m.group(1), m.group(2))), text)
    html = str(escape(text))
    html = _STRONG.sub(r"<strong>\1</strong>", html)
    html = _EMPHASIS.sub(r"<em>\1</em>", html)
    html = re.sub("\x00(\\d+)\x00", lambda m: saved[int(m.group(1))], html)
    return Markup(html)  # noqa: S704 - built from escaped text and our own tags only


def _link(label: str, href: str) -> str:
    text = str(inline(label))
    if href.startswith(("https://", "http://", "mailto:")):
        return f'<a href="{escape(href)}" rel="noopener noreferrer">{text}</a>'
    if href.startswith("#"):
        return f'<a href="#{escape(slug(href[1:]))}">{text}</a>'
    return text  # another file of the docs: not served here


def render(source: str) -> Markup:
    """Render a Markdown document to HTML."""
    lines = source.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        fence = _FENCE.match(line.strip())
        if fence:
            i = _code_block(lines, i, fence.group(1), fence.group(2), out)
            continue
        heading = _HEADING.match(line)
        if heading:
            level, text = len(heading.group(1)), heading.group(2)
            out.append(f'<h{level} id="{escape(slug(text))}">{inline(text)}</h{level}>')
            i += 1
            continue
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1].strip()):
            i = _table(lines, i, out)
            continue
        if _BULLET.match(line) or _NUMBERED.match(line):
            i = _list(lines, i, out)
            continue
        i = _paragraph(lines, i, out)
    return Markup("\n".join(out))  # noqa: S704 - every piece escaped above


def _code_block(lines: list[str], i: int, fence: str, language: str, out: list[str]) -> int:
    body: list[str] = []
    i += 1
    while i < len(lines) and lines[i].strip() != fence:
        body.append(lines[i])
        i += 1
    css = f' class="language-{escape(language)}"' if language else ""
    out.append(f"<pre><code{css}>{escape(chr(10).join(body))}</code></pre>")
    return i + 1


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)]


def _table(lines: list[str], i: int, out: list[str]) -> int:
    head = "".join(f'<th scope="col">{inline(cell)}</th>' for cell in _cells(lines[i]))
    rows: list[str] = []
    i += 2
    while i < len(lines) and lines[i].lstrip().startswith("|"):
        rows.append("<tr>" + "".join(f"<td>{inline(cell)}</td>" for cell in _cells(lines[i])) + "</tr>")
        i += 1
    out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return i


def _list(lines: list[str], i: int, out: list[str]) -> int:
    numbered = bool(_NUMBERED.match(lines[i])) and not _BULLET.match(lines[i])
    items: list[list[str]] = []
    while i < len(lines):
        line = lines[i]
        match = (_NUMBERED if numbered else _BULLET).match(line)
        if match and not match.group(1):
            items.append([match.group(2)])
        elif line.strip() and line.startswith((" ", "\t")) and items:
            items[-1].append(line.strip())  # a continuation line of the item
        else:
            break
        i += 1
    tag = "ol" if numbered else "ul"
    out.append(f"<{tag}>" + "".join(f"<li>{inline(' '.join(item))}</li>" for item in items) + f"</{tag}>")
    return i


def _paragraph(lines: list[str], i: int, out: list[str]) -> int:
    text: list[str] = []
    while i < len(lines) and lines[i].strip():
        line = lines[i]
        if text and (
            _HEADING.match(line) or _FENCE.match(line.strip()) or _BULLET.match(line) or line.lstrip().startswith("|")
        ):
            break
        text.append(line.strip())
        i += 1
    out.append(f"<p>{inline(' '.join(text))}</p>")
    return i
