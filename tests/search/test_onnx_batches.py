"""The ONNX encoder's token-budget batches: bounded rows x width per pass, and the same vectors as one per pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb.search.embedders.factory import m3e_small_path
from kb.search.embedders.onnx import OnnxBertEmbedder


def _embedder(tmp_path: Path, **kw: int | bool) -> OnnxBertEmbedder:
    return OnnxBertEmbedder("m3e-small", m3e_small_path(), tmp_path, **kw)  # type: ignore[arg-type]


def test_batches_cover_every_row_once_within_rows_and_tokens(tmp_path: Path) -> None:
    embedder = _embedder(tmp_path, batch_size=4, token_budget=100)
    lengths = sorted([3, 5, 8, 20, 20, 21, 30, 30, 40, 90, 200, 250])
    slices = embedder._batches(lengths)
    covered = [i for s in slices for i in range(len(lengths))[s]]
    assert covered == list(range(len(lengths)))
    for s in slices:
        rows = lengths[s]
        assert 1 <= len(rows) <= 4
        assert len(rows) == 1 or len(rows) * max(rows) <= 100  # a row over the budget goes alone
    assert [len(lengths[s]) for s in slices] == [4, 3, 2, 1, 1, 1]
    assert embedder._batches([]) == []


@pytest.mark.slow
def test_token_budget_batches_give_the_vectors_of_one_passage_per_pass(tmp_path: Path) -> None:
    texts = [("打印机卡纸，请打开后盖取出纸张。" * (i % 9 + 1)) + f" 第{i}条" for i in range(40)]
    alone = _embedder(tmp_path, batch_size=1)
    budget = _embedder(tmp_path, batch_size=32, token_budget=512, memory_arena=True)
    a, b = alone.encode_passages(texts), budget.encode_passages(texts)
    assert a.shape == b.shape == (40, 512)
    assert float(np.min(np.sum(a * b, axis=1))) > 0.99999


@pytest.mark.slow
def test_threads_setting_reaches_the_session_and_gives_the_same_vectors(tmp_path: Path) -> None:
    """KB_EMBEDDING_THREADS (kb serve --workers N: cores / N each) sets ONNX Runtime's intra-op threads; the
    vectors do not depend on it."""
    from kb.cli.serve import worker_threads
    from kb.config import Settings
    from kb.search.embedders.factory import load_embedder

    one = load_embedder("m3e-small", cache_dir=tmp_path, threads=Settings(embedding_threads=1).embedding_threads)
    assert isinstance(one, OnnxBertEmbedder)
    default = _embedder(tmp_path)
    texts = ["打印机脱机怎么办", "远程桌面 没有可用的许可证"]
    a, b = one.encode_queries(texts), default.encode_queries(texts)
    assert one._session.get_session_options().intra_op_num_threads == 1
    assert float(np.min(np.sum(a * b, axis=1))) > 0.99999
    assert worker_threads(1) >= 1 and worker_threads(10_000) == 1
