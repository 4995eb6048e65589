"""Train the second-stage ranker (kb/search/rerank) and measure it on folds and sets it never saw.

Two steps, so that training is fast to iterate:

``dump``: open (or build) an evaluation KB, run every query of a set through the real engine (hybrid, 100
results, the ranker off) with a recorder in place of the second stage, and write each query's fused candidates
with their features (:data:`kb.search.rerank.features.FEATURES`, computed by the engine's own code) and graded
labels from the qrels to ``var/ranker-<set>.json``::

    python bench/train_ranker.py dump desk-dev --data-dir var/eval-desk-dev
    python bench/train_ranker.py dump tidb-faq-dev --data-dir var/eval-tidb-faq-dev

``train``: LightGBM LambdaRank (objective ``lambdarank``, graded gains 0/1/2) with

- 5-fold cross-validation over desk-dev's folds (train on 4, test on the held-out fold), per fold the nDCG@10 of
  the fused order and of the reranked one, over all candidates the dump holds;
- desk-dev -> tidb-faq-dev and tidb-faq-dev -> desk-dev (train on one set, test on the other), a check that the
  ranker does not only fit desk-dev;
- the final model on all of desk-dev, written to ``kb/data/ranker-<model>.txt`` with its manifest ``.json``
  (parameters, data, the measured gains); the results to ``bench/results/ranker-<model>.json``::

    python bench/train_ranker.py train

``dump --desk-history FILE`` then ``train-votes``: the same with the desk history replayed into a copy of the KB
and each candidate's resolved-ticket vote recorded; the ranker with the vote as a feature against the fused
order, the default boost and today's second stage, trained on folds 0-2 and tested on folds 3-4, and 5-fold
cross-validated (``bench/results/ranker-vote-m3e-small.json``; session 9: below the boost)::

    python bench/train_ranker.py dump desk-dev --data-dir var/eval-desk-dev \\
        --desk-history bench/data/desk-history/tickets.jsonl
    python bench/train_ranker.py train-votes

``time``: the time the second stage adds to a hybrid search (``python bench/train_ranker.py time --data-dir DIR``).

nDCG@10 here is over the reranked candidates only (what the dump holds); ``kb eval`` with the ranker on is the
measurement of record (duplicate folding and the tail after the candidates make small differences).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ir_measures
import numpy as np

from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.desk.history import read_history
from kb.evaluation import _read_jsonl, eval_knowledge_base, load_corpus, load_history, read_qrels
from kb.search.rerank import FEATURE_POOL, Reranked
from kb.search.rerank.features import FEATURES, FIELDS, QueryEvidence, feature_matrix
from kb.search.rerank.model import model_paths
from kb.search.results import RankerInfo, SearchRequest

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "desk-dev": (ROOT / "bench" / "data" / "desk-dev", True),
    "tidb-faq-dev": (ROOT.parent / "shared" / "data" / "eval" / "tidb-faq-dev", False),
}
DESK_ROOTS = ("windows-troubleshooting", "k8s-troubleshooting", "tidb-faq", "linux-command")
NDCG = ir_measures.parse_measure("nDCG@10")
#: Fused candidates dumped per query (the ranker's depth).
DEPTH = 100
PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "learning_rate": 0.05,
    "num_leaves": 3,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "lambdarank_truncation_level": 20,
    "num_threads": 1,
    "seed": 13,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}
ROUNDS = 30


class Recorder:
    """Stands in for :class:`kb.search.rerank.SecondStage`: records the features, keeps the fused order."""

    def __init__(self, votes: Any = None) -> None:
        self.last: tuple[list[int], list[list[float]], list[float]] = ([], [], [])
        self.votes = votes

    def apply(
        self,
        bm25: Any,
        terms: Sequence[str],
        identifiers: Sequence[str],
        legs: Mapping[str, Any],
        ranked: Sequence[Any],
        per_leg: Any,
        query: Any,
        explain: bool,
    ) -> Reranked:
        words = list(dict.fromkeys([*terms, *identifiers]))
        evidence = QueryEvidence(
            list(terms),
            list(identifiers),
            bm25.idf(terms),
            bm25.term_articles(words, FIELDS) if words else {},
            list(legs.get("bm25", ()))[:FEATURE_POOL],
            list(legs.get("vector", ()))[:FEATURE_POOL],
        )
        head = list(ranked[:DEPTH])
        rows = feature_matrix(evidence, [(a.id, s) for a, s in head], per_leg)
        text, vector, viewer = query
        votes = self.votes.votes(text, vector, [a.id for a, _ in head], viewer).votes if self.votes else {}
        self.last = ([a.id for a, _ in head], rows.tolist(), [votes.get(a.id, 0.0) for a, _ in head])
        return Reranked(list(ranked), {}, RankerInfo("recorder", len(head), {}, 0.0))


def dump(name: str, data_dir: Path, history: Path | None = None) -> None:
    """Write ``var/ranker-<name>.json`` (module docstring); with ``history``, replay it into a copy of the KB
    first (:func:`kb.evaluation.load_history`) and record each candidate's resolved-ticket vote beside its
    features (``votes``; the file is then ``var/ranker-<name>-history.json``)."""
    folder, markdown = SETS[name]
    qrels = read_qrels(folder / "qrels.tsv")
    queries = [q for q in _read_jsonl(folder / "queries.jsonl") if q["_id"] in qrels or q.get("answerable") is False]
    articles = [ROOT.parent / "shared" / "data" / "articles" / c for c in DESK_ROOTS] if markdown else []
    settings = Settings(rerank=False)
    out = []
    with eval_knowledge_base(settings, data_dir, copy=history is not None) as kb:
        doc_of = load_corpus(kb, folder, articles)
        if history is not None:
            print(json.dumps(load_history(kb, read_history(history), doc_of)), file=sys.stderr)
        recorder = Recorder(kb.desk_votes if history is not None else None)
        kb.engine.second_stage = recorder  # type: ignore[assignment]
        for i, q in enumerate(queries):
            request = SearchRequest(q["text"], mode="hybrid", limit=DEPTH, filters=ArticleFilter(statuses=()))
            kb.engine.search(request)
            ids, rows, votes = recorder.last
            recorder.last = ([], [], [])
            docs = [doc_of.get(a, f"#{a}") for a in ids]
            labels = [qrels.get(q["_id"], {}).get(d, 0) for d in docs]
            out.append(
                {
                    "query_id": q["_id"],
                    "fold": q.get("fold"),
                    "style": q.get("style"),
                    "answerable": q["_id"] in qrels,
                    "docs": docs,
                    "labels": labels,
                    "features": rows,
                    "votes": votes,
                }
            )
            if i % 25 == 0:
                print(f"{name}: {i}/{len(queries)}", file=sys.stderr)
    path = ROOT / "var" / f"ranker-{name}{'-history' if history is not None else ''}.json"
    path.write_text(json.dumps({"features": list(FEATURES), "queries": out}), encoding="utf-8")
    print(f"wrote {path} ({len(out)} queries)")


def ndcg(queries: list[dict[str, Any]], scores: list[np.ndarray] | None) -> tuple[float, dict[str, float]]:
    """Mean nDCG@10 over the answerable ``queries`` (a query without relevant candidates counts 0), ordering
    each query's candidates by ``scores`` (None: the fused order); and per query."""
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for i, q in enumerate(queries):
        if not q["answerable"]:
            continue
        qrels[q["query_id"]] = {d: g for d, g in zip(q["docs"], q["labels"], strict=True) if g > 0} or {"-": 1}
        n = len(q["docs"])
        if scores is None:
            order = list(range(n))
        else:
            s = scores[i]
            order = sorted(range(n), key=lambda j: (-s[j], j))
        run[q["query_id"]] = {q["docs"][j]: float(n - r) for r, j in enumerate(order)}
    per = {m.query_id: m.value for m in ir_measures.iter_calc([NDCG], qrels, {k: v for k, v in run.items() if v})}
    values = {q: per.get(q, 0.0) for q in qrels}
    return round(sum(values.values()) / max(1, len(values)), 4), values


