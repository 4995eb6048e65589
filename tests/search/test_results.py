"""Typed search results and explanations: the JSON they give is the API's (absent legs stay absent)."""

from __future__ import annotations

from dataclasses import asdict

from kb.articles.content import validate_content
from kb.search.results import ConfidenceSignals, Explain, LegScore, SearchRequest, WeightedFusion, hit_explain
from kb.service import KnowledgeBase


def test_hit_explain_lists_only_the_legs_that_found_the_article() -> None:
    assert hit_explain({"vector": LegScore(2, 0.7)}, 3) == {"vector": LegScore(2, 0.7), "chunk": 3}
    both = hit_explain({"bm25": LegScore(1, 9.5, 1.0), "vector": LegScore(4, 0.6, 0.2)}, 0)
    assert list(both) == ["bm25", "vector", "chunk"]


def test_explain_is_typed_and_its_json_keeps_the_keys(kb: KnowledgeBase) -> None:
    kb.writer.create(validate_content({"title": "VPN 连不上", "body": "检查证书和网络。"}), "tester")
    result = kb.engine.search(SearchRequest("VPN 连不上", explain=True))
    assert isinstance(result.explain, Explain) and isinstance(result.explain.confidence, ConfidenceSignals)
    assert isinstance(result.explain.fusion, WeightedFusion)
    body = asdict(result)
    assert list(body["explain"]) == [
        "normalized_query",
        "terms",
        "identifiers",
        "expansions",
        "phrases",
        "confidence",
        "legs",
        "candidates",
        "fusion",
        "ranker",
    ]
    assert list(body["explain"]["confidence"]) == [
        "coverage_min",
        "cosine_min",
        "confident",
        "coverage",
        "cosine",
        "score_min",
        "score",
    ]
    fusion = body["explain"]["fusion"]
    assert {k: fusion[k] for k in ("method", "weights", "floors")} == {
        "method": "weighted",
        "weights": {"bm25": 0.6, "vector": 0.4},  # a short query (kb/data/fusion.json)
        "floors": {"bm25": 0.0, "vector": kb.engine.vector_floor},
    }
    assert set(fusion) == {"method", "weights", "floors", "query_terms", "identifiers"}  # new keys added
    assert set(body["results"][0]["explain"]) == {"bm25", "vector", "chunk"}
    rrf = asdict(kb.engine.search(SearchRequest("VPN 连不上", explain=True, fusion="rrf")))
    assert rrf["explain"]["fusion"] == {"method": "rrf", "k": 60}


def test_why_report_json_names_the_places_in(kb: KnowledgeBase) -> None:
    article = kb.writer.create(validate_content({"title": "VPN 连不上", "body": "检查证书。"}), "tester").article
    assert article is not None
    report = kb.engine.why("VPN 证书", article.id).as_json()
    assert report["terms"][0] == {"term": "vpn", "idf": report["terms"][0]["idf"], "in": ["title"]}
    assert report["article"] == {"id": article.id, "title": "VPN 连不上", "status": "published", "chunks": 1}
    assert report["hybrid_rank"] == 1
