"""The numpy BM25F scorer against a brute-force BM25F computed from the documents' own term lists (the oracle),
on chunks of the bundled real articles."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
from whoosh.util.numeric import byte_to_length, length_to_byte

from kb.articles.chunking import chunk_article
from kb.articles.content import parse_markdown
from kb.search import bm25_scorer
from kb.search.bm25 import FIELD_BOOSTS, BM25Hit, BM25Index, ChunkDocument
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import BUNDLED, SHARED

_DEV_QUERIES = (SHARED / "data/eval/tidb-faq-dev/queries.jsonl").read_text(encoding="utf-8").splitlines()
QUERIES = [json.loads(line)["text"] for line in _DEV_QUERIES[:20]] + [
    "远程桌面 没有可用的许可证",
    "Pod 一直 CrashLoopBackOff 怎么办",
    "kubectl get pods --all-namespaces",
    "DNS 解析失败 coredns",
    "节点 NotReady kubelet",
]


def _documents(analyzer: TextAnalyzer, folder: Path, first_id: int) -> list[ChunkDocument]:
    docs = []
    for offset, path in enumerate(sorted(folder.rglob("*.md"))):
        content = parse_markdown(path.read_text(encoding="utf-8"), fallback_title=path.stem)
        chunks = chunk_article(content.title, content.body, lambda s: len(s) // 2 + 1, 320, 48, content.summary)
        title = analyzer.terms(content.title)
        for chunk in chunks:
            body = analyzer.tokens(chunk.text)
            docs.append(
                ChunkDocument(
                    article_id=first_id + offset,
                    ord=chunk.ord,
                    title=title,
                    headings=[t for h in chunk.heading_path for t in analyzer.terms(h)],
                    body=[t.text for t in body],
                    tags=[],
                    codes=[t.text for t in body if t.identifier],
                )
            )
    return docs


def _brute_force(docs: list[ChunkDocument], terms: dict[str, float]) -> dict[tuple[int, int], float]:
    """BM25F straight from the definition in kb.search.bm25_scorer, over term lists (whoosh's 1-byte lengths)."""
    fields = {f: [getattr(d, f) for d in docs] for f in FIELD_BOOSTS}
    avg = {f: sum(len(v) for v in values) / len(docs) for f, values in fields.items()}
    counts = {f: [Counter(v) for v in values] for f, values in fields.items()}
    scores: dict[tuple[int, int], float] = {}
    for term, q in terms.items():
        df = sum(1 for i in range(len(docs)) if any(counts[f][i][term] for f in FIELD_BOOSTS))
        if not df:
            continue
        idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        for i, doc in enumerate(docs):
            tf = 0.0
            for f, w in FIELD_BOOSTS.items():
                if counts[f][i][term]:
                    length = byte_to_length(length_to_byte(len(fields[f][i])))
                    tf += w * counts[f][i][term] / ((1 - bm25_scorer.B) + bm25_scorer.B * length / avg[f])
            if tf:
                key = (doc.article_id, doc.ord)
                scores[key] = scores.get(key, 0.0) + q * idf * tf / (bm25_scorer.K1 + tf)
    return scores


def _query_terms(analyzer: TextAnalyzer, query: str) -> dict[str, float]:
    terms = {t: 1.0 for t in analyzer.analyze_query(query).terms}
    return terms | ({"容器": 0.3} if "pod" in terms else {})  # a weighted expansion, as synonyms add


def test_numpy_bm25f_equals_the_definition_over_segments(tmp_path: Path, analyzer: TextAnalyzer) -> None:
    k8s = _documents(analyzer, BUNDLED / "k8s-troubleshooting", 1)
    rds = _documents(analyzer, BUNDLED / "windows-troubleshooting/WindowsServerDocs/remote", 1000)
    index = BM25Index.create(tmp_path / "bm25")
    try:
        index.replace_articles(k8s, ())
        index.replace_articles(rds, ())  # a second segment
        docs = k8s + rds
        compared = 0
        for query in QUERIES:
            terms = _query_terms(analyzer, query)
            expected = _brute_force(docs, terms)
            hits = index.search(terms, 100_000)
            assert {(h.article_id, h.ord): h.score for h in hits} == pytest.approx(expected, rel=1e-9)
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
            compared += len(hits)
        assert compared > 1000
    finally:
        index.close()


def test_deleted_and_replaced_chunks_never_score(tmp_path: Path, analyzer: TextAnalyzer) -> None:
    docs = _documents(analyzer, BUNDLED / "k8s-troubleshooting", 1)
    index = BM25Index.create(tmp_path / "bm25")
    try:
        index.replace_articles(docs, ())
        terms = _query_terms(analyzer, "Pod 一直 CrashLoopBackOff 怎么办")
        before = index.search(terms, 1000)
        ranked_articles = list(dict.fromkeys(h.article_id for h in before))
        gone, changed = set(ranked_articles[:2]), ranked_articles[2]
        replacement = [ChunkDocument(changed, 0, ["新"], [], ["crashloopbackoff", "crashloopbackoff"], [], [])]
        index.replace_articles(replacement, [*gone, changed])
        after = index.search(terms, 1000)
        assert gone.isdisjoint(h.article_id for h in after)
        assert [(h.article_id, h.ord) for h in after if h.article_id == changed] == [(changed, 0)]
        removed = sum(1 for h in before if h.article_id in gone or h.article_id == changed)
        assert len(after) == len(before) - removed + 1
    finally:
        index.close()


def test_limit_keeps_the_best_scores(bundled_kb: KnowledgeBase) -> None:
    bm25 = bundled_kb.index.generation.bm25
    terms = {t: 1.0 for t in bundled_kb.analyzer.analyze_query("远程桌面 没有可用的许可证").terms}
    everything = bm25.search(terms, 10_000)
    top = bm25.search(terms, 5)
    assert len(everything) > 5
    assert top == everything[:5] and all(isinstance(h, BM25Hit) for h in top)
    assert bm25.search(terms, 0) == [] and bm25.search({}, 10) == []
    assert bm25.search({"没有这个词xyz": 1.0}, 10) == []