def rows_of(q: dict[str, Any], vote: bool) -> np.ndarray:
    """A query's feature rows, with its candidates' resolved-ticket votes as the last column when ``vote``."""
    x = np.array(q["features"], dtype=np.float64).reshape(len(q["docs"]), len(FEATURES))
    return np.column_stack([x, np.array(q["votes"], dtype=np.float64)]) if vote else x


def fit(queries: list[dict[str, Any]], rounds: int = ROUNDS, vote: bool = False) -> Any:
    """LambdaRank on the answerable ``queries`` with a relevant candidate; ``vote``: the vote as a feature."""
    import lightgbm

    train = [q for q in queries if q["answerable"] and q["docs"] and max(q["labels"]) > 0]
    x = np.vstack([rows_of(q, vote) for q in train])
    y = np.array([label for q in train for label in q["labels"]], dtype=np.float64)
    names = [*FEATURES, "desk_vote"] if vote else list(FEATURES)
    data = lightgbm.Dataset(x, y, group=[len(q["docs"]) for q in train], feature_name=names)
    return lightgbm.train(PARAMS, data, num_boost_round=rounds)


def predict(model: Any, queries: list[dict[str, Any]], vote: bool = False) -> list[np.ndarray]:
    return [model.predict(rows_of(q, vote), num_threads=1) if q["docs"] else np.zeros(0) for q in queries]


