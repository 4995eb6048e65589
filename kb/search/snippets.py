"""Snippets with highlighted query terms, HTML-escaped, that read as text.

A chunk is Markdown source, often with tables and HTML fragments (Microsoft Docs use ``<br />`` inside table
cells). Before highlighting, :func:`readable` turns it into plain text: HTML tags and comments are dropped (``<br>``
becomes a space), entities and backslash escapes are decoded, links keep their text and images go, emphasis,
code marks, heading, list and quote markers and fences are removed, a table's separator row is dropped and each
table row becomes one line of its non-empty cells joined by `` · ``. When the best match lies in a table row, the
snippet is that one row (cut to ``width`` around the match), never a run of cells from several rows.

Marks are the analyzer's own tokens whose term is a query term, as if the whole text were tokenised, found
without tokenising it whole (:mod:`kb.search.term_tokens`: substring candidates, then only the blocks of text
holding one tokenised, their tokens remembered). Overlapping or touching marks (数据, 数据库 and 服务器 in
数据库服务器) are merged into one contiguous ``<mark>`` span, so marks never nest or overlap (case BL-49). The
window of at most ``width`` characters holding the most marked characters is shown.

Tokenising the chunk (or a region of it) for every result was the largest cost of a snippet (about 1.5 ms per
chunk with jieba on first sight), and scoring windows over the tokens in Python about half of a warm BM25
query; now a warm snippet costs a few substring searches and cache look-ups, the window is chosen with prefix
sums, and the :func:`readable` form of the last :data:`READABLE_CACHE_SIZE` chunks is remembered.
"""

from __future__ import annotations

import bisect
import functools
import html
import re
from collections.abc import Sequence

from kb.search.term_tokens import StoredBlocks, term_tokens
from kb.search.text import TextAnalyzer

DEFAULT_WIDTH = 160

#: Chunk texts whose :func:`readable` form is remembered (the same best chunks recur across queries).
READABLE_CACHE_SIZE = 4096

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
_PIPE = re.compile(r"(?<!\\)\|")
#: A character every inline pattern of :func:`_inline` (and an HTML entity) needs: a line without one is as it is.
_INLINE_MARKUP = re.compile(r"[<!\[*_`\\&]")

# Where a mark opens and closes while a snippet is escaped in one piece (:func:`render`): control characters that
# html.escape leaves alone, replaced by the tags after escaping.
_OPEN, _CLOSE = "\x00", "\x01"


def _inline(text: str) -> str:
    if not _INLINE_MARKUP.search(text):  # no pattern below can match, and html.unescape needs a "&"
        return text
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
    if line.count("|") < 2 or len(_PIPE.findall(line)) < 2:
        return None
    cells = (_MARKER.sub("", _SPACES.sub(" ", _inline(c)).strip(), count=1) for c in _PIPE.split(line))
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


@functools.lru_cache(maxsize=READABLE_CACHE_SIZE)
def _readable_cached(markdown: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    text, rows = readable(markdown)
    return text, tuple(rows)


def _row_window(
    spans: list[tuple[int, int]], rows: Sequence[tuple[int, int]], start: int, end: int, width: int
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


def highlight(
    text: str, terms: set[str], analyzer: TextAnalyzer, width: int = DEFAULT_WIDTH, stored: StoredBlocks | None = None
) -> str:
    """An HTML snippet of ``text`` (Markdown; at most ``width`` characters of its :func:`readable` form) with
    matches in ``<mark>``; blocks' tokens read from ``stored`` when it holds them (:mod:`kb.search.block_store`).

    Every character is escaped; the only markup in the result is ``<mark>``/``</mark>``.
    """
    plain, rows = _readable_cached(text)
    return render(plain, rows, match_spans(plain, terms, analyzer, stored), width)


def render(text: str, rows: Sequence[tuple[int, int]], spans: list[tuple[int, int]], width: int) -> str:
    """The HTML snippet of plain ``text`` (a :func:`readable` form, its table ``rows``) for the sorted disjoint
    match ``spans``: the best window of at most ``width`` characters (narrowed to one table row when its first
    match lies in one), matches in ``<mark>``, ``…`` where text was cut, every character escaped."""
    start, end = _window(text, spans, width)
    if rows:
        start, end = _row_window(spans, rows, start, end, width)
    if _OPEN in text or _CLOSE in text:  # the placeholders below would be taken for marks: one escape per piece
        return _render_pieces(text, spans, start, end)
    pieces: list[str] = []
    pos = start
    for s, e in spans:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        pieces += (text[pos:s], _OPEN, text[s:e], _CLOSE)
        pos = e
    pieces.append(text[pos:end])
    body = html.escape("".join(pieces)).replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>")
    return ("…" if start > 0 else "") + body.replace("\n", " ") + ("…" if end < len(text) else "")


def _render_pieces(text: str, spans: list[tuple[int, int]], start: int, end: int) -> str:
    """:func:`render`'s snippet of the window ``start:end`` with every piece escaped on its own (for a text holding
    :data:`_OPEN` or :data:`_CLOSE`)."""
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


def match_spans(
    text: str, terms: set[str], analyzer: TextAnalyzer, stored: StoredBlocks | None = None
) -> list[tuple[int, int]]:
    """Merged ``(start, end)`` character spans of ``text`` where a term of ``terms`` (normalised, as the
    analyzer's tokens hold them) is a token, sorted and disjoint (:mod:`kb.search.term_tokens`).

    Args:
        text: plain text (a :func:`readable` form); offsets are into it.
        terms: query terms, normalised by ``analyzer``.
        analyzer: gives the normalised form of ``text`` and its offset map (remembered per text).
        stored: the blocks' tokens stored at index time (:mod:`kb.search.block_store`); None: tokenise them.
    """
    return _merge([(s, e) for _, s, e in term_tokens(text, terms, analyzer, stored)])


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _window(text: str, spans: list[tuple[int, int]], width: int) -> tuple[int, int]:
    """The ``width``-character window, starting a quarter width before a span, that covers the most matched
    characters of the sorted disjoint ``spans`` (the first such window on a tie); the text's start when it is
    short or has no span. O(n log n) in the number of spans, with prefix sums of their lengths."""
    if len(text) <= width or not spans:
        return 0, min(len(text), width)
    starts = [s for s, _ in spans]
    ends = [e for _, e in spans]
    prefix = [0]
    for s, e in spans:
        prefix.append(prefix[-1] + e - s)
    best, best_start = -1, 0
    last = len(text) - width
    for s in starts:
        start = max(0, min(s - width // 4, last))
        stop = start + width
        lo = bisect.bisect_right(ends, start)  # first span ending after the window start
        hi = bisect.bisect_left(starts, stop)  # spans from lo to hi - 1 begin before the window end
        covered = prefix[hi] - prefix[lo] - max(0, start - starts[lo]) - max(0, ends[hi - 1] - stop) if lo < hi else 0
        if covered > best:
            best, best_start = covered, start
    return best_start, best_start + width
