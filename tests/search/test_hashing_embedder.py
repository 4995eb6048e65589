"""The hash test encoder (kb.search.embedders.hashing): vectors as its definition gives them, one gram at a time."""

from __future__ import annotations

import hashlib
import itertools
import unicodedata

import numpy as np

from kb.search.embedders.hashing import HashingEmbedder
from tests.helpers import SHARED


def _reference(text: str, dimension: int) -> np.ndarray:
    """Character 1- and 2-grams of the NFKC-lower-cased text without spaces, each adding its BLAKE2b sign to its
    bucket, then L2-normalised: the encoder's definition, written as a loop."""
    chars = [c for c in unicodedata.normalize("NFKC", text).lower() if not c.isspace()]
    vec = np.zeros(dimension, dtype=np.float32)
    for gram in chars + [a + b for a, b in itertools.pairwise(chars)]:
        digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
        vec[int.from_bytes(digest[:4], "little") % dimension] += 1.0 if digest[4] & 1 else -1.0
    norm = np.linalg.norm(vec)
    return vec / norm if norm > 0 else vec


def test_vectors_equal_the_definition_bit_for_bit() -> None:
    article = (SHARED / "data/articles/windows-troubleshooting").rglob("*.md").__next__().read_text(encoding="utf-8")
    texts = ["", "   ", "a", "ＶＰＮ 连不上", "数据库 连接超时 ERROR-1045", article[:3000], article]
    for dimension in (256, 97):
        encoder = HashingEmbedder(dimension)
        got = encoder.encode_passages(texts)
        assert got.dtype == np.float32 and got.shape == (len(texts), dimension)
        for text, row in zip(texts, got, strict=True):
            assert np.array_equal(row, _reference(text, dimension).astype(np.float32)), text[:20]
