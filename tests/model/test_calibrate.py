"""Carrying confidence bars over to an adapted model (:mod:`kb.model.calibrate`) and reading them back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kb.model.calibrate import matched_thresholds
from kb.search.confidence import Thresholds, thresholds_for
from kb.search.embedders.hashing import HashingEmbedder

QUERIES = [
    f"{a} {b}" for a in ("VPN", "打印机", "邮箱", "磁盘", "远程桌面") for b in ("无法连接", "脱机", "已满", "报错")
]
PASSAGES = [f"{q} 的处理步骤：检查配置并重启服务 {i}" for i, q in enumerate(QUERIES)] + ["今天天气晴", "会议室预订"]


def test_the_same_model_keeps_its_bars_and_other_scales_are_copied() -> None:
    base = Thresholds(0.35, 0.6, 0.2, 0.25, 0.95)
    same = matched_thresholds(HashingEmbedder(), HashingEmbedder(), QUERIES, PASSAGES, base)
    assert same["coverage_min"] == 0.35 and same["fused_min"] == 0.95 and same["ranker_min"] == -math.inf
    for name in ("cosine_min", "vector_floor", "unrelated_cosine"):
        assert same[name] == pytest.approx(getattr(base, name), abs=0.02)  # identity map up to the sample's steps


def test_bars_keep_their_order_on_another_scale() -> None:
    base = Thresholds(0.35, 0.6, 0.2, 0.25, 0.95)
    other = matched_thresholds(HashingEmbedder(), HashingEmbedder(dimension=32), QUERIES, PASSAGES, base)
    assert other["vector_floor"] <= other["unrelated_cosine"] <= other["cosine_min"] <= 1.0
    with pytest.raises(ValueError):
        matched_thresholds(HashingEmbedder(), HashingEmbedder(), [], PASSAGES, base)


def test_an_adapted_folder_carries_its_own_thresholds(tmp_path: Path) -> None:
    folder = tmp_path / "adapted"
    folder.mkdir()
    assert math.isinf(thresholds_for(str(folder)).cosine_min)  # not calibrated: no cosine bar
    entry = {"coverage_min": 0.4, "cosine_min": 0.7, "vector_floor": 0.5, "unrelated_cosine": 0.55, "fused_min": 0.9}
    (folder / "kb-adapt.json").write_text(json.dumps({"base_model": "m3e-small", "thresholds": entry}), "utf-8")
    thresholds_for.cache_clear()
    assert thresholds_for(str(folder)) == Thresholds(0.4, 0.7, 0.5, 0.55, 0.9)
    assert thresholds_for("m3e-small").cosine_min == 0.82  # the calibration file still wins for its own models
