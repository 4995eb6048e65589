"""Peer bench: kb against the floors of its own parts, in one process, interleaved, on the same chunks and queries.

The floors are what a user could assemble from the same parts with the same query encoder:

- **BM25 floor**: bm25s (Lù 2024, https://github.com/xhluca/bm25s; Lucene idf, k1=1.2, b=0.75) over jieba tokens of
  kb's own chunk texts, top 100 chunks, grouped to articles;
- **vector floor**: kb's query encoder + faiss ``IndexFlatIP`` over kb's own stored chunk vectors (no re-encoding),
  top 100 chunks, grouped to articles;
- **hybrid floor**: one encode, both of the above, reciprocal rank fusion (k=60, Cormack et al. 2009) of the
  article rankings.

kb runs :meth:`kb.search.engine.SearchEngine.search` in each mode (limit 10). Every query runs every system once per
round, in an order rotated per query, after a warm-up, so drift on the machine hits all alike. Reported: p50 / p95 /
p99 in ms and the kb / floor ratio per mode. Queries: ``bench/data/desk-dev/queries.jsonl`` (colloquial desk
queries, answerable and not). Corpus: the four shared article folders, imported once into a cached data folder
(``--data-dir``, default ``var/bench-peer``; stored embeddings are reused on later runs). A data folder indexed
before the block tokens store (:mod:`kb.search.block_store`) gets it filled first, from the stored chunks.

    .venv/bin/python bench/peer.py [--data-dir DIR] [--model m3e-small] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bm25s
import faiss
import jieba
import numpy as np
from sqlalchemy import select

from kb.config import Settings
from kb.models import Article, Chunk
from kb.search.block_store import chunk_blocks
from kb.search.embedders.base import decode_vectors
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
SHARED_ARTICLES = ROOT.parent / "shared" / "data" / "articles"
FOLDERS = ("k8s-troubleshooting", "windows-troubleshooting", "tidb-faq", "linux-command")
QUERIES = ROOT / "bench" / "data" / "desk-dev" / "queries.jsonl"
CANDIDATES = 100
LIMIT = 10
RRF_K = 60
WARMUP = 20


def tokens(text: str) -> list[str]:
    """jieba's precise-mode tokens, lower-cased, without white space and punctuation-only tokens."""
    return [t.lower() for t in jieba.lcut(text) if t.strip() and any(ch.isalnum() for ch in t)]


def by_article(keys: list[int], article_of: np.ndarray, limit: int) -> list[int]:
    """Article ids in order of their best chunk among ``keys`` (chunk positions), at most ``limit``."""
    seen: dict[int, None] = {}
    for key in keys:
        seen.setdefault(int(article_of[key]), None)
        if len(seen) == limit:
            break
    return list(seen)


