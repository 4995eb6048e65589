"""Fine-tune a sentence-transformers embedding model on a knowledge base's own pairs, on the CPU.

The loss is sentence-transformers' ``MultipleNegativesRankingLoss`` (in-batch negatives: for each anchor the
other positives of its batch are the negatives; van den Oord et al. 2018, "InfoNCE"; Henderson et al. 2017,
arXiv:1705.00652), with its default scale 20 (cosine similarities x 20 as logits). The optimiser is AdamW with a
linear warm-up over the first :data:`WARMUP_SHARE` of the steps and a linear decay after it, the schedule
sentence-transformers' own ``fit`` used. The loop is written out here (no ``datasets`` / ``accelerate``
dependency): a step tokenises one batch of anchors and one of positives, computes the loss and steps.

Batches never hold the same anchor or positive twice (a duplicate would be a false negative). Pairs are shuffled
with ``seed``; with the same pairs, base model and settings a run is repeatable on one machine.

The new model is saved with ``SentenceTransformer.save`` into a temporary folder beside ``out`` and renamed into
place, with :data:`MANIFEST_FILE` recording the base model, the data hash, the steps and the date; pointing
``KB_EMBEDDING_MODEL`` at the folder makes ``kb index rebuild`` re-encode every chunk with it (the index
manifest records the model by that path, so an index of the old model is refused with a rebuild hint).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kb.errors import EmbeddingModelError, InvalidInputError
from kb.model.pairs import Pair, data_hash
from kb.models import utcnow

#: The adapted model folder's own manifest (beside sentence-transformers' files).
MANIFEST_FILE = "kb-adapt.json"
#: Share of the steps spent warming the learning rate up linearly from 0.
WARMUP_SHARE = 0.1


@dataclass(frozen=True)
class AdaptSettings:
    """Training settings.

    Attributes:
        steps: optimiser steps (batches); 0 saves the base model unchanged.
        batch_size: pairs per batch (in-batch negatives: batch_size - 1 per anchor).
        learning_rate: AdamW peak learning rate.
        max_seq_length: tokens kept of each text while training (the saved model keeps the base's limit).
        seed: shuffling and torch seed.
        freeze_word_embeddings: keep the token embedding matrix fixed (for m3e-small 11 M of its 24 M weights):
            each step is cheaper on the CPU and tokens that the pairs never show keep their base meaning.
    """

    steps: int = 200
    batch_size: int = 16
    learning_rate: float = 2e-5
    max_seq_length: int = 192
    seed: int = 13
    freeze_word_embeddings: bool = True


@dataclass
class AdaptManifest:
    """What an adapted model folder was made from (``kb-adapt.json``). Times ISO 8601 UTC, seconds wall clock."""

    base_model: str
    base_path: str
    data_sha256: str
    pairs: dict[str, int]
    settings: dict[str, Any]
    steps: int
    loss_first: float | None
    loss_last: float | None
    seconds: float
    created_at: str = field(default_factory=lambda: utcnow().isoformat())
    #: The base model's confidence bars carried over (:mod:`kb.model.calibrate`); None until calibrated.
    thresholds: dict[str, float] | None = None

    def write(self, folder: Path) -> None:
        """Write ``folder/kb-adapt.json``."""
        (folder / MANIFEST_FILE).write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> AdaptManifest:
        """Read ``folder/kb-adapt.json``.

        Raises:
            EmbeddingModelError: missing or unreadable.
        """
        try:
            return cls(**json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise EmbeddingModelError(f"{folder} is not an adapted model folder: {exc}") from exc


def batches(pairs: Sequence[Pair], batch_size: int, steps: int, seed: int) -> list[list[Pair]]:
    """``steps`` batches of up to ``batch_size`` pairs, drawn from ``pairs`` in seeded shuffled passes, no
    anchor or positive twice in a batch (a pair that would repeat one waits for the next batch).

    Raises:
        InvalidInputError: fewer than two pairs, or ``batch_size`` below 2 (in-batch negatives need two).
    """
    if len(pairs) < 2 or batch_size < 2:
        raise InvalidInputError("adapting needs at least two pairs and a batch size of at least 2")
    rng = random.Random(seed)
    pool: list[Pair] = []
    out: list[list[Pair]] = []
    while len(out) < steps:
        if len(pool) < batch_size:
            fresh = list(pairs)
            rng.shuffle(fresh)
            pool.extend(fresh)
        batch: list[Pair] = []
        anchors: set[str] = set()
        positives: set[str] = set()
        rest: list[Pair] = []
        for pair in pool:
            if len(batch) < batch_size and pair.anchor not in anchors and pair.positive not in positives:
                batch.append(pair)
                anchors.add(pair.anchor)
                positives.add(pair.positive)
            else:
                rest.append(pair)
        pool = rest
        if len(batch) < 2:
            raise InvalidInputError("the pairs have fewer than two distinct anchors and positives")
        out.append(batch)
    return out


def adapt(
    base_model: str,
    base_path: str,
    pairs: Sequence[Pair],
    out: Path,
    settings: AdaptSettings | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> AdaptManifest:
    """Fine-tune the model at ``base_path`` on ``pairs`` and save it to ``out`` (see module docstring).

    Args:
        base_model: the base model's name, for the manifest (e.g. ``m3e-small``).
        base_path: folder (or locally cached id) of the base sentence-transformers model; nothing is downloaded.
        pairs: the training pairs (:mod:`kb.model.pairs`).
        out: the new model folder; must not exist yet.
        settings: training settings (defaults: :class:`AdaptSettings`).
        progress: called after each step with ``(step, steps, loss)``.

    Returns:
        The manifest written into ``out``.

    Raises:
        InvalidInputError: ``out`` exists, or too few pairs (see :func:`batches`).
        EmbeddingModelError: the base model cannot be loaded.
    """
    settings = settings or AdaptSettings()
    if out.exists():
        raise InvalidInputError(f"{out} exists already; choose a new folder for the adapted model.")
    plan = batches(pairs, settings.batch_size, settings.steps, settings.seed) if settings.steps else []
    started = time.perf_counter()
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    torch.manual_seed(settings.seed)
    try:
        model = SentenceTransformer(base_path, device="cpu", local_files_only=True)
    except Exception as exc:
        raise EmbeddingModelError(f"Cannot load base model {base_model!r} from {base_path!r}: {exc}") from exc
    saved_limit = model.max_seq_length
    model.max_seq_length = min(saved_limit or settings.max_seq_length, settings.max_seq_length)
    loss_fn = MultipleNegativesRankingLoss(model)
    if settings.freeze_word_embeddings:
        transformer: Any = model[0]
        transformer.auto_model.get_input_embeddings().weight.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trained, lr=settings.learning_rate)
    warmup = max(1, int(settings.steps * WARMUP_SHARE))
    total = max(1, settings.steps)

    def rate(step: int) -> float:
        return step / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
    model.train()
    first: float | None = None
    last: float | None = None
    for step, batch in enumerate(plan, start=1):
        features = [model.tokenize([p.anchor for p in batch]), model.tokenize([p.positive for p in batch])]
        loss = loss_fn(features, torch.empty(0))
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimiser.step()
        schedule.step()
        last = float(loss.detach())
        first = last if first is None else first
        if progress is not None:
            progress(step, len(plan), last)
    model.eval()
    model.max_seq_length = saved_limit
    counts: dict[str, int] = {}
    for pair in pairs:
        counts[pair.kind] = counts.get(pair.kind, 0) + 1
    manifest = AdaptManifest(
        base_model=base_model,
        base_path=str(base_path),
        data_sha256=data_hash(pairs),
        pairs=counts,
        settings=asdict(settings),
        steps=len(plan),
        loss_first=round(first, 4) if first is not None else None,
        loss_last=round(last, 4) if last is not None else None,
        seconds=round(time.perf_counter() - started, 1),
    )
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save(str(tmp))
        manifest.write(tmp)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
