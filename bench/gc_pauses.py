"""Cycle-collector pauses during searches, with and without :func:`kb.runtime.freeze_after_warmup`, A/B.

Each run is a fresh process: it opens the knowledge base of ``--data-dir`` (the shared articles; the data folder of
``bench/peer.py`` / ``bench/profile_search.py``, built there by ``bench/profile_search.py`` when empty), warms it
as ``bench/peer_kb_side.py`` does (the first 20 desk-dev queries in every mode), applies its arm, then runs every
desk-dev query (``bench/data/desk-dev/queries.jsonl``, 250) in BM25 and hybrid mode (order rotated per query,
limit 10) for ``--rounds`` rounds (3: 1,500 searches; round 1 meets each query for the first time and fills the
per-text caches). Recorded through :data:`gc.callbacks`: collections and pause ms per generation while searching;
per mode, p50 / p95 / p99 / max wall ms of a search (``perf_counter``: a pause lands in one search's latency).

Arms: ``off`` (CPython's defaults), ``freeze`` (:func:`kb.runtime.freeze_after_warmup`), ``freeze-t0`` (also
``gc.set_threshold(--threshold0)``: a higher generation-0 threshold). ``--runs N`` runs every arm N times in
alternating order (ABAB, then BABA, ...) in child processes and prints the medians over the runs; the machine's
load average is recorded at the start and end of each run.

    PYTHONPATH=. python bench/gc_pauses.py --data-dir var/bench-peer --runs 4 --out bench/results/gc-freeze-s12.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jieba
from peer import percentiles as latency_ms  # bench/ is this script's own folder on sys.path

from kb.config import Settings
from kb.runtime import freeze_after_warmup
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "bench" / "data" / "desk-dev" / "queries.jsonl"
MODES = ("bm25", "hybrid")
ARMS = ("off", "freeze", "freeze-t0")
WARMUP = 20  # as bench/peer.py and bench/peer_kb_side.py
LIMIT = 10


class PauseLog:
    """Collections per generation and their pauses, from :data:`gc.callbacks` (``start`` / ``stop``): wall seconds
    (``perf_counter``: what the waiting search sees, other processes included) and the collecting thread's CPU
    seconds (``thread_time``: the collector's own work, far less distorted by a loaded machine)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.wall = [0.0, 0.0, 0.0]
        self.cpu = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = (0.0, 0.0)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = (time.perf_counter(), time.thread_time())
            return
        wall, cpu = time.perf_counter() - self._started[0], time.thread_time() - self._started[1]
        generation = info["generation"]
        self.count[generation] += 1
        self.wall[generation] += wall
        self.cpu[generation] += cpu
        self.longest[generation] = max(self.longest[generation], wall)

    def as_dict(self) -> dict[str, Any]:
        return {
            "collections": self.count,
            "pause_ms": [round(s * 1000, 1) for s in self.wall],
            "pause_cpu_ms": [round(s * 1000, 1) for s in self.cpu],
            "longest_ms": [round(s * 1000, 1) for s in self.longest],
        }


def run_arm(data_dir: Path, model: str, arm: str, rounds: int, threshold0: int) -> dict[str, Any]:
    """One run of ``arm`` in this process (module docstring)."""
    jieba.setLogLevel(60)
    load_start = os.getloadavg()
    queries = [json.loads(line)["text"] for line in QUERIES.read_text(encoding="utf-8").splitlines() if line]
    kb = KnowledgeBase(Settings(data_dir=data_dir, embedding_model=model, database_url="")).open()
    log = PauseLog()
    wall: dict[str, list[float]] = {m: [] for m in MODES}
    first: dict[str, list[float]] = {m: [] for m in MODES}
    try:
        for query in queries[:WARMUP]:
            for mode in MODES:
                kb.engine.search(SearchRequest(query, mode=mode, limit=LIMIT))
        frozen = freeze_after_warmup(arm != "off")
        if arm == "freeze-t0":
            gc.set_threshold(threshold0, *gc.get_threshold()[1:])
        tracked_start = len(gc.get_objects())
        gc.callbacks.append(log)
        started = time.perf_counter()
        for round_ in range(rounds):
            for i, query in enumerate(queries):
                shift = (i + round_) % len(MODES)
                for mode in MODES[shift:] + MODES[:shift]:
                    t0 = time.perf_counter()
                    kb.engine.search(SearchRequest(query, mode=mode, limit=LIMIT))
                    wall[mode].append(time.perf_counter() - t0)
                    if round_ == 0:
                        first[mode].append(wall[mode][-1])
        elapsed = time.perf_counter() - started
        gc.callbacks.remove(log)
        tracked_end = len(gc.get_objects())
    finally:
        kb.close()
    return {
        "arm": arm,
        "threshold": list(gc.get_threshold()),
        "searches": sum(len(s) for s in wall.values()),
        "frozen": frozen,
        "tracked_after_warmup": tracked_start,
        "tracked_at_end": tracked_end,
        "search_s": round(elapsed, 2),
        **log.as_dict(),
        "latency_ms": {m: latency_ms(s) for m, s in wall.items()},
        "round1_latency_ms": {m: latency_ms(s) for m, s in first.items()},
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }


def median_table(results: list[dict[str, Any]], arms: list[str]) -> str:
    """Markdown: per arm, the median over its runs of the gen-2 collections and pauses and of each latency figure."""

    def med(arm: str, pick: Any) -> float:
        return round(statistics.median(pick(r) for r in results if r["arm"] == arm), 2)

    lines = [
        "| arm | runs | frozen | tracked at end | collections gen 0 / 1 / 2 | gen-2 pause ms wall / CPU "
        "| longest gen-2 ms | all pauses ms wall / CPU | bm25 p50 / p95 / p99 / max ms "
        "| hybrid p50 / p95 / p99 / max ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        runs = sum(r["arm"] == arm for r in results)
        cells = [
            arm,
            str(runs),
            str(int(med(arm, lambda r: r["frozen"]))),
            str(int(med(arm, lambda r: r["tracked_at_end"]))),
            " / ".join(str(med(arm, lambda r, g=g: r["collections"][g])) for g in range(3)),
            f"{med(arm, lambda r: r['pause_ms'][2])} / {med(arm, lambda r: r['pause_cpu_ms'][2])}",
            str(med(arm, lambda r: r["longest_ms"][2])),
            f"{med(arm, lambda r: sum(r['pause_ms']))} / {med(arm, lambda r: sum(r['pause_cpu_ms']))}",
        ]
        for mode in MODES:
            cells.append(
                " / ".join(
                    str(med(arm, lambda r, p=p, m=mode: r["latency_ms"][m][p])) for p in ("p50", "p95", "p99", "max")
                )
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench-peer")
    parser.add_argument("--model", default="m3e-small")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the 250 queries (x2 modes = searches)")
    parser.add_argument("--arms", default="off,freeze", help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--threshold0", type=int, default=10_000, help="generation-0 threshold of arm freeze-t0")
    parser.add_argument("--runs", type=int, default=4, help="runs of each arm, alternating, in child processes")
    parser.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="write every run and the medians here (JSON)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_arm(args.data_dir, args.model, args.child, args.rounds, args.threshold0)))
        return
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    results: list[dict[str, Any]] = []
    for run in range(args.runs):
        for arm in arms if run % 2 == 0 else arms[::-1]:
            child = [sys.executable, __file__, "--child", arm, "--data-dir", str(args.data_dir)]
            child += ["--model", args.model, "--rounds", str(args.rounds), "--threshold0", str(args.threshold0)]
            done = subprocess.run(child, capture_output=True, text=True, check=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    table = median_table(results, arms)
    print(table)
    if args.out:
        report = {"command": " ".join(sys.argv), "cores": os.cpu_count(), "runs": results, "median_table": table}
        args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
