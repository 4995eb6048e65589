"""What every embedder provides, and the two vector helpers all of kb shares.

- :class:`Embedder`: the protocol the index and search depend on (never an implementation).
- :func:`l2_normalize`: rows to unit length, so inner product equals cosine (faiss ``IndexFlatIP``).
- :func:`decode_vectors`: stored embedding bytes (``Chunk.embedding``, ``Ticket.embedding``) to one matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from kb.errors import IndexMismatchError

#: Bytes per stored vector component (float32).
FLOAT32_BYTES = 4


class Embedder(Protocol):
    """What the index and search need from an embedding model.

    ``name`` is recorded in the index manifest and on stored embeddings; ``query_instruction`` is put before
    queries only (bge-style models need one; m3e-small needs none).
    """

    name: str
    query_instruction: str

    @property
    def dimension(self) -> int: ...

    @property
    def max_seq_length(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def encode_passages(self, texts: list[str]) -> NDArray[np.float32]: ...

    def encode_queries(self, texts: list[str]) -> NDArray[np.float32]: ...


def l2_normalize(vectors: NDArray[Any]) -> NDArray[np.float32]:
    """A C-contiguous float32 copy of ``vectors`` ``(n, d)`` with each row scaled to unit L2 norm.

    Zero rows stay zero. Normalised vectors make inner product equal cosine (faiss ``IndexFlatIP``).
    """
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if out.ndim == 1:
        out = out.reshape(1, -1)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def decode_vectors(blobs: Sequence[bytes | None], dimension: int) -> NDArray[np.float32]:
    """Stored embeddings (raw float32 bytes, ``dimension * 4`` each) as one ``(n, dimension)`` float32 matrix.

    The values are the stored ones, unchanged (already L2-normalised when written by an :class:`Embedder`);
    the result is a writable C-contiguous copy; no blobs give ``(0, dimension)``.

    Raises:
        IndexMismatchError: a blob is missing or its length is not ``dimension * 4`` bytes (it was written by a
            model of another dimension, or not at all).
    """
    out = np.empty((len(blobs), dimension), dtype=np.float32)
    expected = dimension * FLOAT32_BYTES
    for row, blob in enumerate(blobs):
        size = len(blob) if blob is not None else 0
        if size != expected:
            raise IndexMismatchError(
                f"Stored embedding {row} has {size} bytes, but dimension {dimension} needs {expected} (float32): "
                "it was made by another embedding model. Re-encode it (for articles: `kb index rebuild`)."
            )
        out[row] = np.frombuffer(blob or b"", dtype=np.float32)
    return out