class Floors:
    """The floors over kb's own chunks and stored vectors (see module docstring)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        with kb.database.session() as session:
            rows = session.execute(
                select(Chunk.article_id, Chunk.text, Chunk.embedding).where(Chunk.model == kb.embedder.name)
            ).all()
        self.article_of = np.array([r[0] for r in rows], dtype=np.int64)
        self.bm25 = bm25s.BM25(k1=1.2, b=0.75)
        self.bm25.index([tokens(r[1]) for r in rows], show_progress=False)
        vectors = decode_vectors([r[2] for r in rows], kb.embedder.dimension)
        self.faiss = faiss.IndexFlatIP(vectors.shape[1])
        self.faiss.add(np.ascontiguousarray(vectors))
        self.embedder = kb.embedder
        self.chunks = len(rows)

    def bm25_chunks(self, query: str) -> list[int]:
        terms = tokens(query)
        if not terms:
            return []
        found, scores = self.bm25.retrieve([terms], k=min(CANDIDATES, self.chunks), show_progress=False)
        return [int(i) for i, s in zip(found[0], scores[0], strict=True) if s > 0]

    def vector_chunks(self, vector: np.ndarray) -> list[int]:
        _, found = self.faiss.search(vector.reshape(1, -1), CANDIDATES)
        return [int(i) for i in found[0] if i >= 0]

    def bm25_search(self, query: str) -> list[int]:
        return by_article(self.bm25_chunks(query), self.article_of, LIMIT)

    def vector_search(self, query: str) -> list[int]:
        vector = self.embedder.encode_queries([query])[0]
        return by_article(self.vector_chunks(vector), self.article_of, LIMIT)

    def hybrid_search(self, query: str) -> list[int]:
        vector = self.embedder.encode_queries([query])[0]
        fused: dict[int, float] = defaultdict(float)
        for ranking in (
            by_article(self.bm25_chunks(query), self.article_of, CANDIDATES),
            by_article(self.vector_chunks(vector), self.article_of, CANDIDATES),
        ):
            for rank, article in enumerate(ranking, start=1):
                fused[article] += 1.0 / (RRF_K + rank)
        return sorted(fused, key=lambda a: -fused[a])[:LIMIT]


def fill_blocks(kb: KnowledgeBase) -> dict[str, float] | None:
    """Store the block tokens of every chunk in the live generation when its store is empty (a data folder indexed
    before :mod:`kb.search.block_store` existed; ``kb index rebuild`` would fill it too, but makes new BM25 segments):
    the same rows the indexer writes. Returns the blocks added and the CPU seconds, or None when nothing was done."""
    store = kb.index.generation.blocks
    if store.count():
        return None
    started = time.process_time()
    with kb.database.session() as session:
        titles = dict(session.execute(select(Article.id, Article.title)).all())
        rows = session.execute(
            select(Chunk.article_id, Chunk.heading_path, Chunk.text).where(Chunk.model == kb.embedder.name)
        ).all()
    blocks = [b for a, h, t in rows for b in chunk_blocks(titles[a], h or [], t, kb.analyzer)]
    added = store.add(blocks, kb.analyzer)
    return {"blocks_added": added, "cpu_s": round(time.process_time() - started, 1)}


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 / p95 / p99 (inclusive quantiles) / max / mean of ``samples`` (seconds), in ms rounded to 0.01."""
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "p50": round(q[49], 2),
        "p95": round(q[94], 2),
        "p99": round(q[98], 2),
        "max": round(ms[-1], 2),
        "mean": round(statistics.fmean(ms), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench-peer")
    parser.add_argument("--model", default="m3e-small")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--rounds", type=int, default=2, help="times every query runs on every system")
    args = parser.parse_args()
    jieba.setLogLevel(60)
    kb = KnowledgeBase(Settings(data_dir=args.data_dir, embedding_model=args.model, database_url="")).open()
    try:
        started = time.perf_counter()
        report = kb.writer.import_paths([SHARED_ARTICLES / f for f in FOLDERS], "bench-peer")
        import_s = time.perf_counter() - started
        filled = fill_blocks(kb)
        floors = Floors(kb)
        queries = [json.loads(line)["text"] for line in QUERIES.read_text(encoding="utf-8").splitlines() if line]
        systems: dict[str, Callable[[str], Any]] = {
            "kb hybrid": lambda q: kb.engine.search(SearchRequest(q, mode="hybrid", limit=LIMIT)),
            "floor hybrid": floors.hybrid_search,
            "kb bm25": lambda q: kb.engine.search(SearchRequest(q, mode="bm25", limit=LIMIT)),
            "floor bm25": floors.bm25_search,
            "kb vector": lambda q: kb.engine.search(SearchRequest(q, mode="vector", limit=LIMIT)),
            "floor vector": floors.vector_search,
        }
        names = list(systems)
        for query in queries[:WARMUP]:
            for run in systems.values():
                run(query)
        samples: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}  # this thread's CPU seconds (not the encoder's)
        first_round: dict[str, list[float]] = {name: [] for name in names}  # each query seen for the first time
        for round_ in range(args.rounds):
            for i, query in enumerate(queries):
                shift = (i + round_) % len(names)
                for name in names[shift:] + names[:shift]:
                    c0, t0 = time.thread_time(), time.perf_counter()
                    systems[name](query)
                    samples[name].append(time.perf_counter() - t0)
                    cpu[name].append(time.thread_time() - c0)
                    if round_ == 0 and i >= WARMUP:
                        first_round[name].append(samples[name][-1])
        status = kb.index.status()
    finally:
        kb.close()
    results = {name: percentiles(s) for name, s in samples.items()}
    cpu_ms = {name: percentiles(s) for name, s in cpu.items()}
    load = os.getloadavg()
    first = {name: percentiles(s) for name, s in first_round.items()}
    ratios = {
        mode: {p: round(results[f"kb {mode}"][p] / results[f"floor {mode}"][p], 2) for p in ("p50", "p95")}
        for mode in ("hybrid", "bm25", "vector")
    }
    first_ratios = {
        mode: {p: round(first[f"kb {mode}"][p] / first[f"floor {mode}"][p], 2) for p in ("p50", "p95")}
        for mode in ("hybrid", "bm25", "vector")
    }
    data = {
        "corpus": {"articles": status.articles, "chunks": status.db_chunks, "folders": FOLDERS},
        "model": args.model,
        "queries": len(queries),
        "rounds": args.rounds,
        "import_s_this_run": round(import_s, 1),
        "import_report": report.as_dict(),
        "block_store_filled": filled,
        "latency_ms": results,
        "kb_over_floor": ratios,
        "first_sight_latency_ms": first,
        "first_sight_kb_over_floor": first_ratios,
        "thread_cpu_ms": cpu_ms,
        "load_average_end": load,
        "targets": {"hybrid": 1.3, "bm25": 3.0, "vector": 1.2},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peer-shared.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    lines = [
        f"# kb against the floors of its parts ({status.articles} articles, {status.db_chunks} chunks, {args.model})",
        "",
        f"{len(queries)} desk-dev queries x {args.rounds} rounds, interleaved in one process (`bench/peer.py`);",
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end ({os.cpu_count()} cores).",
        "",
        "| mode | kb p50 / p95 ms | floor p50 / p95 ms | kb / floor p50 | kb / floor p95 | target |",
        "|---|---|---|---|---|---|",
    ]
    for mode in ("hybrid", "bm25", "vector"):
        k, f = results[f"kb {mode}"], results[f"floor {mode}"]
        lines.append(
            f"| {mode} | {k['p50']} / {k['p95']} | {f['p50']} / {f['p95']} | {ratios[mode]['p50']}x "
            f"| {ratios[mode]['p95']}x | <= {data['targets'][mode]}x |"
        )
    lines += [
        "",
        f"Round 1 only, queries after the {WARMUP} warm-up ones (each seen for the first time: kb's per-text caches",
        "of snippets and coverage are cold for them):",
        "",
        "| mode | kb p50 / p95 ms | floor p50 / p95 ms | kb / floor p50 | kb / floor p95 |",
        "|---|---|---|---|---|",
    ]
    for mode in ("hybrid", "bm25", "vector"):
        k, f = first[f"kb {mode}"], first[f"floor {mode}"]
        r = first_ratios[mode]
        lines.append(f"| {mode} | {k['p50']} / {k['p95']} | {f['p50']} / {f['p95']} | {r['p50']}x | {r['p95']}x |")
    lines += [
        "",
        "CPU time of the searching thread (`time.thread_time`, ms; ONNX Runtime's own threads not counted, the same",
        "encoder in kb and the floor): work done, which a loaded machine distorts far less than latency:",
        "",
        "| mode | kb p50 / p95 | floor p50 / p95 | kb / floor p50 | kb / floor p95 |",
        "|---|---|---|---|---|",
    ]
    for mode in ("hybrid", "bm25", "vector"):
        k, f = cpu_ms[f"kb {mode}"], cpu_ms[f"floor {mode}"]
        lines.append(
            f"| {mode} | {k['p50']} / {k['p95']} | {f['p50']} / {f['p95']} | "
            f"{k['p50'] / max(f['p50'], 1e-6):.2f}x | {k['p95'] / max(f['p95'], 1e-6):.2f}x |"
        )
    (args.out / "peer-shared.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
