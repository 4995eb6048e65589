"""Temporary: replaced by the search-layout branch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from kb.search.embedding import Embedder, l2_normalize

__all__ = ["Embedder", "decode_vectors", "l2_normalize"]


def decode_vectors(blobs: Sequence[bytes | None], dimension: int) -> NDArray[np.float32]:
    """(n, d) float32 from stored bytes."""
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.vstack([np.frombuffer(b or b"", dtype=np.float32) for b in blobs])
