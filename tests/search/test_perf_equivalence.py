"""The per-query fast path ranks exactly as the path it replaced, and its caches never serve a stale article.

``_score_before`` is the BM25F scorer as it was before the per-commit term cache (issue 14), kept here as the
reference: the new scorer must return the same chunks in the same order with bit-identical scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kb.articles.content import ArticleContent
from kb.search import bm25_scorer, bm25_segments
from kb.search.bm25 import FIELD_BOOSTS, BM25Hit, BM25Index
from kb.search.results import SearchRequest
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import BUNDLED
from tests.search.test_bm25 import QUERIES, _documents, _query_terms


def _score_before(
    searcher: Any, leaves: Sequence[tuple[Any, int]], terms: Mapping[str, float], limit: int
) -> list[tuple[int, int, float]]:
    B, K1 = bm25_scorer.B, bm25_scorer.K1
    total = sum(seg.doc_count_all for seg, _ in leaves)
    avg = {f: searcher.avg_field_length(f) or 1.0 for f in FIELD_BOOSTS}
    scores = np.zeros(total, dtype=np.float64)
    for term, query_weight in terms.items():
        pseudo_tf = np.zeros(total, dtype=np.float64)
        for fieldname, weight in FIELD_BOOSTS.items():
            for seg, offset in leaves:
                ids, tf = bm25_segments.postings(seg, fieldname, term)
                if len(ids):
                    norm = (1 - B) + B * seg.lengths[fieldname][ids] / avg[fieldname]
                    pseudo_tf[ids + offset] += weight * tf / norm
        df = int(np.count_nonzero(pseudo_tf))
        if not df:
            continue
        idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
        scores += query_weight * idf * pseudo_tf / (K1 + pseudo_tf)
    article_ids = np.concatenate([seg.article_ids for seg, _ in leaves])
    ords = np.concatenate([seg.ords for seg, _ in leaves])
    scores[article_ids < 0] = 0.0
    hits = np.flatnonzero(scores > 0)
    if len(hits) > limit:
        kth = np.partition(scores[hits], len(hits) - limit)[len(hits) - limit]
        hits = hits[scores[hits] >= kth]
    hits = hits[np.lexsort((hits, -scores[hits]))][:limit]
    return [(int(article_ids[i]), int(ords[i]), float(scores[i])) for i in hits]


def _two_segments_with_deletions(tmp_path: Path, analyzer: TextAnalyzer) -> BM25Index:
    """A BM25 index of real articles in two segments (k8s, then RDS) with three articles deleted, unmerged."""
    index = BM25Index.create(tmp_path / "bm25")
    index.replace_articles(_documents(analyzer, BUNDLED / "k8s-troubleshooting", 1), ())
    index.replace_articles(_documents(analyzer, BUNDLED / "windows-troubleshooting/WindowsServerDocs/remote", 1000), ())
    index.replace_articles([], [1, 2, 1000])  # deletions not yet merged away
    return index


def test_cached_scorer_ranks_exactly_as_before_over_segments_and_deletions(
    tmp_path: Path, analyzer: TextAnalyzer
) -> None:
    index = _two_segments_with_deletions(tmp_path, analyzer)
    try:
        compared = 0
        for round_ in range(2):  # the second round is served from the term cache
            for query in QUERIES:
                terms = _query_terms(analyzer, query)
                with index._search_lock:
                    searcher = index._get_searcher()
                    view = index._view()
                    expected = _score_before(searcher, view.leaves, terms, 100)
                hits = index.search(terms, 100)
                assert [(h.article_id, h.ord, h.score) for h in hits] == expected, (round_, query)
                for term in terms:
                    assert index.holds(term) == bool(index.search({term: 1.0}, 1))
                compared += len(hits)
        assert compared > 1000
    finally:
        index.close()


def test_idf_from_cached_postings_equals_whoosh_over_segments_and_deletions(
    tmp_path: Path, analyzer: TextAnalyzer
) -> None:
    index = _two_segments_with_deletions(tmp_path, analyzer)
    try:
        terms = sorted({t for q in QUERIES for t in _query_terms(analyzer, q)} | {"没有这个词"})
        with index._search_lock:
            searcher = index._get_searcher()
            expected = {t: float(searcher.idf("body", t)) if searcher.doc_frequency("body", t) else 0.0 for t in terms}
        got = index.idf(terms)
        assert {t: (got[t], expected[t]) for t in terms if got[t] != expected[t]} == {}
        assert expected["没有这个词"] == 0.0 and sum(v > 0 for v in expected.values()) > 10
    finally:
        index.close()


def test_postings_through_the_remembered_term_lists_are_whooshs_postings(
    tmp_path: Path, analyzer: TextAnalyzer
) -> None:
    """A segment keeps the term lists of the small fields (bm25_segments.LEXICON_FIELDS) to skip look-ups of absent
    terms: every (field, term) must still give exactly the postings whoosh reads, present or absent."""
    k8s = _documents(analyzer, BUNDLED / "k8s-troubleshooting", 1)
    rds = _documents(analyzer, BUNDLED / "windows-troubleshooting/WindowsServerDocs/remote", 1000)
    index = BM25Index.create(tmp_path / "bm25")
    try:
        index.replace_articles(k8s, ())
        index.replace_articles(rds, ())
        index.replace_articles([], [1000])
        terms = sorted(
            {t for q in QUERIES for t in _query_terms(analyzer, q)} | {"没有这个词", "kube-proxy", "0x80070005"}
        )
        present = 0
        with index._search_lock:
            view = index._view()
            for seg, _ in view.leaves:
                for fieldname in FIELD_BOOSTS:
                    for term in terms:
                        ids, tf = bm25_segments.postings(seg, fieldname, term)
                        want_ids, want_tf = bm25_segments.read_postings(seg.reader, fieldname, term)
                        assert np.array_equal(ids, want_ids) and np.array_equal(tf, want_tf), (fieldname, term)
                        present += bool(len(ids)) and fieldname in bm25_segments.LEXICON_FIELDS
        assert present > 5
    finally:
        index.close()


def test_summary_and_passage_caches_follow_every_write(kb: KnowledgeBase) -> None:
    body = "打印机 脱机 状态 无法 打印,重启 Print Spooler 服务后 恢复。"
    first = kb.writer.create(ArticleContent(title="打印机脱机", body=body), "tester").article
    assert first is not None
    request = SearchRequest("打印机 脱机", mode="bm25")
    hit = kb.engine.search(request).results[0]
    assert (hit.article_id, hit.title, hit.version) == (first.id, "打印机脱机", 1)

    new_body = "打印机 脱机:检查 网线 与 IP 地址,再 重启 Print Spooler。"
    kb.writer.update(first.id, ArticleContent(title="打印机显示脱机", body=new_body), "tester")
    hit = kb.engine.search(request).results[0]
    assert (hit.title, hit.version) == ("打印机显示脱机", 2)
    assert "网线" in hit.snippet

    kb.writer.set_status(first.id, "retired", "tester")
    assert [h.article_id for h in kb.engine.search(request).results] == []


def test_terms_warmed_by_reopen_equal_a_cold_computation(tmp_path: Path, analyzer: TextAnalyzer) -> None:
    """BM25Index.reopen computes the terms asked under the previous commit on the new view (bm25.WARM_TERMS): the
    warmed pseudo-frequencies are exactly what a view built from nothing computes, and the answers too."""
    index = _two_segments_with_deletions(tmp_path, analyzer)
    try:
        terms = _query_terms(analyzer, QUERIES[0])
        index.search(terms, 100)  # asked under this commit
        index.replace_articles(_documents(analyzer, BUNDLED / "k8s-troubleshooting", 1)[:5], [3, 1001])
        with index._search_lock:
            view = index._view()
            warmed = {t: view.terms[(t, tuple(FIELD_BOOSTS.items()))] for t in terms}  # KeyError: not warmed
            cold, _ = bm25_scorer.SegmentCache().view(index._get_searcher())
        for t, (ids, tf) in warmed.items():
            want_ids, want_tf = bm25_scorer.term_frequencies(cold, t, FIELD_BOOSTS)
            assert np.array_equal(ids, want_ids) and np.array_equal(tf, want_tf), t
        assert index.search(terms, 100) == [
            BM25Hit(a, o, s) for a, o, s in bm25_scorer.score(cold, terms, FIELD_BOOSTS, 100)
        ]
    finally:
        index.close()


def test_reopen_warms_only_terms_searches_asked_since_the_previous_commit(
    tmp_path: Path, analyzer: TextAnalyzer
) -> None:
    """Terms a warm-up computed and no search asked since are not carried to the next commit (each commit of a bulk
    import would otherwise recompute up to bm25.WARM_TERMS stale terms for nobody)."""
    index = _two_segments_with_deletions(tmp_path, analyzer)
    try:
        terms = _query_terms(analyzer, QUERIES[0])
        index.search(terms, 100)
        documents = _documents(analyzer, BUNDLED / "k8s-troubleshooting", 1)
        index.replace_articles(documents[:5], [3, 1001])
        with index._search_lock:
            assert index._view().terms and not index._view().asked  # warmed, not asked
        index.replace_articles(documents[5:8], [])
        with index._search_lock:
            assert not index._view().terms  # nothing asked under the previous commit: nothing warmed
        index.search(terms, 100)
        with index._search_lock:
            assert {key[0] for key in index._view().asked} == set(terms)
    finally:
        index.close()


def test_a_term_recomputed_on_later_views_equals_its_first_sight(tmp_path: Path, analyzer: TextAnalyzer) -> None:
    """A term's first sight on a segment is computed field by field; the second view of the segment builds its
    across-fields entry (bm25_segments.term_across) and the third reuses it: the same arrays, bit for bit."""
    index = _two_segments_with_deletions(tmp_path, analyzer)
    try:
        terms = [t for q in QUERIES for t in _query_terms(analyzer, q)]
        with index._search_lock:
            cache = bm25_scorer.SegmentCache()
            views = [cache.view(index._get_searcher())[0]]
            for _ in range(2):
                views.append(cache.view(index._get_searcher(), views[-1])[0])
            seen = [{t: bm25_scorer.term_frequencies(view, t, FIELD_BOOSTS) for t in terms} for view in views]
        assert any(seg.across for seg, _ in views[-1].leaves)  # the later views did take the other path
        for t in terms:
            (ids0, tf0), *later = (answers[t] for answers in seen)
            for ids, tf in later:
                assert np.array_equal(ids, ids0) and np.array_equal(tf, tf0), t
    finally:
        index.close()
