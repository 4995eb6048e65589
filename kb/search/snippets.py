"""Snippets with highlighted query terms, HTML-escaped.

The chunk text is tokenised with the same analyzer as the index; tokens whose term is one of the query's
terms are marked. Overlapping or touching matches (jieba search mode emits 数据, 数据库 and 服务器 for
数据库服务器) are merged into one contiguous ``<mark>`` span, so marks never nest or overlap (case BL-49).
The window of at most ``width`` characters holding the most matched characters is shown.
"""

from __future__ import annotations

import html

from kb.search.text import TextAnalyzer

DEFAULT_WIDTH = 160


def highlight(text: str, terms: set[str], analyzer: TextAnalyzer, width: int = DEFAULT_WIDTH) -> str:
    """An HTML snippet of ``text`` (at most ``width`` characters of it) with matches in ``<mark>``.

    Every character of ``text`` is escaped; the only markup in the result is ``<mark>``/``</mark>``.
    """
    spans = _merge([(t.start, t.end) for t in analyzer.tokens(text) if t.text in terms])
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
