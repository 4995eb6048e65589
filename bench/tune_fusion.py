"""Tune query-dependent fusion weights (kb/search/weighting.py) on desk-dev folds, offline.

Opens the evaluation KB a ``kb eval ... --data-dir DIR`` run built (the four shared collections), runs every
desk-dev query once per leg (``bm25`` and ``vector`` modes, 100 articles, with explain for the BM25 top
result's keyword coverage), then replays weighted fusion (kb.search.fusion.weighted, the model's vector floor,
the padding bar) for each candidate weighting and measures nDCG@10 with ir-measures per fold group. The
weighting chosen is the best on the tuning folds (0-2); the held-out folds (3-4) only report.

    python bench/tune_fusion.py /work/cache/desk-dev

Writes bench/results/fusion-desk-dev.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import ir_measures

from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.evaluation import read_qrels
from kb.search.fusion import order, weighted
from kb.search.results import SearchRequest
from kb.search.weighting import FusionWeights, bm25_weight
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "bench" / "data" / "desk-dev"
NDCG = ir_measures.parse_measure("nDCG@10")


def legs(kb: KnowledgeBase, doc_of: dict[int, str], text: str) -> dict[str, Any]:
    """Both legs' article scores for ``text`` and the weighting inputs."""
    out: dict[str, Any] = {}
    for mode in ("bm25", "vector"):
        result = kb.engine.search(
            SearchRequest(text, mode=mode, limit=100, filters=ArticleFilter(statuses=()), explain=True)  # type: ignore[arg-type]
        )
        out[mode] = {doc_of.get(h.article_id, "?"): h.score for h in result.results}
        if mode == "bm25" and result.explain is not None:
            out["coverage"] = result.explain.confidence.coverage
            out["identifiers"] = bool(result.explain.identifiers)
    out.setdefault("coverage", 0.0)
    out.setdefault("identifiers", False)
    return out


def replay(cache: dict[str, dict[str, Any]], weights: FusionWeights, floor: float) -> dict[str, dict[str, float]]:
    run = {}
    for qid, c in cache.items():
        w = bm25_weight(c["identifiers"], c["coverage"], weights)
        fused, _ = weighted({"bm25": c["bm25"], "vector": c["vector"]}, {"bm25": w, "vector": 1 - w}, {"vector": floor})
        run[qid] = {doc: 100.0 - i for i, doc in enumerate(order(fused)[:100])}
    return run


def ndcg(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], qids: list[str]) -> float:
    sub = {q: qrels[q] for q in qids}
    vals = {m.query_id: m.value for m in ir_measures.iter_calc([NDCG], sub, {q: run[q] for q in qids if run[q]})}
    return round(sum(vals.get(q, 0.0) for q in qids) / max(1, len(qids)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    args = parser.parse_args()
    qrels = read_qrels(DEV / "qrels.tsv")
    queries = [json.loads(line) for line in (DEV / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    queries = [q for q in queries if q["_id"] in qrels]
    kb = KnowledgeBase(Settings(data_dir=args.data_dir, database_url="", index_dir=None)).open()
    try:
        found, _ = kb.store.list_articles(ArticleFilter(statuses=()), 0, 10**9)
        doc_of = {a.id: f"{a.collection}/{a.source_path}" for a in found}
        cache = {q["_id"]: legs(kb, doc_of, q["text"]) for q in queries}
        floor = kb.engine.vector_floor
    finally:
        kb.close()
    groups = {
        "tune (folds 0-2)": [q["_id"] for q in queries if q["fold"] in (0, 1, 2)],
        "held out (folds 3-4)": [q["_id"] for q in queries if q["fold"] in (3, 4)],
        "all": [q["_id"] for q in queries],
    }
    for style in ("ticket", "layman", "phrase", "keyword"):
        groups[f"held out {style}"] = [q["_id"] for q in queries if q["fold"] in (3, 4) and q["style"] == style]
        groups[f"all {style}"] = [q["_id"] for q in queries if q["style"] == style]
    grid = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    rows = []
    for weak, strong, ident in itertools.product(grid, grid, grid):
        weights = FusionWeights(weak=weak, strong=strong, identifier=ident)
        run = replay(cache, weights, floor)
        rows.append({"weights": weights.__dict__, **{g: ndcg(qrels, run, ids) for g, ids in groups.items()}})
    static = [r for r in rows if r["weights"]["weak"] == r["weights"]["strong"] == r["weights"]["identifier"]]
    best = max(rows, key=lambda r: r["tune (folds 0-2)"])
    best_static = max(static, key=lambda r: r["tune (folds 0-2)"])
    report = {"chosen (best on folds 0-2)": best, "best static weight on folds 0-2": best_static, "static": static}
    out = ROOT / "bench" / "results" / "fusion-desk-dev.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "static"}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
