"""The resolved-ticket vote measured on real desk history: desk-dev with and without it, weights, learning curve.

    python bench/desk_history.py --data-dir /work/cache/eval-desk-dev \\
        --history ../wt-s8-tickets/bench/data/desk-history/tickets.jsonl --out bench/results/desk-history-s8.json

One process, on a copy of the desk-dev KB (``kb.evaluation.eval_knowledge_base(copy=True)``: the cached KB never
holds the tickets). The history is replayed through the desk (:mod:`kb.desk.history`) in ``closed_at`` order, a
share at a time (``--shares``, cumulative: the first 25 % of the tickets by closing time, then the first 50 %, ...),
and after each share every weight of ``--weights`` is measured with the real engine (``kb.evaluation.run_mode``,
hybrid mode, every desk-dev query), the vote dated at the last close of the share (the KB as of that day). Each
share gets a fresh similar-ticket index (its TF-IDF fitted on the tickets present, as a KB opened that day).

The weight (and the neighbours' similarity bar, ``--min-similarities``) is chosen on desk-dev folds 0-2 at the
full history (best nDCG@10, ties to the smaller weight); folds 3-4 are reported beside it. Time: with ``--timing``,
at the chosen weight and full history, each query is run with
and without the boost, interleaved (A/B/B/A), and the CPU time of the vote itself is recorded.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.desk.history import read_history
from kb.desk.similar import ClosedTicketIndex
from kb.evaluation import EvalReport, eval_knowledge_base, load_corpus, load_history, read_queries, run_mode
from kb.search.rerank.boost import DeskBoost
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = ("windows-troubleshooting", "k8s-troubleshooting", "tidb-faq", "linux-command")
GROUPS = ("style:layman", "style:ticket", "style:phrase", "style:keyword", "folds 0-2", "folds 3-4")


def summary(report: EvalReport) -> dict[str, Any]:
    """nDCG@10 / R@1 overall and per group, and the confidence counts, of a hybrid run."""
    groups = report.groups["hybrid"]
    conf = report.confidence["hybrid"]
    rows = report.per_query["hybrid"]
    return {
        "nDCG@10": report.metrics["hybrid"]["nDCG@10"],
        "R@1": report.metrics["hybrid"]["R@1"],
        "groups": {g: groups[g]["nDCG@10"] for g in GROUPS if g in groups},
        "confident_wrong": int(conf["all"]["confident_wrong"]),
        "answerable": int(conf["all"]["answerable"]),
        "flagged": int(conf["all"]["flagged"]),
        "unanswerable": int(conf["all"]["unanswerable"]),
        "unanswerable_boosted": sum(1 for r in rows if not r["answerable"] and r["desk_boosted"]),
        "queries_boosted": sum(1 for r in rows if r["desk_boosted"]),
        "latency_ms": report.latency_ms["hybrid"],
    }


def measure(kb: KnowledgeBase, queries: list[dict[str, Any]], qrels: Any, doc_of: dict[int, str]) -> dict[str, Any]:
    """:func:`summary` of a hybrid run of every query, with the per-query rows."""
    report = EvalReport("desk-dev", len(doc_of), len(qrels))
    run_mode(kb, "hybrid", queries, qrels, doc_of, report)
    return summary(report) | {"per_query": report.per_query["hybrid"]}


def timing(kb: KnowledgeBase, queries: list[dict[str, Any]], boost: DeskBoost) -> dict[str, float]:
    """Per query, wall ms with and without the boost (interleaved A/B/B/A, mean of each pair) and the CPU ms of
    the vote call; p50 and p95 of each."""
    votes = boost.votes
    cpu: list[float] = []

    class Timed:
        def votes(self, *args: Any, **kw: Any) -> Any:
            started = time.thread_time()
            try:
                return votes.votes(*args, **kw)
            finally:
                cpu.append((time.thread_time() - started) * 1000)

    boost.votes = Timed()
    on, off = [], []
    for q in queries:
        request = SearchRequest(q["text"], limit=10, filters=ArticleFilter(statuses=()))
        pair: dict[bool, list[float]] = {True: [], False: []}
        for use in (True, False, False, True):
            kb.engine.desk_boost = boost if use else None
            started = time.perf_counter()
            kb.engine.search(request)
            pair[use].append((time.perf_counter() - started) * 1000)
        on.append(sum(pair[True]) / 2)
        off.append(sum(pair[False]) / 2)
    kb.engine.desk_boost = boost
    boost.votes = votes

    def pct(values: list[float], p: float) -> float:
        values = sorted(values)
        return round(values[min(len(values) - 1, int(len(values) * p))], 2)

    diff = [a - b for a, b in zip(on, off, strict=True)]
    return {
        "on_p50": pct(on, 0.5),
        "on_p95": pct(on, 0.95),
        "off_p50": pct(off, 0.5),
        "off_p95": pct(off, 0.95),
        "added_p50": pct(diff, 0.5),
        "added_p95": pct(diff, 0.95),
        "vote_cpu_p50": pct(cpu, 0.5),
        "vote_cpu_p95": pct(cpu, 0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="the desk-dev evaluation KB (copied, not changed)")
    parser.add_argument("--history", type=Path, required=True)
    parser.add_argument("--articles", type=Path, default=ROOT.parent / "shared" / "data" / "articles")
    parser.add_argument("--weights", default="0.1,0.2,0.3,0.5")
    parser.add_argument("--min-similarities", default="0.5", help="neighbour similarity bars swept with the weights")
    parser.add_argument("--shares", default="", help="shares below 1 of the learning curve, e.g. 0.25,0.5")
    parser.add_argument("--curve-weight", type=float, help="weight of the shares below 1 (default: the chosen one)")
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    bars = [float(m) for m in args.min_similarities.split(",")]
    curve = sorted(float(s) for s in args.shares.split(",") if s and float(s) < 1.0)
    folder = ROOT / "bench" / "data" / "desk-dev"
    queries, qrels = read_queries(folder)
    history = read_history(args.history)
    out: dict[str, Any] = {"history": str(args.history), "tickets": len(history), "weights": weights, "runs": []}

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")

    with eval_knowledge_base(Settings(), args.data_dir, copy=True) as kb:
        doc_of = load_corpus(kb, folder, [args.articles / c for c in COLLECTIONS])
        boost = kb.engine.desk_boost
        assert boost is not None
        print("no history", flush=True)
        none = {"share": 0.0, "weight": 0.0, "min_similarity": None, "load": _load()}
        out["runs"].append(none | measure(kb, queries, qrels, doc_of))
        save()
        # the full history first, to choose the weight on folds 0-2; then the learning curve at that weight
        loaded = load_history(kb, history, doc_of)
        kb.desk_votes.closed = ClosedTicketIndex(kb.database, kb.analyzer, kb.embedder)
        for m in bars:
            kb.desk_votes.min_similarity = m
            for w in weights:
                boost.weight = w
                print(f"share 1.0 weight {w} min similarity {m}", flush=True)
                run = {"share": 1.0, "weight": w, "min_similarity": m, "load": _load(), "loaded": loaded}
                out["runs"].append(run | measure(kb, queries, qrels, doc_of))
                save()
        full = [r for r in out["runs"] if r["share"] == 1.0]
        best = max(full, key=lambda r: (r["groups"]["folds 0-2"], -r["weight"], r["min_similarity"]))
        out["chosen_weight"] = chosen = args.curve_weight or best["weight"]
        out["chosen_min_similarity"] = bar = best["min_similarity"]
        boost.weight, kb.desk_votes.min_similarity = chosen, bar
        if args.timing:
            print("timing", flush=True)
            out["timing"] = timing(kb, queries, boost) | {"load": _load()}
            save()
    if curve:
        with eval_knowledge_base(Settings(), args.data_dir, copy=True) as kb:
            doc_of = load_corpus(kb, folder, [args.articles / c for c in COLLECTIONS])
            assert kb.engine.desk_boost is not None
            kb.engine.desk_boost.weight, kb.desk_votes.min_similarity = chosen, bar
            for share in curve:
                part = history[: round(len(history) * share)]
                loaded = load_history(kb, part, doc_of)
                kb.desk_votes.closed = ClosedTicketIndex(kb.database, kb.analyzer, kb.embedder)
                print(f"share {share} weight {chosen}", flush=True)
                run = {"share": share, "weight": chosen, "min_similarity": bar, "load": _load(), "loaded": loaded}
                out["runs"].append(run | measure(kb, queries, qrels, doc_of))
                save()
    for r in out["runs"]:
        g = r["groups"]
        print(
            f"share {r['share']:.2f} w {r['weight']:.2f} m {r['min_similarity']}: nDCG {r['nDCG@10']:.3f}"
            f" layman {g.get('style:layman', 0):.3f}"
            f" f0-2 {g['folds 0-2']:.3f} f3-4 {g['folds 3-4']:.3f} wrong {r['confident_wrong']}/{r['answerable']}"
            f" flagged {r['flagged']}/{r['unanswerable']} load {r['load']}"
        )


def _load() -> str:
    """The load average (1, 5, 15 minutes) now."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()
