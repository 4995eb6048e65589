"""Calibrate ``low_confidence`` (kb/search/confidence.py) on an article-level desk set, from a ``kb eval`` report.

Reads the per-query rows of one mode (default ``hybrid``) of a report written by
``kb eval bench/data/desk-dev --articles ... --out REPORT.json`` (each row holds the top-1 grade and the
top result's coverage, cosine and hybrid score ``top_score``), searches the grid of ``coverage_min`` x
``cosine_min`` x the score bar (``fused_min``, or ``ranker_min`` with ``--score-bar ranker`` for a report made
with the second stage on; only when the rows hold scores) on the tuning folds
(default 0-2) for the bars that keep confident-but-wrong answers at most ``--max-wrong`` of the answerable
queries and flag at least ``--min-flagged`` of the unanswerable ones while keeping the most correct top-1
answers confident, and reports the same counts on the held-out folds (default 3-4), which were not used.

    python bench/calibrate_desk.py bench/results/eval-desk-dev.json [--mode hybrid]

Writes bench/results/confidence-desk-<model>.json; copy the chosen bars into kb/data/confidence.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def counts(rows: list[dict[str, Any]], cov_min: float, cos_min: float, rank_min: float = -math.inf) -> dict[str, float]:
    """Confident-but-wrong share of answerable rows, flagged share of unanswerable rows, kept share of correct
    (the rule of kb.search.confidence.is_confident; a row without a ranker score has no ranker bar)."""

    def confident(r: dict[str, Any]) -> bool:
        signal = (r["coverage"] or 0.0) >= cov_min or (r["cosine"] or -1.0) >= cos_min
        score = r.get("top_score")
        return bool(r["top10"]) and signal and (score is None or score >= rank_min)

    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    correct = [r for r in ans if r["top1_grade"] > 0]
    wrong = sum(1 for r in ans if r["top1_grade"] == 0 and confident(r))
    flagged = sum(1 for r in una if not confident(r))
    kept = sum(1 for r in correct if confident(r))
    return {
        "answerable": len(ans),
        "confident_wrong": wrong,
        "confident_wrong_share": round(wrong / max(1, len(ans)), 4),
        "unanswerable": len(una),
        "flagged": flagged,
        "flagged_share": round(flagged / max(1, len(una)), 4),
        "correct_top1": len(correct),
        "correct_kept_confident_share": round(kept / max(1, len(correct)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--model", default="m3e-small")
    parser.add_argument("--tune", default="0,1,2")
    parser.add_argument("--check", default="3,4")
    parser.add_argument("--max-wrong", type=float, default=0.05)
    parser.add_argument("--min-flagged", type=float, default=0.90)
    parser.add_argument("--score-bar", choices=("fused", "ranker"), default="fused")
    args = parser.parse_args()
    rows = json.loads(args.report.read_text(encoding="utf-8"))["per_query"][args.mode]
    tune_folds = {int(f) for f in args.tune.split(",")}
    check_folds = {int(f) for f in args.check.split(",")}
    tune = [r for r in rows if r["fold"] in tune_folds]
    check = [r for r in rows if r["fold"] in check_folds]
    scored = sorted({round(r["top_score"], 2) for r in tune if r.get("top_score") is not None})
    step = 0.025 if args.score_bar == "fused" else 0.1
    rank_grid = [-math.inf]
    if scored:
        rank_grid += [float(v) for v in np.round(np.arange(scored[0], scored[-1], step), 3)]
    best: tuple[tuple[float, ...], float, float, float] | None = None
    for cov_min in np.round(np.arange(0.30, 1.001, 0.025), 3):
        for cos_min in np.round(np.arange(0.70, 1.001, 0.005), 3):
            for rank_min in rank_grid:
                c = counts(tune, float(cov_min), float(cos_min), rank_min)
                ok = c["confident_wrong_share"] <= args.max_wrong and c["flagged_share"] >= args.min_flagged
                violation = max(0.0, c["confident_wrong_share"] - args.max_wrong) + max(
                    0.0, args.min_flagged - c["flagged_share"]
                )
                key = (float(ok), -violation, c["correct_kept_confident_share"], -float(cov_min), -float(cos_min))
                if best is None or key > best[0]:
                    best = (key, float(cov_min), float(cos_min), rank_min)
    assert best is not None
    _, cov_min, cos_min, rank_min = best
    report = {
        "model": args.model,
        "mode": args.mode,
        "source": str(args.report),
        "coverage_min": cov_min,
        "cosine_min": cos_min,
        f"{args.score_bar}_min": rank_min if math.isfinite(rank_min) else None,
        "tuned_on_folds": sorted(tune_folds),
        "tune": counts(tune, cov_min, cos_min, rank_min),
        "held_out_folds": sorted(check_folds),
        "held_out": counts(check, cov_min, cos_min, rank_min),
        "all": counts(rows, cov_min, cos_min, rank_min),
    }
    out = ROOT / "bench" / "results" / f"confidence-desk-{args.model.replace('/', '_')}.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
