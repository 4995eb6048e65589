"""The hybrid score bar of confidence (kb.search.confidence): a top hit the two legs do not agree on is not a
confident answer, whatever its coverage; other modes keep the coverage-or-cosine rule."""

from __future__ import annotations

import math

from kb.search.confidence import Thresholds, is_confident, scored_by, thresholds_for


def test_the_fused_bar_flags_a_covered_top_hit_the_legs_disagree_on() -> None:
    bars = Thresholds(coverage_min=0.35, cosine_min=0.82, fused_min=0.95)
    assert is_confident(1.0, 0.9, bars, 0.97, bars.fused_min)
    assert not is_confident(1.0, 0.9, bars, 0.6, bars.fused_min)  # full coverage, but only one leg puts it first
    assert not is_confident(0.1, 0.5, bars, 1.0, bars.fused_min)  # both legs agree on a poor match
    assert is_confident(1.0, None, bars)  # no score (bm25 or vector mode): coverage alone


def test_which_score_the_bar_reads() -> None:
    assert scored_by("hybrid", "weighted", None, reranked=False) == "fused"
    assert scored_by("hybrid", "weighted", None, reranked=True) == "ranker"
    assert scored_by("hybrid", "rrf", None, reranked=False) is None
    assert scored_by("hybrid", "weighted", 0.8, reranked=False) is None  # a caller's own weight: another scale
    assert scored_by("bm25", "weighted", None, reranked=False) is None


def test_the_calibrated_model_has_the_bar_and_an_unknown_one_has_none() -> None:
    assert thresholds_for("m3e-small").fused_min == 0.95
    assert thresholds_for("some-unknown-model").fused_min == -math.inf
