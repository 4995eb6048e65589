"""Snippets with highlighted query terms, HTML-escaped.

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

from kb.search.text import TextAnalyzer

DEFAULT_WIDTH = 160

#: Characters tokenised on each side of the pre-selected window of a long text.
CONTEXT_CHARS = 32


def highlight(text: str, terms: set[str], analyzer: TextAnalyzer, width: int = DEFAULT_WIDTH) -> str:
    """An HTML snippet of ``text`` (at most ``width`` characters of it) with matches in ``<mark>``.

    Every character of ``text`` is escaped; the only markup in the result is ``<mark>``/``</mark>``.
    """
    spans = _token_spans(text, terms, analyzer, width)
    start, end = _window(text, spans, width)
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