def train_votes(rounds: int, boost: float, stage_weight: float) -> None:
    """The ranker with the resolved-ticket vote (``var/ranker-desk-dev-history.json``, from ``dump
    --desk-history``): trained on desk-dev folds 0-2 and measured on folds 3-4 (the split the team tunes and
    reports on), and 5-fold cross-validated; beside it the fused order, the default boost (fused + ``boost`` x
    vote, :mod:`kb.search.rerank.boost`) and today's second stage (ranker without the vote + ``stage_weight`` x
    vote). Writes ``bench/results/ranker-vote-m3e-small.json``."""
    desk = json.loads((ROOT / "var" / "ranker-desk-dev-history.json").read_text(encoding="utf-8"))["queries"]

    def column(q: dict[str, Any], name: str) -> np.ndarray:
        return rows_of(q, False)[:, FEATURES.index(name)] if q["docs"] else np.zeros(0)

    def votes(qs: list[dict[str, Any]]) -> list[np.ndarray]:
        return [np.array(q["votes"], dtype=np.float64) for q in qs]

    def boosted(qs: list[dict[str, Any]]) -> list[np.ndarray]:
        return [column(q, "fused") + boost * v for q, v in zip(qs, votes(qs), strict=True)]

    def variants(train: list[dict[str, Any]], test: list[dict[str, Any]]) -> dict[str, list[np.ndarray]]:
        plain, with_vote = fit(train, rounds), fit(train, rounds, vote=True)
        stage = [s + stage_weight * v for s, v in zip(predict(plain, test), votes(test), strict=True)]
        return {
            "fused": [column(q, "fused") for q in test],
            "fused + boost": boosted(test),
            "ranker + vote (today's second stage)": stage,
            "ranker with vote feature": predict(with_vote, test, vote=True),
            "ranker with vote feature + boost": [
                s + boost * v for s, v in zip(predict(with_vote, test, vote=True), votes(test), strict=True)
            ],
        }

    def measured(test: list[dict[str, Any]], scored: dict[str, list[np.ndarray]]) -> dict[str, Any]:
        out = {}
        for name, scores in scored.items():
            value, per = ndcg(test, scores)
            out[name] = {"nDCG@10": value, "by_style": by_style(test, per)}
        return out

    report: dict[str, Any] = {"rounds": rounds, "boost": boost, "stage_weight": stage_weight}
    low = [q for q in desk if q["fold"] in (0, 1, 2)]
    high = [q for q in desk if q["fold"] in (3, 4)]
    report["train folds 0-2, test folds 3-4"] = measured(high, variants(low, high))
    held: dict[str, list[np.ndarray]] = {}
    order: list[dict[str, Any]] = []
    for fold in range(5):
        test = [q for q in desk if q["fold"] == fold]
        for name, scores in variants([q for q in desk if q["fold"] != fold], test).items():
            held.setdefault(name, []).extend(scores)
        order.extend(test)
    report["5-fold cross-validated"] = measured(order, held)
    for split in ("train folds 0-2, test folds 3-4", "5-fold cross-validated"):
        for name, row in report[split].items():
            print(f"{split:34} {name:40} {row['nDCG@10']:.4f} {row['by_style']}")
    out = ROOT / "bench" / "results" / "ranker-vote-m3e-small.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")


def by_style(queries: list[dict[str, Any]], per: dict[str, float]) -> dict[str, float]:
    styles: dict[str, list[float]] = {}
    for q in queries:
        if q["query_id"] in per and q.get("style"):
            styles.setdefault(q["style"], []).append(per[q["query_id"]])
    return {s: round(sum(v) / len(v), 4) for s, v in sorted(styles.items())}


