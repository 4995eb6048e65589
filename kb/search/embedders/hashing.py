"""A deterministic test encoder: hashed character n-grams, no model file. Lexical, not semantic."""

from __future__ import annotations

import functools
import hashlib
import itertools
import unicodedata

import numpy as np
from numpy.typing import NDArray

from kb.search.embedders.base import l2_normalize

#: The name this encoder records in the index manifest (``KB_EMBEDDING_MODEL=hash``).
HASH = "hash"


@functools.lru_cache(maxsize=1 << 18)
def _gram_hash(gram: str) -> int:
    """The first 4 bytes of the gram's BLAKE2b-64 digest as a little-endian number, shifted left by one, plus the
    low bit of its fifth byte (the sign); remembered for the last 262,144 grams (a corpus repeats its grams)."""
    digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
    return (int.from_bytes(digest[:4], "little") << 1) | (digest[4] & 1)


class HashingEmbedder:
    """Deterministic test encoder: character 1- and 2-grams of NFKC-lower-cased text, hashed into buckets.

    ``(n, dimension)`` float32, L2-normalised; cosine approximates character overlap. No model file.
    One token per character (plus 2 special tokens) for chunk sizing. ``name`` is what stored vectors record
    (:data:`HASH` by default; another name and ``dimension`` give a second, incompatible test model, e.g. a ticket
    model beside the KB's).
    """

    def __init__(self, dimension: int = 256, query_instruction: str = "", name: str = HASH) -> None:
        self.name = name
        self.query_instruction = query_instruction
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        """Vector dimension."""
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        """Pretend model limit, tokens."""
        return 512

    def count_tokens(self, text: str) -> int:
        """Characters + 2 (like [CLS] and [SEP])."""
        return len(text) + 2

    def load(self) -> None:
        """Nothing to load."""

    def _vector(self, text: str) -> NDArray[np.float32]:
        text = unicodedata.normalize("NFKC", text).lower()
        chars = [c for c in text if not c.isspace()]
        grams = chars + [a + b for a, b in itertools.pairwise(chars)]
        if not grams:
            return np.zeros(self._dimension, dtype=np.float32)
        hashed = np.array([_gram_hash(gram) for gram in grams], dtype=np.int64)  # (n,): bucket hash, sign bit
        buckets, signs = hashed >> 1, np.where(hashed & 1, 1.0, -1.0)
        # sums of +-1 are exact in float32 below 2**24 whatever their order: the vector the per-gram loop gave
        return np.bincount(buckets % self._dimension, weights=signs, minlength=self._dimension).astype(np.float32)

    def encode_passages(self, texts: list[str]) -> NDArray[np.float32]:
        """``(n, dimension)`` float32, L2-normalised."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return l2_normalize(np.stack([self._vector(t) for t in texts]))

    def encode_queries(self, texts: list[str]) -> NDArray[np.float32]:
        """Same as passages (after the query instruction, if any)."""
        return self.encode_passages([self.query_instruction + t for t in texts])
