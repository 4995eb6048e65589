"""The kb side of the peer bench (``bench/peer.py``) alone, per round, for A/B runs of two trees in turn.

``bench/peer.py`` reports p50 / p95 over both rounds: its p50 sits where warm answers (round 2, or a kb mode
that runs after another kb mode of the same query in round 1) meet first-sight ones, so it moves with small shifts
between the two. This script runs the same kb calls (hybrid, bm25, vector, limit 10; the desk-dev queries; the
same warm-up as ``bench/peer.py``, the three kb modes in an order rotated per query, without the floors) and
reports thread CPU ms (``time.thread_time``: the searching thread only, ONNX Runtime's threads not counted) per
mode for round 1 (after the warm-up: each query seen for the first time) and round 2 (warm) apart.

The ``kb`` package imported is whichever is first on ``PYTHONPATH``, so one copy of this script times any tree:

    PYTHONPATH=/path/to/tree python bench/peer_kb_side.py --data-dir var/bench-peer --label base --out x.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import jieba

import kb
from kb.config import Settings
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase

QUERIES = Path(__file__).resolve().parents[1] / "bench" / "data" / "desk-dev" / "queries.jsonl"
MODES = ("hybrid", "bm25", "vector")
WARMUP = 20  # as bench/peer.py
LIMIT = 10


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 / p95 / mean of ``samples`` (seconds), in ms rounded to 0.01."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50": round(statistics.median(ordered) * 1000, 2),
        "p95": round(p95 * 1000, 2),
        "mean": round(statistics.fmean(ordered) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model", default="m3e-small")
    parser.add_argument("--label", default=str(Path(kb.__file__).resolve().parents[1]))
    parser.add_argument("--out", type=Path, help="append the result as one JSON line here")
    args = parser.parse_args()
    jieba.setLogLevel(60)
    queries = [json.loads(line)["text"] for line in QUERIES.read_text(encoding="utf-8").splitlines() if line]
    base = KnowledgeBase(Settings(data_dir=args.data_dir, embedding_model=args.model, database_url="")).open()
    try:
        for query in queries[:WARMUP]:
            for mode in MODES:
                base.engine.search(SearchRequest(query, mode=mode, limit=LIMIT))
        cpu: dict[str, dict[str, list[float]]] = {f"round {r + 1}": {m: [] for m in MODES} for r in range(2)}
        for round_ in range(2):
            for i, query in enumerate(queries):
                shift = (i + round_) % len(MODES)
                for mode in MODES[shift:] + MODES[:shift]:
                    c0 = time.thread_time()
                    base.engine.search(SearchRequest(query, mode=mode, limit=LIMIT))
                    if round_ == 1 or i >= WARMUP:
                        cpu[f"round {round_ + 1}"][mode].append(time.thread_time() - c0)
    finally:
        base.close()
    result = {
        "label": args.label,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "thread_cpu_ms": {r: {m: percentiles(s) for m, s in by_mode.items()} for r, by_mode in cpu.items()},
    }
    line = json.dumps(result, ensure_ascii=False)
    print(line)
    if args.out:
        with args.out.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
