"""m3e-small-int8: made from the float32 ONNX export once, its own name, vectors close to the float32 ones.

Marked slow (loads the real model; the first run quantises it, about 20 s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb.search.embedders.factory import M3E_SMALL_INT8, load_embedder
from kb.search.embedders.onnx import OnnxBertEmbedder
from tests.helpers import BUNDLED

pytestmark = pytest.mark.slow


def test_int8_variant_is_quantised_once_beside_the_export_and_agrees_with_float32(m3e_cache: Path) -> None:
    cache = m3e_cache  # the run's float32 export (tests/conftest.py), quantised beside it
    fp32 = load_embedder("m3e-small", cache_dir=cache)
    int8 = load_embedder(M3E_SMALL_INT8, cache_dir=cache)
    assert isinstance(int8, OnnxBertEmbedder) and int8.quantized
    assert int8.name == "m3e-small-int8" != fp32.name  # its own manifest name: never mixed with float32 vectors
    passages = [p.read_text(encoding="utf-8")[:400] for p in sorted(BUNDLED.rglob("*.md"))[:16]]
    a, b = fp32.encode_passages(passages), int8.encode_passages(passages)
    assert isinstance(fp32, OnnxBertEmbedder)
    assert int8.onnx_path.name == fp32.onnx_path.stem + "-int8.onnx"
    assert int8.onnx_path.stat().st_size < fp32.onnx_path.stat().st_size / 3  # int8 weights
    assert b.shape == a.shape and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(a * b, axis=1)
    assert cosine.mean() > 0.97 and cosine.min() > 0.9
    # The ranking of passages for a query barely moves: the best passage is the same.
    query = "远程桌面 没有可用的许可证"
    assert int(np.argmax(a @ fp32.encode_queries([query])[0])) == int(np.argmax(b @ int8.encode_queries([query])[0]))