def train(model_name: str, rounds: int) -> None:
    desk = json.loads((ROOT / "var" / "ranker-desk-dev.json").read_text(encoding="utf-8"))["queries"]
    tidb_path = ROOT / "var" / "ranker-tidb-faq-dev.json"
    tidb = json.loads(tidb_path.read_text(encoding="utf-8"))["queries"] if tidb_path.exists() else []
    report: dict[str, Any] = {"features": list(FEATURES), "params": PARAMS, "rounds": rounds, "folds": {}}
    held_scores: list[np.ndarray] = [np.zeros(0)] * len(desk)
    for fold in range(5):
        model = fit([q for q in desk if q["fold"] != fold], rounds)
        test_idx = [i for i, q in enumerate(desk) if q["fold"] == fold]
        test = [desk[i] for i in test_idx]
        scores = predict(model, test)
        for i, s in zip(test_idx, scores, strict=True):
            held_scores[i] = s
        before, _ = ndcg(test, None)
        after, _ = ndcg(test, scores)
        report["folds"][str(fold)] = {
            "queries": sum(q["answerable"] for q in test),
            "fused": before,
            "reranked": after,
            "gain": round(after - before, 4),
        }
        print(f"fold {fold}: fused {before:.4f} -> reranked {after:.4f}")
    before, per_before = ndcg(desk, None)
    after, per_after = ndcg(desk, held_scores)
    report["cross_validated"] = {
        "fused": before,
        "reranked": after,
        "gain": round(after - before, 4),
        "fused_by_style": by_style(desk, per_before),
        "reranked_by_style": by_style(desk, per_after),
    }
    print("5-fold CV desk-dev:", json.dumps(report["cross_validated"]))
    final = fit(desk, rounds)
    if tidb:
        fused, _ = ndcg(tidb, None)
        cross = {"fused": fused, "desk-dev -> tidb-faq-dev": ndcg(tidb, predict(final, tidb))[0]}
        other = fit(tidb, rounds)
        cross["tidb-faq-dev -> desk-dev"] = ndcg(desk, predict(other, desk))[0]
        cross["desk-dev fused"] = before
        report["cross_set"] = cross
        print("cross-set:", json.dumps(cross))
    importance = final.feature_importance(importance_type="gain")
    report["gain_importance"] = {
        n: round(float(v), 2) for n, v in sorted(zip(FEATURES, importance, strict=True), key=lambda kv: -kv[1])
    }
    model_file, manifest_file = model_paths(model_name)
    model_file.write_text(final.model_to_string(), encoding="utf-8")
    manifest = {
        "features": list(FEATURES),
        "embedding_model": model_name,
        "library": "lightgbm lambdarank",
        "params": PARAMS,
        "rounds": rounds,
        "trained_on": "bench/data/desk-dev, all 5 folds, answerable "
        "queries with a relevant candidate in the fused top 100 (bench/train_ranker.py)",
        "cross_validated": report["cross_validated"],
        "cross_set": report.get("cross_set"),
    }
    manifest_file.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    out = ROOT / "bench" / "results" / f"ranker-{model_name}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {model_file}, {manifest_file}, {out}")


def timing(data_dir: Path, limit: int, repeats: int) -> None:
    """p50/p95 of one hybrid search with and without the second stage, interleaved per query in one process (so
    the machine's load falls on both alike), on desk-dev's queries; writes bench/results/ranker-time.json."""
    import time

    folder, _ = SETS["desk-dev"]
    queries = _read_jsonl(folder / "queries.jsonl")
    with eval_knowledge_base(Settings(rerank=True), data_dir) as kb:
        stage = kb.engine.second_stage
        assert stage is not None, "no ranker for this model"
        took: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(repeats):
            for q in queries:
                for name in ("off", "on"):
                    kb.engine.second_stage = stage if name == "on" else None
                    request = SearchRequest(q["text"], mode="hybrid", limit=limit, filters=ArticleFilter(statuses=()))
                    started = time.perf_counter()
                    kb.engine.search(request)
                    took[name].append((time.perf_counter() - started) * 1000)
    added = sorted(on - off for on, off in zip(took["on"], took["off"], strict=True))
    out: dict[str, Any] = {"limit": limit, "searches": len(added)}
    for name, values in [*took.items(), ("added", added)]:
        values.sort()
        out[name] = {"p50": round(values[len(values) // 2], 2), "p95": round(values[int(len(values) * 0.95)], 2)}
    out["load_average"] = [round(v, 2) for v in os.getloadavg()]
    path = ROOT / "bench" / "results" / "ranker-time.json"
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    d = sub.add_parser("dump")
    d.add_argument("set", choices=sorted(SETS))
    d.add_argument("--data-dir", type=Path, required=True)
    d.add_argument("--desk-history", type=Path, help="replay these resolved tickets first and record the votes")
    t = sub.add_parser("train")
    t.add_argument("--model", default="m3e-small")
    t.add_argument("--rounds", type=int, default=ROUNDS)
    v = sub.add_parser("train-votes", help="the ranker with the resolved-ticket vote (after dump --desk-history)")
    v.add_argument("--rounds", type=int, default=ROUNDS)
    v.add_argument("--boost", type=float, default=2.0, help="the default boost's weight (kb.search.rerank.boost)")
    v.add_argument("--stage-weight", type=float, default=1.0, help="today's second stage's vote weight")
    m = sub.add_parser("time")
    m.add_argument("--data-dir", type=Path, required=True)
    m.add_argument("--limit", type=int, default=10)
    m.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if args.step == "dump":
        dump(args.set, args.data_dir, args.desk_history)
    elif args.step == "train-votes":
        train_votes(args.rounds, args.boost, args.stage_weight)
    elif args.step == "time":
        timing(args.data_dir, args.limit, args.repeats)
    else:
        train(args.model, args.rounds)


if __name__ == "__main__":
    main()
