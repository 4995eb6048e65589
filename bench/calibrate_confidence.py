"""Calibrate the low-confidence thresholds (kb/search/confidence.py) for an embedding model.

Positives: the tidb-faq-dev queries whose top-1 hybrid result is the relevant section (they must stay
confident). Negatives: out-of-domain queries, the titles of the bundled Kubernetes and Windows articles asked
against the TiDB FAQ corpus (real questions an agent might type, whose answers are not in that corpus).
Chooses the thresholds that keep at least --keep of the positives confident and flag the most negatives.

Also measures the model's fusion floor (kb/search/fusion.py): the 5th percentile of the cosines between the
out-of-domain queries and every chunk of the corpus, i.e. the similarity that unrelated text reaches anyway.

    python bench/calibrate_confidence.py [--model m3e-small] [--keep 0.98]

Writes bench/results/confidence-<model>.json; copy the chosen thresholds and the floor into
kb/data/confidence.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import numpy as np

from kb.articles.content import validate_content
from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.ingest.markdown import iter_markdown_files, read_article_file
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "eval" / "tidb-faq-dev"


def signals(kb: KnowledgeBase, query: str) -> tuple[int | None, float, float]:
    result = kb.engine.search(SearchRequest(query, limit=1, filters=ArticleFilter(statuses=()), explain=True))
    conf = result.explain.confidence if result.explain else None
    top = result.results[0].article_id if result.results else None
    return top, float((conf.coverage if conf else None) or 0.0), float((conf.cosine if conf else None) or -1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="m3e-small")
    parser.add_argument("--keep", type=float, default=0.98, help="share of correct answers that must stay confident")
    args = parser.parse_args()
    corpus = [json.loads(line) for line in (DEV / "corpus.jsonl").open(encoding="utf-8")]
    lines = (DEV / "queries.jsonl").open(encoding="utf-8")
    queries = {q["_id"]: q["text"] for q in map(json.loads, lines)}
    with (DEV / "qrels.tsv").open(encoding="utf-8") as handle:
        qrels = {row["query-id"]: row["corpus-id"] for row in csv.DictReader(handle, delimiter="\t")}
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(Settings(data_dir=Path(tmp), embedding_model=args.model)).open()
        doc_of = {}
        for doc in corpus:
            content = validate_content({"title": doc["title"] or doc["_id"], "body": doc["text"]})
            doc_of[kb.store.create(content, "calibration").article.id] = doc["_id"]
        kb.index.apply_pending()
        positives, wrong = [], []
        for qid, text in queries.items():
            top, cov, cos = signals(kb, text)
            (positives if top is not None and doc_of[top] == qrels.get(qid) else wrong).append((cov, cos))
        negatives, unrelated = [], []
        vectors = kb.index.generation.vectors
        for root in ("k8s-troubleshooting", "windows-troubleshooting"):
            for path in iter_markdown_files(ROOT / "articles" / root):
                content = read_article_file(path)
                if content is not None:
                    negatives.append(signals(kb, content.title)[1:])
                    query = kb.embedder.encode_queries([kb.analyzer.normalize(content.title)])[0]
                    unrelated += [hit.score for hit in vectors.search(query, len(vectors))]
        kb.close()
    pos, neg, bad = np.array(positives), np.array(negatives), np.array(wrong) if wrong else np.zeros((0, 2))
    candidates = []
    for cov_min in np.round(np.arange(0.2, 0.81, 0.05), 2):
        for cos_min in np.round(np.arange(0.70, 1.001, 0.01), 2):
            keep = ((pos[:, 0] >= cov_min) | (pos[:, 1] >= cos_min)).mean()
            flagged = ~((neg[:, 0] >= cov_min) | (neg[:, 1] >= cos_min))
            wrong_flagged = (~((bad[:, 0] >= cov_min) | (bad[:, 1] >= cos_min))).mean() if len(bad) else 0.0
            candidates.append(
                (float(keep), float(flagged.mean()), float(wrong_flagged), float(cov_min), float(cos_min))
            )
    eligible = [c for c in candidates if c[0] >= args.keep]
    keep, flagged, wrong_flagged, cov_min, cos_min = max(eligible, key=lambda c: (c[1], c[0], c[3]))
    report = {
        "model": args.model,
        "coverage_min": cov_min,
        "cosine_min": cos_min,
        "correct_kept_confident": round(keep, 3),
        "out_of_domain_flagged": round(flagged, 3),
        "wrong_top1_flagged": round(wrong_flagged, 3),
        "positives": len(pos),
        "wrong_top1": len(bad),
        "negatives": len(neg),
        "vector_floor": round(float(np.percentile(unrelated, 5)), 2),
        "unrelated_cosine_percentiles_5_50_95": [round(float(v), 3) for v in np.percentile(unrelated, [5, 50, 95])],
    }
    out = ROOT / "bench" / "results" / f"confidence-{args.model.replace('/', '_')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
