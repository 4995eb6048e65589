"""m3e-small (and other mean-pooled BERT models in a local folder) on ONNX Runtime.

Why: importing sentence-transformers (with transformers, scikit-learn and torch) takes about 4 s on these
machines, which alone broke the 5 s cold-start target (measured 6.4-6.6 s to first answer). ONNX Runtime and
``tokenizers`` import in 0.2 s, and one query encodes in about 12 ms, also under load from other processes
where torch's thread pool slowed the same query to 250-390 ms.

The model is exported once from its PyTorch weights with ``torch.onnx.export`` (torch and transformers are
imported only then) into ``cache_dir`` and reused afterwards. Output equals sentence-transformers' mean
pooling: cosine >= 0.9999999 on 64 real passages (tests/test_real_model.py checks >= 0.9999).

Chosen by :func:`kb.search.embedders.factory.load_embedder` for ``m3e-small`` with backend ``onnx``, and for
``m3e-small-int8``: the same export with its weights quantised to int8 by ONNX Runtime's dynamic quantisation
(``onnxruntime.quantization.quantize_dynamic``: per-tensor int8 weights of MatMul and Gather, activations quantised
per call), written once beside the float32 export. Its vectors differ a little from the float32 ones (mean cosine
0.990 on real passages, ``bench/results/onnx-int8.json``), so it has its own name in the index manifest and
stored embeddings: switching between the two re-encodes through ``kb index rebuild``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kb.errors import EmbeddingModelError
from kb.search.embedders.base import l2_normalize

logger = logging.getLogger(__name__)

#: Suffix of the int8 variant's model name (``m3e-small-int8``) and of its file beside the float32 export.
INT8_SUFFIX = "-int8"

#: Most tokens (rows x padded width) in one forward pass. Passages are sorted by length and cut into batches of at
#: most ``batch_size`` rows and this many tokens, so a batch of long chunks has fewer rows: the activations of one
#: pass (BERT's attention is rows x heads x width^2 floats) stay near those of 32 rows of 128 tokens whatever the
#: chunk lengths. With 32 rows of 320 tokens ONNX Runtime's memory arena grew to keep the largest batch's buffers
#: and ``kb import`` peaked at 1.46 GiB (session 5). The arena stays on: encoding the 160 longest of 600 real chunks
#: (m3e-small, one fresh process each, load 15-18) peaked at 466 MiB with this budget and the arena, 844 MiB with
#: 32-row batches and the arena, and 766-840 MiB with this budget and the arena off (each pass's buffers then go
#: through malloc, which keeps the freed memory). ``bench/encode_memory.py`` on 300 real chunks, two interleaved
#: rounds: budget + arena peaked at 507 MiB against 967 MiB for 32-row batches + arena, and took 16.4 against 14.3
#: passages per CPU second (fewer padded tokens), the same wall speed (``bench/results/encode-memory-m3e-small.md``).
TOKEN_BUDGET = 4096


class OnnxBertEmbedder:
    """Mean-pooled BERT encoder on ONNX Runtime: ``(n, hidden_size)`` float32, L2-normalised.

    Args:
        name: the name recorded in the index manifest (same as the torch backend: vectors are interchangeable).
        model_dir: folder with ``config.json``, ``tokenizer.json`` and ``pytorch_model.bin``.
        cache_dir: where the exported ``.onnx`` file is kept.
        query_instruction: prefix for queries only.
        batch_size: most passages per forward pass (sorted by length first, to pad little).
        quantized: run the int8 (dynamically quantised) variant, made from the float32 export on first load.
        token_budget: most tokens (rows x padded width) per forward pass (see :data:`TOKEN_BUDGET`); a passage
            longer than it still goes alone.
        memory_arena: use ONNX Runtime's CPU memory arena (it keeps the largest pass's buffers for the session's
            life, which the token budget bounds; off, each pass allocates through malloc, which peaked higher).
        threads: intra-op threads of the session; 0 (default) for one per core. ``kb serve --workers N`` gives
            each worker cores / N (:mod:`kb.cli.serve`): N processes each running as many threads as cores took
            more CPU per query under concurrency (``bench/results/perf-session8.md``).

    Raises:
        EmbeddingModelError: the folder lacks a file, or export or loading fails.
    """

    def __init__(
        self,
        name: str,
        model_dir: Path,
        cache_dir: Path,
        query_instruction: str = "",
        batch_size: int = 32,
        *,
        quantized: bool = False,
        token_budget: int = TOKEN_BUDGET,
        memory_arena: bool = True,
        threads: int = 0,
    ) -> None:
        self.name = name
        self.quantized = quantized
        self.token_budget = token_budget
        self.memory_arena = memory_arena
        self.threads = threads
        self.model_dir = model_dir
        self.cache_dir = cache_dir
        self.query_instruction = query_instruction
        self.batch_size = batch_size
        try:
            self._config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EmbeddingModelError(f"Cannot read {model_dir / 'config.json'}: {exc}") from exc
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """Vector dimension (the model's hidden size)."""
        return int(self._config["hidden_size"])

    @property
    def max_seq_length(self) -> int:
        """Longest input in tokens, special tokens included."""
        return int(self._config.get("max_position_embeddings", 512))

    @property
    def export_path(self) -> Path:
        """The float32 export, keyed by the model's config and weights file size (shared by both variants)."""
        weights = self.model_dir / "pytorch_model.bin"
        key = hashlib.sha256(
            json.dumps(self._config, sort_keys=True).encode() + str(weights.stat().st_size).encode()
        ).hexdigest()[:12]
        return self.cache_dir / f"{self.name.removesuffix(INT8_SUFFIX)}-{key}.onnx"

    @property
    def onnx_path(self) -> Path:
        """The model file this embedder runs: :attr:`export_path`, or its int8 variant beside it."""
        export = self.export_path
        return export.with_name(export.stem + INT8_SUFFIX + ".onnx") if self.quantized else export

    def load(self) -> None:
        """Export (first time only) and load the model and tokenizer now."""
        self._load()

    def _load_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            tokenizer.no_padding()
            tokenizer.no_truncation()
            self._tokenizer = tokenizer
        return self._tokenizer

    def _load(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import onnxruntime as ort

                    path = self.onnx_path
                    if not self.export_path.exists():
                        self._export(self.export_path)
                    if self.quantized and not path.exists():
                        self._quantize(self.export_path, path)
                    options = ort.SessionOptions()
                    options.intra_op_num_threads = self.threads or os.cpu_count() or 1
                    # No spin-waiting between operators: spinning intra-op threads take the cores that the
                    # server's other requests, the index applier and the event loop need (measured with
                    # bench/http_load.py: see bench/results/http-load.md).
                    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                    options.log_severity_level = 3
                    options.enable_cpu_mem_arena = self.memory_arena
                    try:
                        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                    except Exception as exc:
                        raise EmbeddingModelError(f"Cannot load ONNX model {path}: {exc}") from exc
                    self._load_tokenizer()
        return self._session

    def _export(self, path: Path) -> None:
        logger.info("exporting %s to ONNX at %s (once)", self.name, path)
        try:
            import torch
            import transformers
            from transformers import AutoModel

            transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
            transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).eval()

            class Encoder(torch.nn.Module):
                def __init__(self, inner: Any) -> None:
                    super().__init__()
                    self.inner = inner

                def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                    return self.inner(
                        input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                    ).last_hidden_state

            sample = torch.ones((2, 8), dtype=torch.long)
            names = ["input_ids", "attention_mask", "token_type_ids"]
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            with warnings.catch_warnings():  # torch.onnx deprecation chatter is not ours to fix
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    Encoder(model),
                    (sample, sample, torch.zeros_like(sample)),
                    str(tmp),
                    input_names=names,
                    output_names=["last_hidden_state"],
                    dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                    opset_version=17,
                    dynamo=False,
                )
            os.replace(tmp, path)
        except Exception as exc:
            raise EmbeddingModelError(f"Cannot export {self.name} to ONNX: {exc}") from exc

    def _quantize(self, source: Path, path: Path) -> None:
        logger.info("quantising %s to int8 at %s (once)", source, path)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
            os.replace(tmp, path)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            raise EmbeddingModelError(f"Cannot quantise {source} to int8: {exc}") from exc

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` including [CLS] and [SEP], by the model's own tokenizer."""
        return len(self._load_tokenizer().encode(text).ids)

    def _encode(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        session = self._load()
        tokenizer = self._load_tokenizer()
        encodings = tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        limit = self.max_seq_length
        for rows in self._batches([min(limit, len(encodings[i].ids)) for i in order]):
            batch = [encodings[i] for i in order[rows]]
            width = min(limit, max(len(e.ids) for e in batch))
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            types = np.zeros((len(batch), width), dtype=np.int64)
            for row, enc in enumerate(batch):
                n = min(width, len(enc.ids))
                ids[row, :n], mask[row, :n], types[row, :n] = enc.ids[:n], enc.attention_mask[:n], enc.type_ids[:n]
                if len(enc.ids) > width:  # queries only: chunks are sized to fit (see kb.articles.chunking)
                    ids[row, n - 1] = enc.ids[-1]  # keep [SEP] last
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            summed = (hidden * mask[..., None]).sum(axis=1)
            pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            out[order[rows]] = pooled
        return l2_normalize(out)

    def _batches(self, lengths: list[int]) -> list[slice]:
        """Consecutive slices of ``lengths`` (token counts, ascending) of at most :attr:`batch_size` rows and at
        most :attr:`token_budget` tokens once padded to the slice's longest (a single longer row goes alone)."""
        slices: list[slice] = []
        start = 0
        for end in range(1, len(lengths) + 1):
            rows = end - start
            if rows > self.batch_size or (rows > 1 and rows * lengths[end - 1] > self.token_budget):
                slices.append(slice(start, end - 1))
                start = end - 1
        if start < len(lengths):
            slices.append(slice(start, len(lengths)))
        return slices

    def encode_passages(self, texts: list[str]) -> NDArray[np.float32]:
        """``(n, dimension)`` float32, L2-normalised."""
        return self._encode(texts)

    def encode_queries(self, texts: list[str]) -> NDArray[np.float32]:
        """Like :meth:`encode_passages`, with the query instruction put before each query."""
        return self._encode([self.query_instruction + t for t in texts])
