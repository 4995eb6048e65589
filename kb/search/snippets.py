"""Snippets with highlighted query terms, HTML-escaped, that read as text.

A chunk is Markdown source, often with tables and HTML fragments (Microsoft Docs use ``<br />`` inside table
cells). Before highlighting, :func:`readable` turns it into plain text: HTML tags and comments are dropped (``<br>``
becomes a space), entities and backslash escapes are decoded, links keep their text and images go, emphasis,
code marks, heading, list and quote markers and fences are removed, a table's separator row is dropped and each
table row becomes one line of its non-empty cells joined by `` · ``. When the best match lies in a table row, the
snippet is that one row (cut to ``width`` around the match), never a run of cells from several rows.

The chunk text is tokenised with the same analyzer as the index; tokens whose term is one of the query's
terms are marked. Overlapping or touching matches (jieba search mode emits 数据, 数据库 and 服务器 for
数据库服务器) are merged into one contiguous ``<mark>`` span, so marks never nest or overlap (case BL-49).
The window of at most ``width`` characters holding the most matched characters is shown.

Tokenising a whole chunk (up to about 1,000 characters) for every result was the largest cost of a search
(about 1.5 ms per snippet with jieba). A long text is first searched for the query terms as plain substrings
of its normalised form; only the region around the best window of those (``width`` plus
:data:`CONTEXT_CHARS` each side, so jieba sees the words around it) is tokenised.
"""

from __future__ import annotations

import html
import re

from kb.search.text import TextAnalyzer

DEFAULT_WIDTH = 160

#: Characters tokenised on each side of the pre-selected window of a long text.
CONTEXT_CHARS = 32


#: Joins the cells of a table row in a snippet.
CELL_SEPARATOR = " · "

_BREAK = re.compile(r"(?:<br\s*/?>\s*)+(?:[-*+](?=\s|%|\w)\s*)?", re.IGNORECASE)
_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>", re.DOTALL)
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])")
_STRONG = re.compile(r"(\*\*|(?<!\w)__)(?=\S)(.+?)(?<=\S)\1(?!\w)")
_EM = re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*")
_CODE = re.compile(r"`+([^`]+)`+")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|])")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_MARKER = re.compile(r"^\s*(?:>\s*)*(?:(?:[-*+]|\d{1,3}[.)])\s+)?")
_RULE = re.compile(r"^\s*([-*_])(?:\s*\1){2,}\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-*:?\s*)+\|?\s*$")
_SPACES = re.compile(r"[ \t\u3000]+")


def _inline(text: str) -> str:
    text = _BREAK.sub(" ", text)
    text = _TAG.sub("", text)
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    text = _EM.sub(r"\1", text)
    text = _CODE.sub(r"\1", text)
    text = _ESCAPE.sub(r"\1", text)
    return html.unescape(text)


def _cells(line: str) -> list[str] | None:
    """The cells of a Markdown table row (a line with two or more unescaped ``|``), else None."""
    if len(re.findall(r"(?<!\\)\|", line)) < 2:
        return None
    cells = (_MARKER.sub("", _SPACES.sub(" ", _inline(c)).strip(), count=1) for c in re.split(r"(?<!\\)\|", line))
    return [cell for cell in cells if cell]


def readable(markdown: str) -> tuple[str, list[tuple[int, int]]]:
    """Plain text of a Markdown chunk for people (module docstring), one line per paragraph line or table row,
    and the (start, end) character offsets of the table rows in it."""
    lines: list[str] = []
    rows: list[tuple[int, int]] = []
    pos = 0
    for raw in markdown.splitlines():
        if _FENCE.match(raw) or _RULE.match(raw) or _TABLE_SEPARATOR.match(raw):
            continue
        cells = _cells(raw)
        if cells is not None:
            line = CELL_SEPARATOR.join(cells)
        else:
            heading = _HEADING.match(raw)
            line = heading.group(1) if heading else _MARKER.sub("", raw, count=1)
            line = _SPACES.sub(" ", _inline(line)).strip()
        if not line:
            continue
        if cells is not None:
            rows.append((pos, pos + len(line)))
        lines.append(line)
        pos += len(line) + 1
    return "\n".join(lines), rows


def _row_window(
    spans: list[tuple[int, int]], rows: list[tuple[int, int]], start: int, end: int, width: int
) -> tuple[int, int]:
    """The window narrowed to the one table row holding the window's first match, if it lies in a row."""
    first = next(((s, e) for s, e in spans if e > start and s < end), None)
    if first is None:
        return start, end
    for row_start, row_end in rows:
        if row_start <= first[0] < row_end:
            if row_end - row_start <= width:
                return row_start, row_end
            lo = max(row_start, min(first[0] - width // 4, row_end - width))
            return lo, lo + width
    return start, end


def highlight(text: str, terms: set[str], analyzer: TextAnalyzer, width: int = DEFAULT_WIDTH) -> str:
    """An HTML snippet of ``text`` (Markdown; at most ``width`` characters of its :func:`readable` form) with
    matches in ``<mark>``.

    Every character is escaped; the only markup in the result is ``<mark>``/``</mark>``.
    """
    text, rows = readable(text)
    spans = _token_spans(text, terms, analyzer, width)
    start, end = _window(text, spans, width)
    if rows:
        start, end = _row_window(spans, rows, start, end, width)
    out: list[str] = ["…" if start > 0 else ""]
    pos = start
    for s, e in spans:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        out.append(html.escape(text[pos:s]))
        out.append(f"<mark>{html.escape(text[s:e])}</mark>")
        pos = e
    out.append(html.escape(text[pos:end]))
    if end < len(text):
        out.append("…")
    return "".join(out).replace("\n", " ")


def _token_spans(text: str, terms: set[str], analyzer: TextAnalyzer, width: int) -> list[tuple[int, int]]:
    """Merged spans of tokens of ``text`` that are query terms: all of them for a short text; for a long
    one, those in the region around the best window of substring matches (all of them if no term occurs
    as a substring, as for a multi-word identifier whose index term joins the words with ``_``)."""
    if len(text) > width + 2 * CONTEXT_CHARS and terms:
        norm, origin = analyzer.normalize_with_offsets(text)
        found = []
        for term in terms:
            pos = norm.find(term)
            while pos >= 0:
                found.append((origin[pos], origin[pos + len(term) - 1] + 1))
                pos = norm.find(term, pos + len(term))
        if found:
            start, end = _window(text, _merge(found), width)
            lo, hi = max(0, start - CONTEXT_CHARS), min(len(text), end + CONTEXT_CHARS)
            region = [(t.start + lo, t.end + lo) for t in analyzer.tokens(text[lo:hi]) if t.text in terms]
            return _merge(region)
    return _merge([(t.start, t.end) for t in analyzer.tokens(text) if t.text in terms])


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _window(text: str, spans: list[tuple[int, int]], width: int) -> tuple[int, int]:
    if len(text) <= width or not spans:
        return 0, min(len(text), width)
    best, best_start = -1, 0
    for s, _ in spans:
        start = max(0, min(s - width // 4, len(text) - width))
        covered = sum(min(e, start + width) - max(b, start) for b, e in spans if e > start and b < start + width)
        if covered > best:
            best, best_start = covered, start
    return best_start, best_start + width
