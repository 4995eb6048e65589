"""What the ticket model's second query encode costs: CPU ms per desk-dev query, beside the chunk model's encode.

    python bench/ticket_encode_cost.py --ticket-model var/models/desk-tickets-s13 \
        --out bench/results/ticket-encode-cost-s11.json

With ``KB_TICKET_EMBEDDING_MODEL`` set to another model than the KB's, each hybrid query is encoded twice: by the
chunk model for the vector leg and by the ticket model for the resolved-ticket vote
(:meth:`kb.desk.resolved_votes.ResolvedTicketVotes.votes`). Both embedders are loaded as
:class:`kb.service.KnowledgeBase` loads them (:func:`kb.search.embedders.factory.configured_embedder` with the default
settings: m3e-small on ONNX Runtime, an adapted folder on torch), warmed once, then every desk-dev query
(normalised as the engine does) is encoded by each in turn, interleaved, ``--rounds`` times. Times are
``time.process_time`` (CPU seconds of the process, summing its threads), so a loaded machine inflates them less
than wall time; torch's idle threads spin-waiting on a loaded machine still count (compare ``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from kb.config import Settings
from kb.evaluation import read_queries
from kb.search.embedders.factory import configured_embedder
from kb.search.text import TextAnalyzer

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (0-1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> None:
    """Measure and write ``--out`` (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticket-model", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    settings = Settings()
    analyzer = TextAnalyzer()
    load = {
        "chunk model": settings.embedding_model,
        "ticket model": args.ticket_model,
    }
    embedders = {role: configured_embedder(settings, name) for role, name in load.items()}
    for embedder in embedders.values():
        embedder.encode_queries(["预热"])
    queries, _ = read_queries(ROOT / "bench" / "data" / "desk-dev")
    texts = [analyzer.analyze_query(q["text"]).normalized for q in queries]
    times: dict[str, list[float]] = {role: [] for role in embedders}
    for _ in range(args.rounds):
        for text in texts:
            for role, embedder in embedders.items():
                started = time.process_time()
                embedder.encode_queries([text])
                times[role].append((time.process_time() - started) * 1000)
    report = {
        "models": load,
        "queries": len(texts),
        "rounds": args.rounds,
        "load_average": os.getloadavg(),
        "cpu_ms": {
            role: {
                "p50": round(statistics.median(v), 1),
                "p95": round(percentile(v, 0.95), 1),
                "mean": round(statistics.fmean(v), 1),
            }
            for role, v in times.items()
        },
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
