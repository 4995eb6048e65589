"""Variants of the resolved-ticket vote's formula, measured offline on desk-dev with the desk history.

    python bench/vote_variants.py dump --data-dir var/eval-desk-dev --history bench/data/desk-history/tickets.jsonl
    python bench/vote_variants.py sweep --out bench/results/vote-variants-session9.json

``dump``: on a copy of the KB with the history replayed (:func:`kb.evaluation.load_history`), every desk-dev query
runs through the real engine (hybrid, 100 results, the boost out of the way: a recorder stands in for the second
stage, :class:`train_ranker.Recorder`), and per query the fused top 100 (corpus ids, fused scores) and the
embedding and TF-IDF cosines of the query to every resolved history ticket (the two halves of
:meth:`kb.desk.similar.ClosedTicketIndex.nearest`'s similarity) are written to ``var/vote-variants.json``.

``sweep``: per variant (share of the embedding cosine in the similarity, neighbours ``k``, similarity bar, weight)
the votes of :func:`kb.search.rerank.desk.knn_evidence` (recency dated at the history's last close, as ``kb eval
--desk-history`` does) are added to the fused scores as :mod:`kb.search.rerank.boost` does, and nDCG@10 is
measured over the top 100. The variant is chosen on folds 0-2 only (best nDCG@10; ties to today's); folds 3-4
and the styles are reported beside it. Today's formula (share 0.5, k 10, bar 0.6, weight 2.0) is the first row.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_ranker

from kb.articles.store import ArticleFilter
from kb.config import Settings
from kb.desk.history import read_history
from kb.evaluation import eval_knowledge_base, load_corpus, load_history, read_queries
from kb.search.rerank.desk import knn_evidence
from kb.search.results import SearchRequest

ROOT = Path(__file__).resolve().parents[1]
DUMP = ROOT / "var" / "vote-variants.json"
TODAY = (0.5, 10, 0.6, 2.0)


def dump(data_dir: Path, history_path: Path) -> None:
    """Write :data:`DUMP` (module docstring)."""
    history = read_history(history_path)
    queries, qrels = read_queries(ROOT / "bench" / "data" / "desk-dev")
    roots = [ROOT.parent / "shared" / "data" / "articles" / c for c in train_ranker.DESK_ROOTS]
    out = []
    with eval_knowledge_base(Settings(rerank=False), data_dir, copy=True) as kb:
        doc_of = load_corpus(kb, ROOT / "bench" / "data" / "desk-dev", roots)
        print(json.dumps(load_history(kb, history, doc_of)), file=sys.stderr)
        recorder = train_ranker.Recorder()
        kb.engine.second_stage = recorder  # type: ignore[assignment]
        closed = kb.closed_tickets
        for i, q in enumerate(queries):
            request = SearchRequest(q["text"], mode="hybrid", limit=100, filters=ArticleFilter(statuses=()))
            kb.engine.search(request)
            ids, rows, _ = recorder.last
            text = kb.analyzer.normalize(q["text"])
            vector = kb.embedder.encode_queries([text])[0]  # as the engine encodes it
            with closed._lock:
                closed._refresh()
                emb = closed._matrix @ vector
                tfidf = np.asarray((closed._tfidf @ closed._vectorizer.transform([text]).T).toarray()).ravel()
                tickets = [r.external_id for r in closed._rows]
            fused = [row[train_ranker.FEATURES.index("fused")] for row in rows]
            out.append(
                {
                    "query_id": q["_id"],
                    "fold": q.get("fold"),
                    "style": q.get("style"),
                    "answerable": q["_id"] in qrels,
                    "docs": [doc_of.get(a, f"#{a}") for a in ids],
                    "labels": [qrels.get(q["_id"], {}).get(doc_of.get(a, ""), 0) for a in ids],
                    "fused": fused,
                    "tickets": tickets,
                    "emb": [round(float(x), 5) for x in emb],
                    "tfidf": [round(float(x), 5) for x in tfidf],
                }
            )
            if i % 50 == 0:
                print(f"{i}/{len(queries)}", file=sys.stderr)
    meta = {t.id: [t.article, t.closed_at.isoformat()] for t in history}
    DUMP.write_text(json.dumps({"history": meta, "queries": out}), encoding="utf-8")
    print(f"wrote {DUMP}")


def reencode(model: Path, history_path: Path, out: Path) -> None:
    """:data:`DUMP` with the embedding cosines recomputed with the model folder ``model`` (e.g. one made by ``kb
    model adapt``) on both sides, the query (normalised, as the engine encodes it) and each history ticket
    (:func:`kb.desk.similar.ticket_text` of the ticket as the replay stores it: title, description and
    :data:`kb.desk.history.RESOLUTION`; the intake's redaction is not applied); the fused scores stay those of
    the base model's index, so this measures the model in the similar-ticket vote alone. Writes ``out``."""
    from kb.desk.history import RESOLUTION
    from kb.desk.similar import ticket_text
    from kb.models import Ticket
    from kb.search.embedders.sentence_transformers import SentenceTransformerEmbedder
    from kb.search.text import TextAnalyzer

    data = json.loads(DUMP.read_text(encoding="utf-8"))
    analyzer = TextAnalyzer()
    embedder = SentenceTransformerEmbedder(str(model), str(model))
    by_id = {t.id: t for t in read_history(history_path)}
    first = data["queries"][0]["tickets"]
    texts = [
        analyzer.normalize(ticket_text(Ticket(title=t.title, description=t.description, resolution=RESOLUTION)))
        for t in (by_id[i] for i in first)
    ]
    tickets = embedder.encode_passages(texts)
    queries, _ = read_queries(ROOT / "bench" / "data" / "desk-dev")
    text_of = {q["_id"]: analyzer.normalize(q["text"]) for q in queries}
    vectors = embedder.encode_queries([text_of[q["query_id"]] for q in data["queries"]])
    for q, vector in zip(data["queries"], vectors, strict=True):
        assert q["tickets"] == first
        q["emb"] = [round(float(x), 5) for x in tickets @ vector]
    data["model"] = str(model)
    out.write_text(json.dumps(data), encoding="utf-8")
    print(f"wrote {out}")


def scores(q: dict[str, Any], meta: dict[str, Any], as_of: Any, variant: tuple[float, int, float, float]) -> Any:
    """The boosted scores of ``q``'s candidates under ``variant`` (share, k, bar, weight)."""
    import datetime as dt

    share, k, bar, weight = variant
    sims = share * np.array(q["emb"]) + (1 - share) * np.array(q["tfidf"])
    top = np.argsort(-sims)[:k]
    neighbours = []
    for i in top:
        article, closed_at = meta[q["tickets"][i]]
        age = (as_of - dt.datetime.fromisoformat(closed_at)).total_seconds() / 86400
        neighbours.append((q["tickets"][i], float(sims[i]), age, [article]))
    votes = knn_evidence(neighbours, None, bar).votes
    return np.array(q["fused"]) + weight * np.array([votes.get(d, 0.0) for d in q["docs"]])


#: The query groups every sweep reports: all, the two fold groups, each style, and layman per fold group.
GROUPS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "all": lambda q: True,
    "folds 0-2": lambda q: q["fold"] in (0, 1, 2),
    "folds 3-4": lambda q: q["fold"] in (3, 4),
    **{f"style:{s}": (lambda q, s=s: q["style"] == s) for s in ("layman", "ticket", "phrase", "keyword")},
    "layman 0-2": lambda q: q["style"] == "layman" and q["fold"] in (0, 1, 2),
    "layman 3-4": lambda q: q["style"] == "layman" and q["fold"] in (3, 4),
}


