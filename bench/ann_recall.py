"""Recall@10 of the HNSW option (kb.search.ann) against the exact flat index, on kb's own stored chunk vectors.

The vectors are those of a built data folder (no re-encoding); the queries are the desk-dev queries encoded with
the same model. Reported: recall@10 and @100 (share of the flat top-k that HNSW returns), the graph's build time,
and the time per search of both, interleaved (noisy on a shared machine; recall is not). A second corpus, 10x
larger, repeats the stored vectors with small Gaussian noise, to show how recall and build time grow.

    .venv/bin/python bench/ann_recall.py --data-dir DIR [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from kb.config import Settings
from kb.models import Chunk
from kb.search import ann
from kb.search.embedders.base import decode_vectors, l2_normalize
from kb.search.vectors import VectorIndex
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "bench" / "data" / "desk-dev" / "queries.jsonl"


def measure(vectors: np.ndarray, queries: np.ndarray) -> dict[str, float]:
    """Recall@10/@100, build seconds and mean ms per search of HNSW against flat over ``vectors``."""
    index = VectorIndex(vectors.shape[1])
    index.add(np.arange(len(vectors), dtype=np.int64), vectors)
    started = time.perf_counter()
    index.search(queries[0], 10, approximate=True)  # builds the graph
    build_s = time.perf_counter() - started
    recall: dict[int, list[float]] = {10: [], 100: []}
    flat_s: list[float] = []
    hnsw_s: list[float] = []
    for q in queries:
        t0 = time.perf_counter()
        exact = index.search(q, 100)
        t1 = time.perf_counter()
        approx = index.search(q, 100, approximate=True)
        t2 = time.perf_counter()
        flat_s.append(t1 - t0)
        hnsw_s.append(t2 - t1)
        for k in recall:
            want = {(h.article_id, h.ord) for h in exact[:k]}
            recall[k].append(len(want & {(h.article_id, h.ord) for h in approx[:k]}) / len(want))
    return {
        "vectors": len(vectors),
        "recall@10": round(statistics.fmean(recall[10]), 4),
        "recall@100": round(statistics.fmean(recall[100]), 4),
        "build_s": round(build_s, 2),
        "flat_ms": round(statistics.fmean(flat_s) * 1000, 3),
        "hnsw_ms": round(statistics.fmean(hnsw_s) * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench-peer")
    parser.add_argument("--model", default="m3e-small")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--scale", type=int, default=10, help="size of the second corpus, in copies of the first")
    args = parser.parse_args()
    kb = KnowledgeBase(Settings(data_dir=args.data_dir, embedding_model=args.model, database_url=""))
    with kb.database.session() as session:
        blobs = session.scalars(select(Chunk.embedding).where(Chunk.model == kb.embedder.name)).all()
    vectors = decode_vectors(list(blobs), kb.embedder.dimension)
    texts = [json.loads(line)["text"] for line in QUERIES.read_text(encoding="utf-8").splitlines() if line]
    queries = kb.embedder.encode_queries(texts)
    rng = np.random.default_rng(14)
    larger = l2_normalize(np.vstack([vectors + rng.normal(0, 0.02, vectors.shape) for _ in range(args.scale)]))
    rows = [measure(vectors, queries), measure(larger.astype(np.float32), queries)]
    params = {"M": ann.HNSW_M, "efConstruction": ann.EF_CONSTRUCTION, "efSearch": ann.EF_SEARCH}
    data = {"model": args.model, "queries": len(texts), "hnsw": params, "results": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ann-recall.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    lines = [
        f"# HNSW against flat ({args.model}, {len(texts)} desk-dev queries, M={ann.HNSW_M}, "
        f"efConstruction={ann.EF_CONSTRUCTION}, efSearch={ann.EF_SEARCH})",
        "",
        "Second row: the stored vectors repeated with Gaussian noise (sigma 0.02), re-normalised",
        "(`bench/ann_recall.py`; one faiss thread, as kb searches).",
        "",
        "| vectors | recall@10 | recall@100 | build s | flat ms/search | hnsw ms/search |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['vectors']} | {r['recall@10']} | {r['recall@100']} | {r['build_s']} | {r['flat_ms']} "
            f"| {r['hnsw_ms']} |"
        )
    (args.out / "ann-recall.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
