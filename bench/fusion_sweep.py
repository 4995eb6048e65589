"""Sweep the hybrid mode's BM25 weight with the real engine (issue 13: query-dependent fusion), per query.

Opens the evaluation KB that ``make eval`` builds (``var/eval-desk-dev``: the four shared collections), runs every
answerable desk-dev query in hybrid mode once per BM25 weight of ``--grid`` (an explicit ``bm25_weight``, so
everything else the engine does, duplicate folding, padding, confidence, is as in ``kb eval``), and records each
query's nDCG@10 (ir-measures, duplicates counted right after their result as ``kb eval`` does) with the
features a weighting can be computed from at query time: the BM25 leg's keyword coverage, identifiers, the
number of query terms and characters. Unlike ``bench/tune_fusion.py`` it replays nothing: every number is a
real search.

    PYTHONPATH=. python bench/fusion_sweep.py var/eval-desk-dev --out bench/results/fusion-sweep-desk-dev.json

Prints nDCG@10 per static weight for each style and fold group, and the best static weight of each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import ir_measures

from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.evaluation import read_qrels
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "bench" / "data" / "desk-dev"
NDCG = ir_measures.parse_measure("nDCG@10")
DEPTH = 100


def ranked_docs(kb: KnowledgeBase, doc_of: dict[int, str], request: SearchRequest) -> tuple[list[str], Any]:
    """Corpus ids in result order (folded duplicates right after their result) and the explain block."""
    result = kb.engine.search(request)
    ids = [aid for h in result.results for aid in (h.article_id, *(d.article_id for d in h.duplicates))]
    return [doc_of.get(aid, f"#{aid}") for aid in ids], result.explain


def ndcg_of(qrels: dict[str, int], ranked: list[str]) -> float:
    """nDCG@10 of one ranking against one query's graded judgements."""
    run = {"q": {doc: float(DEPTH - i) for i, doc in enumerate(ranked)}}
    return next((m.value for m in ir_measures.iter_calc([NDCG], {"q": qrels}, run)), 0.0) if ranked else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--grid", default="0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    grid = [float(w) for w in args.grid.split(",")]
    qrels = read_qrels(DEV / "qrels.tsv")
    queries = [json.loads(line) for line in (DEV / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    queries = [q for q in queries if q["_id"] in qrels]
    kb = KnowledgeBase(Settings(data_dir=args.data_dir, database_url="", index_dir=None)).open()
    rows: list[dict[str, Any]] = []
    try:
        found, _ = kb.store.list_articles(ArticleFilter(statuses=()), 0, 10**9)
        doc_of = {a.id: f"{a.collection}/{a.source_path}" for a in found}
        every = ArticleFilter(statuses=())
        for q in queries:
            _, explain = ranked_docs(
                kb, doc_of, SearchRequest(q["text"], mode="bm25", limit=DEPTH, filters=every, explain=True)
            )
            terms = kb.analyzer.terms(q["text"])
            row: dict[str, Any] = {
                "query_id": q["_id"], "style": q["style"], "fold": q["fold"], "chars": len(q["text"]),
                "terms": len(terms), "coverage": explain.confidence.coverage if explain else 0.0,
                "identifiers": bool(explain.identifiers) if explain else False, "ndcg": {},
            }  # fmt: skip
            for w in grid:
                request = SearchRequest(q["text"], mode="hybrid", limit=DEPTH, filters=every, bm25_weight=w)
                row["ndcg"][str(w)] = round(ndcg_of(qrels[q["_id"]], ranked_docs(kb, doc_of, request)[0]), 4)
            rows.append(row)
    finally:
        kb.close()
    groups: dict[str, list[dict[str, Any]]] = {"all": rows}
    for r in rows:
        groups.setdefault(f"style:{r['style']}", []).append(r)
        groups.setdefault("folds 0-2" if r["fold"] in (0, 1, 2) else "folds 3-4", []).append(r)
    print("| group | n | " + " | ".join(f"w={w}" for w in grid) + " | best |")
    print("|---|---:|" + "---:|" * (len(grid) + 1))
    for name, members in sorted(groups.items()):
        means = {w: sum(r["ndcg"][str(w)] for r in members) / len(members) for w in grid}
        best = max(means, key=lambda w: means[w])
        print(f"| {name} | {len(members)} | " + " | ".join(f"{means[w]:.3f}" for w in grid) + f" | {best} |")
    if args.out:
        args.out.write_text(json.dumps({"grid": grid, "rows": rows}, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
