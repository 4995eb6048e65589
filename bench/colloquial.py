"""A/B of the colloquial-query steps (issue 13 item 4) on one built desk-dev KB, in one process.

Opens the KB in ``--data-dir`` (built by ``make eval`` or copied from a built one; nothing is imported or
re-embedded here), then for each named variant sets the engine's switches and runs the desk-dev queries in the
given modes, printing nDCG@10 overall, per style and per fold group (folds 0-2 tune, 3-4 check), and the p50 / p95
of one search (in-process, ``limit=100``, ``explain``). ``--tidb`` runs tidb-faq-dev instead (a temporary KB is
built: slow). Variants:

- ``base``: no desk synonyms, no feedback, no outline blend (the engine before this work);
- ``desk`` / ``desk=W``: desk synonyms at weight W;
- ``prf`` / ``prf=docs,terms,weight,max_coverage``: RM3 feedback;
- ``outline`` / ``outline=W``: the vector leg's candidates blended with the article outline vectors
  (:mod:`kb.search.outline`, weight W, default :data:`kb.search.outline.OUTLINE_WEIGHT`);
- combinations joined by ``+`` (``desk+prf``).

Usage: ``python bench/colloquial.py --data-dir var/desk-base base desk desk+prf --modes hybrid,bm25``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import ir_measures

from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.evaluation import DEPTH, FOLD_GROUPS, _measure, read_qrels
from kb.search.desk_terms import DESK_WEIGHT
from kb.search.outline import OUTLINE_WEIGHT
from kb.search.relevance_feedback import FeedbackSettings
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase

DESK = Path(__file__).parent / "data" / "desk-dev"


def configure(kb: KnowledgeBase, variant: str) -> None:
    """Set the engine's switches for ``variant`` (see module docstring)."""
    kb.engine.outlines.weight = 0.0
    expansion = kb.engine.expansion
    expansion.desk_weight = 0.0
    expansion.feedback = None
    for part in variant.split("+"):
        name, _, arg = part.partition("=")
        if name == "base":
            continue
        if name == "desk":
            expansion.desk_weight = float(arg) if arg else DESK_WEIGHT
        elif name == "prf":
            vals = [float(x) for x in arg.split(",")] if arg else []
            keys = ["docs", "terms", "weight", "max_coverage"]
            kw: dict[str, Any] = {
                k: (int(v) if k in ("docs", "terms") else v) for k, v in zip(keys, vals, strict=False)
            }
            expansion.feedback = FeedbackSettings(**kw)
        elif name == "outline":
            kb.engine.outlines.weight = float(arg or OUTLINE_WEIGHT)
            kb.engine.outlines.prepare(kb.index.generation.bm25.version)
        else:
            raise SystemExit(f"unknown variant part {part!r}")


def run(kb: KnowledgeBase, doc_of: dict[int, str], folder: Path, modes: list[str]) -> dict[str, Any]:
    qrels = read_qrels(folder / "qrels.tsv")
    queries = [json.loads(x) for x in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    queries = [q for q in queries if q["_id"] in qrels]
    out: dict[str, Any] = {}
    for mode in modes:
        runs: dict[str, dict[str, float]] = {}
        top1: dict[str, str | None] = {}
        took = []
        for q in queries:
            started = time.perf_counter()
            req = SearchRequest(q["text"], mode=mode, limit=DEPTH, filters=ArticleFilter(statuses=()), explain=True)
            result = kb.engine.search(req)
            took.append((time.perf_counter() - started) * 1000)
            ids = [a for h in result.results for a in (h.article_id, *(d.article_id for d in h.duplicates))]
            ranked = [doc_of.get(a, f"#{a}") for a in ids]
            runs[q["_id"]] = {d: float(DEPTH - i) for i, d in enumerate(ranked)}
            top1[q["_id"]] = ranked[0] if ranked else None
        groups: dict[str, list[str]] = {"all": [q["_id"] for q in queries]}
        for q in queries:
            if q.get("style"):
                groups.setdefault(q["style"], []).append(q["_id"])
            for name, folds in FOLD_GROUPS.items():
                if q.get("fold") in folds:
                    groups.setdefault(name, []).append(q["_id"])
        per_q = {
            m.query_id: m.value
            for m in ir_measures.iter_calc(
                [ir_measures.parse_measure("nDCG@10")], qrels, {k: v for k, v in runs.items() if v}
            )
        }
        res = {name: _measure({q: qrels[q] for q in ids}, runs, top1)["nDCG@10"] for name, ids in groups.items()}
        lay34 = [q["_id"] for q in queries if q.get("style") == "layman" and q.get("fold") in (3, 4)]
        res["layman 3-4"] = round(sum(per_q.get(q, 0.0) for q in lay34) / max(1, len(lay34)), 4)
        took.sort()
        res["p50"] = round(took[len(took) // 2], 1)
        res["p95"] = round(took[int(len(took) * 0.95)], 1)
        out[mode] = res
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--modes", default="hybrid,bm25,vector")
    parser.add_argument("--folder", type=Path, default=DESK)
    args = parser.parse_args()
    settings = Settings().model_copy(update={"data_dir": args.data_dir, "database_url": "", "index_dir": None})
    kb = KnowledgeBase(settings).open()
    try:
        found, _ = kb.store.list_articles(ArticleFilter(statuses=()), 0, 10**9)
        if args.folder.joinpath("corpus.jsonl").exists():
            doc_of = {a.id: a.source_path or "" for a in found}
        else:
            doc_of = {a.id: f"{a.collection}/{a.source_path}" for a in found}
        for variant in args.variants:
            configure(kb, variant)
            result = run(kb, doc_of, args.folder, args.modes.split(","))
            for mode, res in result.items():
                print(json.dumps({"variant": variant, "mode": mode, **res}, ensure_ascii=False), flush=True)
    finally:
        kb.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
