"""Any sentence-transformers model (torch), loaded on first use from a local folder or the local cache.

``local_files_only=True``: nothing is downloaded at run time. sentence-transformers, transformers and torch are
imported only when the model is first needed (about 4 s), so ``kb --help`` and most tests start fast.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kb.errors import EmbeddingModelError
from kb.search.embedders.base import l2_normalize

logger = logging.getLogger(__name__)


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
                            "Install it locally, or correct the setting that names it "
                            "(KB_EMBEDDING_MODEL or KB_TICKET_EMBEDDING_MODEL)."
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
