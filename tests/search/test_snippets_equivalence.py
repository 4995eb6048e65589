"""Snippets found by substring search (kb.search.snippets.match_spans) against the reference highlighter that
tokenises the whole chunk with the index analyzer: on the real articles of every desk-dev judgement, chunked as
the importer chunks them, with each query's real terms, the two snippets are the same text, and the marks differ
only where the new one marks a whole identifier phrase (``arp cache`` for the term ``arp_cache``)."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import pytest

from kb.articles.chunking import chunk_article
from kb.evaluation import query_texts
from kb.search.snippets import _merge, _window, highlight, readable, render
from kb.search.term_tokens import held_terms
from kb.search.text import TextAnalyzer
from tests.helpers import SHARED_ARTICLES

DESK_DEV = Path(__file__).resolve().parents[2] / "bench" / "data" / "desk-dev"

pytestmark = pytest.mark.skipif(not SHARED_ARTICLES.exists(), reason="needs /work/shared/data/articles")


def _reference(markdown: str, terms: set[str], analyzer: TextAnalyzer) -> str:
    text, rows = readable(markdown)
    return render(text, rows, _merge([(t.start, t.end) for t in analyzer.tokens(text) if t.text in terms]), 160)


def _plain(snippet: str) -> str:
    return snippet.replace("<mark>", "").replace("</mark>", "")


def _pairs(limit: int) -> list[tuple[str, Path]]:
    queries = query_texts(DESK_DEV / "queries.jsonl")
    with (DESK_DEV / "qrels.tsv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    return [(queries[q], SHARED_ARTICLES / p) for q, p, *_ in rows[:limit] if (SHARED_ARTICLES / p).exists()]


def test_substring_snippets_match_whole_chunk_tokenisation_on_real_articles(analyzer: TextAnalyzer) -> None:
    compared = same = 0
    for query, path in _pairs(120):
        terms = set(analyzer.analyze_query(query).terms)
        source = path.read_text(encoding="utf-8")
        body = source.split("---", 2)[2] if source.startswith("---") else source
        for chunk in chunk_article("t", body, lambda t: len(t) // 2, 320):
            new, ref = highlight(chunk.text, terms, analyzer), _reference(chunk.text, terms, analyzer)
            compared += 1
            assert _plain(new) == _plain(ref), (query, chunk.text[:80])
            if new != ref:  # only a whole phrase where the reference marks its words
                marked = [
                    m for m in re.findall(r"<mark>(.*?)</mark>", new) if m not in re.findall(r"<mark>(.*?)</mark>", ref)
                ]
                assert marked and all(" " in m for m in marked), (query, new, ref)
            else:
                same += 1
    assert compared > 1000
    assert same / compared > 0.99


def test_held_terms_are_the_query_terms_among_the_whole_texts_tokens_on_real_articles(analyzer: TextAnalyzer) -> None:
    """The coverage of the top hit (kb.search.confidence) reads held_terms over its title, headings and raw chunk
    Markdown: the same set as tokenising that whole text."""
    compared = differ = 0
    for query, path in _pairs(120):
        terms = set(analyzer.analyze_query(query).terms)
        source = path.read_text(encoding="utf-8")
        body = source.split("---", 2)[2] if source.startswith("---") else source
        for chunk in chunk_article(path.stem, body, lambda t: len(t) // 2, 320):
            text = " ".join([path.stem, *chunk.heading_path, chunk.text])
            compared += 1
            differ += held_terms(text, terms, analyzer) != terms & set(analyzer.terms(text))
    assert compared > 1000
    assert differ == 0


def test_a_single_character_term_is_marked_only_where_it_is_a_word(analyzer: TextAnalyzer) -> None:
    snippet = highlight("服务器无法访问，他说重启后就好了", {"说", "器"}, analyzer)
    assert "<mark>说</mark>" in snippet
    assert "<mark>器</mark>" not in snippet  # inside 服务器, not a token of its own


def test_ascii_terms_match_whole_words_only(analyzer: TextAnalyzer) -> None:
    snippet = highlight("Run edit on it, then restart kube-proxy.", {"it", "proxy"}, analyzer)
    assert snippet.count("<mark>") == 2
    assert "ed<mark>" not in snippet and "<mark>it</mark>," in snippet and "kube-<mark>proxy</mark>" in snippet


def _window_by_scan(text: str, spans: list[tuple[int, int]], width: int) -> tuple[int, int]:
    """The window rule written out directly (the scan the highlighter used before prefix sums)."""
    if len(text) <= width or not spans:
        return 0, min(len(text), width)
    best, best_start = -1, 0
    for s, _ in spans:
        start = max(0, min(s - width // 4, len(text) - width))
        covered = sum(min(e, start + width) - max(b, start) for b, e in spans if e > start and b < start + width)
        if covered > best:
            best, best_start = covered, start
    return best_start, best_start + width


def test_the_window_with_prefix_sums_is_the_scanned_window() -> None:
    rng = random.Random(14)
    for _ in range(2000):
        size, width = rng.randint(1, 600), rng.choice([20, 60, 160])
        raw = [(s, s + rng.randint(1, 12)) for s in sorted(rng.sample(range(size), min(size, rng.randint(0, 30))))]
        spans = _merge([(s, min(e, size)) for s, e in raw])
        assert _window("x" * size, spans, width) == _window_by_scan("x" * size, spans, width)
