"""Snippets with highlighted query terms, HTML-escaped, that read as text.

A chunk is Markdown source, often with tables and HTML fragments (Microsoft Docs use ``<br />`` inside table
cells). Before highlighting, :func:`readable` turns it into plain text: HTML tags and comments are dropped (``<br>``
becomes a space), entities and backslash escapes are decoded, links keep their text and images go, emphasis,
code marks, heading, list and quote markers and fences are removed, a table's separator row is dropped and each
table row becomes one line of its non-empty cells joined by `` · ``. When the best match lies in a table row, the
snippet is that one row (cut to ``width`` around the match), never a run of cells from several rows.

Marks are the analyzer's own tokens whose term is a query term, as if the whole text were tokenised, without
tokenising it: each term is first looked up as a substring of the text's normalised form (``str.find``; a term
that starts or ends with a letter or digit must not touch another one there, as jieba never cuts inside a run
of them). Only the blocks holding such a candidate (the run between white space and punctuation, where jieba
and the identifier patterns start afresh, so a block has the same tokens alone as in the whole text) are
tokenised, and their tokens are remembered per block (:data:`BLOCK_CACHE_SIZE`). A candidate that is not a
token is not marked (器 inside 服务器). A dictionary phrase term with spaces (``arp_cache`` for ``arp cache``)
is marked whole where it occurs. ``tests/search/test_snippets_equivalence.py`` compares this with tokenising
whole chunks, on real articles and queries. Overlapping or touching marks (数据, 数据库 and 服务器 in
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

from kb.search.text import TextAnalyzer

DEFAULT_WIDTH = 160

#: Chunk texts whose :func:`readable` form is remembered (the same best chunks recur across queries).
READABLE_CACHE_SIZE = 4096

#: Normalised blocks whose tokens :func:`match_spans` remembers (a few per snippet, tens of characters each).
BLOCK_CACHE_SIZE = 32768

# Where jieba starts a new block (it segments runs of [\u4e00-\u9fd5a-z0-9+#&._%-] on their own) that no
# identifier pattern crosses: white space and punctuation other than the . - _ : / \\ = of identifiers.
_SEPARATOR = re.compile(r"[\s,;!?()\[\]{}<>\"'|`~*^$@、。“”‘’《》【】「」…·]")

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


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


def highlight(text: str, terms: set[str], analyzer: TextAnalyzer, width: int = DEFAULT_WIDTH) -> str:
    """An HTML snippet of ``text`` (Markdown; at most ``width`` characters of its :func:`readable` form) with
    matches in ``<mark>``.

    Every character is escaped; the only markup in the result is ``<mark>``/``</mark>``.
    """
    plain, rows = _readable_cached(text)
    return render(plain, rows, match_spans(plain, terms, analyzer), width)


def render(text: str, rows: Sequence[tuple[int, int]], spans: list[tuple[int, int]], width: int) -> str:
    """The HTML snippet of plain ``text`` (a :func:`readable` form, its table ``rows``) for the sorted disjoint
    match ``spans``: the best window of at most ``width`` characters (narrowed to one table row when its first
    match lies in one), matches in ``<mark>``, ``…`` where text was cut, every character escaped."""
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


def match_spans(text: str, terms: set[str], analyzer: TextAnalyzer) -> list[tuple[int, int]]:
    """Merged ``(start, end)`` character spans of ``text`` where a term of ``terms`` (normalised, as the
    analyzer's tokens hold them) occurs, sorted and disjoint (module docstring).

    Args:
        text: plain text (a :func:`readable` form); offsets are into it.
        terms: query terms, normalised by ``analyzer``.
        analyzer: gives the normalised form of ``text`` and its offset map (remembered per text).
    """
    return _merge([(s, e) for _, s, e in _term_tokens(text, terms, analyzer)])


def held_terms(text: str, terms: set[str], analyzer: TextAnalyzer) -> set[str]:
    """The terms of ``terms`` that are tokens of ``text``: ``terms & set(analyzer.terms(text))``, found the way
    :func:`match_spans` finds marks (substring candidates, then only their blocks tokenised), so a long text is
    not tokenised whole for a few query terms (the confidence coverage of the top hit, :mod:`kb.search.confidence`)."""
    return {term for term, _, _ in _term_tokens(text, terms, analyzer)}


def _term_tokens(text: str, terms: set[str], analyzer: TextAnalyzer) -> list[tuple[str, int, int]]:
    """``(term, start, end)`` of every token of ``text`` whose term is in ``terms`` (offsets into ``text``),
    unordered, possibly overlapping (module docstring)."""
    if not terms or not text:
        return []
    norm, origin = analyzer.normalize_with_offsets(text)
    size = len(norm)
    found: list[tuple[str, int, int]] = []
    blocks: set[tuple[int, int]] = set()
    for term in terms:
        if not term:
            continue
        alnum_start, alnum_end = term[0] in _ALNUM, term[-1] in _ALNUM
        phrase = "_" in term.strip("_")
        for needle in _variants(term):
            pos = norm.find(needle)
            while pos >= 0:
                end = pos + len(needle)
                if not (alnum_start and pos > 0 and norm[pos - 1] in _ALNUM) and not (
                    alnum_end and end < size and norm[end] in _ALNUM
                ):
                    if phrase and needle != term:  # a dictionary phrase with spaces: the analyzer emits it whole
                        found.append((term, origin[pos], origin[end - 1] + 1))
                    else:
                        blocks.add(_block(norm, pos, end))
                pos = norm.find(needle, pos + 1)
    for lo, hi in blocks:
        tokens = _block_tokens(analyzer, norm[lo:hi])
        found.extend((t, origin[lo + s], origin[lo + e - 1] + 1) for t, s, e in tokens if t in terms)
    return found


def _block(norm: str, start: int, end: int) -> tuple[int, int]:
    """The block of ``norm`` around ``norm[start:end]``: the run between separators (white space, and
    punctuation jieba and the identifier patterns both cut at), whose tokens are those of the whole text."""
    cuts = _separators(norm)
    i = bisect.bisect_left(cuts, start)
    lo = cuts[i - 1] + 1 if i > 0 else 0
    j = bisect.bisect_left(cuts, end, i)
    return lo, cuts[j] if j < len(cuts) else len(norm)


@functools.lru_cache(maxsize=READABLE_CACHE_SIZE)
def _separators(norm: str) -> tuple[int, ...]:
    """Offsets of the separators of a normalised text, ascending."""
    return tuple(m.start() for m in _SEPARATOR.finditer(norm))


@functools.lru_cache(maxsize=BLOCK_CACHE_SIZE)
def _block_tokens(analyzer: TextAnalyzer, block: str) -> tuple[tuple[str, int, int], ...]:
    """``(term, start, end)`` of the analyzer's tokens of one normalised block (offsets into it)."""
    return tuple((t.text, t.start, t.end) for t in analyzer.tokens(block, remember=False))


@functools.lru_cache(maxsize=4096)
def _variants(term: str) -> tuple[str, ...]:
    """The strings a term stands for in normalised text: itself, and with spaces for the ``_`` an identifier
    term puts between words (``active_directory`` for ``Active Directory``)."""
    stripped = term.strip("_")
    if "_" in stripped:
        return (term, term.replace("_", " "))
    return (term,)


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