def sweep(out: Path, dump_path: Path = DUMP) -> None:
    """Measure the variants (module docstring) on ``dump_path`` and write ``out``."""
    import datetime as dt

    data = json.loads(dump_path.read_text(encoding="utf-8"))
    meta, queries = data["history"], data["queries"]
    as_of = max(dt.datetime.fromisoformat(c) for _, c in meta.values())
    groups = GROUPS
    rows = []
    bars = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
    grid = itertools.product((0.5, 0.6, 0.7, 0.8, 1.0), (5, 10, 20), bars, (1.0, 2.0, 3.0))
    for variant in [TODAY, *[v for v in grid if v != TODAY]]:
        boosted = [scores(q, meta, as_of, variant) for q in queries]
        _, per = train_ranker.ndcg(queries, boosted)
        row: dict[str, Any] = {"share": variant[0], "k": variant[1], "bar": variant[2], "weight": variant[3]}
        rows.append(row | _group(queries, per, groups))
    fused = [np.array(q["fused"]) for q in queries]
    _, per_fused = train_ranker.ndcg(queries, fused)
    best = max(rows, key=lambda r: (r["folds 0-2"], r is rows[0]))
    report = {"today": rows[0], "chosen on folds 0-2": best, "fused, no vote": _group(queries, per_fused, groups)}
    report["variants"] = rows
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for name in ("fused, no vote", "today", "chosen on folds 0-2"):
        print(name, json.dumps(report[name]))
    for r in sorted(rows, key=lambda r: -r["folds 0-2"])[:12]:
        print(json.dumps(r))


def _group(queries: list[dict[str, Any]], per: dict[str, float], groups: dict[str, Any]) -> dict[str, float]:
    out = {}
    for name, keep in groups.items():
        values = [per[q["query_id"]] for q in queries if q["query_id"] in per and keep(q)]
        out[name] = round(sum(values) / len(values), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--data-dir", type=Path, required=True)
    d.add_argument("--history", type=Path, required=True)
    s = sub.add_parser("sweep")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--dump", type=Path, default=DUMP, help="a dump (default var/vote-variants.json) or a reencode")
    r = sub.add_parser("reencode")
    r.add_argument("--model", type=Path, required=True)
    r.add_argument("--history", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.step == "dump":
        dump(args.data_dir, args.history)
    elif args.step == "reencode":
        reencode(args.model, args.history, args.out)
    else:
        sweep(args.out, args.dump)


if __name__ == "__main__":
    main()
