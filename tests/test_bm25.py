"""The numpy BM25F scorer against whoosh's own scoring (the oracle), on the bundled real articles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb.articles import ArticleContent
from kb.config import Settings
from kb.search.bm25 import BM25Hit
from kb.search.embedding import HashingEmbedder
from kb.search.hybrid import EXPANSION_WEIGHT
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from kb.store import ArticleFilter
from tests.conftest import BUNDLED, SHARED

_DEV_QUERIES = (SHARED / "data/eval/tidb-faq-dev/queries.jsonl").read_text(encoding="utf-8").splitlines()
QUERIES = [json.loads(line)["text"] for line in _DEV_QUERIES[:40]] + [
    "远程桌面 没有可用的许可证",
    "Pod 一直 CrashLoopBackOff 怎么办",
    "0x80070005 拒绝访问",
    "kubectl get pods --all-namespaces",
    "DNS 解析失败",
    "打印机 脱机",
]


def _assert_same(numpy_hits: list[BM25Hit], whoosh_hits: list[BM25Hit]) -> None:
    whoosh_scores = {(h.article_id, h.ord): h.score for h in whoosh_hits}
    numpy_scores = {(h.article_id, h.ord): h.score for h in numpy_hits}
    assert numpy_scores.keys() == whoosh_scores.keys()
    for key, score in whoosh_scores.items():
        assert numpy_scores[key] == pytest.approx(score, rel=1e-9)
    assert [h.score for h in numpy_hits] == sorted((h.score for h in numpy_hits), reverse=True)


def _compare_all(kb: KnowledgeBase, limit: int) -> int:
    bm25 = kb.index.generation.bm25
    compared = 0
    for query in QUERIES:
        analysis = kb.index.analyzer.analyze_query(query)
        assert kb.engine.synonyms is not None
        expansions = kb.engine.synonyms.expander().expand(analysis.normalized, set(analysis.terms))
        terms = {t: 1.0 for t in analysis.terms} | {t: EXPANSION_WEIGHT for t in expansions}
        numpy_hits = bm25.search(terms, limit)
        # Scores exactly tied at the cut-off may differ in which one is kept: compare on a limit whoosh and numpy
        # agree is unambiguous, i.e. all matches.
        _assert_same(numpy_hits, bm25.search_with_whoosh(terms, limit))
        compared += len(numpy_hits)
    return compared


def test_numpy_scores_equal_whoosh_over_segments_and_deletions(tmp_path: Path, analyzer: TextAnalyzer) -> None:
    kb = KnowledgeBase(
        Settings(data_dir=tmp_path, embedding_model="hash"), embedder=HashingEmbedder(), analyzer=analyzer
    ).open()
    try:
        kb.import_paths([BUNDLED / "k8s-troubleshooting"], "tester")
        kb.import_paths([BUNDLED / "windows-troubleshooting"], "tester")  # a second segment
        assert _compare_all(kb, 10_000) > 500
        # Deletions inside existing segments and a changed article in a new one.
        articles, _ = kb.store.list_articles(ArticleFilter(), limit=6)
        for article in articles[:3]:
            kb.delete_article(article.id, "tester")
        changed = articles[3]
        body = changed.body + "\n\n## 补充\n\nDNS 解析失败时先检查 CoreDNS。"
        kb.update_article(changed.id, ArticleContent(title=changed.title, body=body), "tester")
        assert _compare_all(kb, 10_000) > 500
        hits = kb.index.generation.bm25.search({"coredns": 1.0}, 10_000)
        assert {h.article_id for h in hits}.isdisjoint({a.id for a in articles[:3]})
        assert changed.id in {h.article_id for h in hits}
    finally:
        kb.close()


def test_limit_keeps_the_best_scores(bundled_kb: KnowledgeBase) -> None:
    bm25 = bundled_kb.index.generation.bm25
    terms = {t: 1.0 for t in bundled_kb.index.analyzer.analyze_query("远程桌面 没有可用的许可证").terms}
    everything = bm25.search(terms, 10_000)
    top = bm25.search(terms, 5)
    assert len(everything) > 5
    assert [h.score for h in top] == [h.score for h in everything[:5]]
    assert bm25.search(terms, 0) == [] and bm25.search({}, 10) == []
    assert bm25.search({"没有这个词xyz": 1.0}, 10) == []
