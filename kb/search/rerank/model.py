"""The learned ranking function: a LightGBM LambdaRank model (Burges 2010, "From RankNet to LambdaRank to
LambdaMART: An Overview", MSR-TR-2010-82; Ke et al., NeurIPS 2017) over :data:`kb.search.rerank.features.FEATURES`.

The model file ``kb/data/ranker-<embedding model>.txt`` is LightGBM's own text format; beside it
``ranker-<embedding model>.json`` says how it was trained (``bench/train_ranker.py``): its features in order,
parameters, data, and the cross-validated gains. A ranker exists per embedding model because the cosine columns
are that model's cosines; a model without one gets no second stage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kb.config import DATA_DIR
from kb.errors import IndexUnavailableError


def model_paths(embedding_model: str, folder: Path = DATA_DIR) -> tuple[Path, Path]:
    """``(model file, its manifest)`` of the ranker for ``embedding_model`` in ``folder``."""
    stem = "ranker-" + embedding_model.replace("/", "_")
    return folder / f"{stem}.txt", folder / f"{stem}.json"


@dataclass(frozen=True)
class RankerModel:
    """A loaded ranker: ``features`` (names, in column order), the LightGBM booster and its manifest."""

    name: str
    features: tuple[str, ...]
    booster: Any
    manifest: dict[str, Any]

    def scores(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``(n,)`` ranking scores (higher is better; unbounded, only their order within a query means
        anything) of ``rows`` ``(n, len(features))``."""
        if not len(rows):
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self.booster.predict(rows, num_threads=1), dtype=np.float64)

    def contributions(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``(n, len(features) + 1)``: each feature's additive part of each row's score (TreeSHAP, Lundberg et
        al. 2020, LightGBM ``pred_contrib``), the last column the model's expected score; a row sums to
        :meth:`scores`."""
        if not len(rows):
            return np.zeros((0, len(self.features) + 1), dtype=np.float64)
        return np.asarray(self.booster.predict(rows, pred_contrib=True, num_threads=1), dtype=np.float64)


@lru_cache(maxsize=4)
def load_ranker(embedding_model: str, folder: Path = DATA_DIR) -> RankerModel | None:
    """The ranker trained for ``embedding_model`` (see module docstring), None when there is none.

    Raises:
        IndexUnavailableError: the files exist but cannot be read, or their feature list differs from
            :data:`kb.search.rerank.features.FEATURES`.
    """
    import lightgbm

    from kb.search.rerank.features import FEATURES

    model_file, manifest_file = model_paths(embedding_model, folder)
    if not model_file.exists():
        return None
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        booster = lightgbm.Booster(model_str=model_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, lightgbm.basic.LightGBMError) as exc:
        raise IndexUnavailableError(f"Cannot read the ranker {model_file}: {exc}") from exc
    features = tuple(manifest.get("features", ()))
    if features != FEATURES or tuple(booster.feature_name()) != FEATURES:
        raise IndexUnavailableError(
            f"The ranker {model_file} was trained on other features than kb.search.rerank.features.FEATURES; "
            "retrain it with bench/train_ranker.py."
        )
    return RankerModel(model_file.name, features, booster, manifest)
