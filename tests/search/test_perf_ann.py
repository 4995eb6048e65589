"""The HNSW option of the vector leg: close to the flat index, and never behind the writes made since its snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb.articles.content import ArticleContent
from kb.config import Settings
from kb.search.ann import REBUILD_SHARE
from kb.search.embedders.base import l2_normalize
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.results import SearchRequest
from kb.search.text import TextAnalyzer
from kb.search.vectors import VectorIndex, vector_id
from kb.service import KnowledgeBase


def _vectors(n: int, d: int = 64, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, d))  # clustered, as text embeddings are
    return l2_normalize(centres[rng.integers(0, 20, n)] + 0.5 * rng.normal(size=(n, d)))


def _index(vectors: np.ndarray) -> tuple[VectorIndex, np.ndarray]:
    index = VectorIndex(vectors.shape[1])
    ids = np.array([vector_id(i // 4 + 1, i % 4) for i in range(len(vectors))], dtype=np.int64)
    index.add(ids, vectors)
    return index, ids


def test_hnsw_recall_at_10_against_flat() -> None:
    index, _ = _index(_vectors(3000))
    queries = _vectors(100, seed=8)
    overlap = 0
    for q in queries:
        exact = {(h.article_id, h.ord) for h in index.search(q, 10)}
        approx = index.search(q, 10, approximate=True)
        assert len(approx) == 10 and [h.score for h in approx] == sorted((h.score for h in approx), reverse=True)
        overlap += len(exact & {(h.article_id, h.ord) for h in approx})
    assert overlap / 1000 >= 0.95


def test_hnsw_skips_removed_and_finds_added_vectors_since_its_snapshot() -> None:
    vectors = _vectors(800)
    index, _ = _index(vectors)
    index.search(vectors[0], 5, approximate=True)  # builds the snapshot
    gone = index.search(vectors[0], 1)[0].article_id
    index.remove_article(gone)
    assert all(h.article_id != gone for h in index.search(vectors[0], 50, approximate=True))
    replacement = _vectors(1, seed=99)
    index.add(np.array([vector_id(gone, 0)], dtype=np.int64), replacement)  # the article re-indexed
    top = index.search(replacement[0], 3, approximate=True)
    assert (top[0].article_id, top[0].ord) == (gone, 0) and top[0].score == pytest.approx(1.0, abs=1e-5)
    assert sum(1 for h in index.search(vectors[0], 800, approximate=True) if h.article_id == gone) == 1


def test_hnsw_snapshot_is_rebuilt_after_many_changes() -> None:
    vectors = _vectors(400)
    index, _ = _index(vectors)
    index.search(vectors[0], 5, approximate=True)
    first = index._ann
    for article_id in range(1, int(400 * REBUILD_SHARE / 4) + 3):
        index.remove_article(article_id)
    hits = index.search(vectors[0], 10, approximate=True)
    assert index._ann is not first and index._ann is not None and index._ann.drift == 0
    assert len(index._ann) == len(index) and len(hits) == 10


def test_setting_chooses_the_vector_search() -> None:
    assert Settings(vector_index="hnsw").vector_index == "hnsw"
    with pytest.raises(ValueError):
        Settings(vector_index="ivf")


def test_knowledge_base_with_hnsw_finds_a_new_article(tmp_path: Path, analyzer: TextAnalyzer) -> None:
    settings = Settings(data_dir=tmp_path / "data", embedding_model="hash", vector_index="hnsw")
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()
    try:
        assert kb.engine.approximate_vectors
        kb.writer.create(ArticleContent(title="VPN 连不上", body="VPN 客户端 报错 809,检查 防火墙 UDP 500 端口。"), "t")
        assert kb.engine.search(SearchRequest("VPN 客户端 报错 809", mode="vector")).results[0].title == "VPN 连不上"
        second = ArticleContent(title="打印机脱机", body="打印机 脱机,重启 Print Spooler 服务。")
        kb.writer.create(second, "t")  # added after the snapshot: found exactly
        assert kb.engine.search(SearchRequest("打印机 脱机 重启 Print Spooler", mode="vector")).results[0].title == (
            "打印机脱机"
        )
    finally:
        kb.close()
