"""kb at 10k, 50k and 100k chunks: cold start, in-process latency (flat and HNSW), recall@10 of HNSW, RSS.

Measures the data folders ``bench/corpus_100k.py`` leaves in ``--work`` (its 10k and 50k snapshots and the
full build), each in a fresh child process (so nothing is warm): the time from starting the process to the first
answer (cold start), then 20 warm-up and ``--queries`` desk-dev queries in each mode, the vector leg flat and
HNSW interleaved query by query (``SearchEngine.approximate_vectors``), the HNSW graph's build time, its
recall@10 and @100 against the flat index over the stored vectors, and the process's resident set (VmRSS now,
VmHWM peak) after opening and after all searches. The import's own figures (time, peak RSS per batch) are read
from the build log ``import-<model>.jsonl``.

    .venv/bin/python bench/scale.py [--model hash512] [--work var/scale-100k] [--out bench/results]
"""

from __future__ import annotations

import time

STARTED = time.time()  # before any heavy import: the child's cold start counts from here

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "bench" / "data" / "desk-dev" / "queries.jsonl"
RESULTS = ROOT / "bench" / "results"
WARMUP = 20
#: Models whose import log (``bench/corpus_100k.py --model M --target N``) gives the real encode cost per chunk.
REAL_MODELS = ("m3e-small", "m3e-small-int8")


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else float("nan")


def _status() -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: round(int(status[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}


def child(data_dir: Path, model: str, n_queries: int) -> dict[str, Any]:
    """Open ``data_dir`` cold, answer one query, then measure (see module docstring); one JSON-able dict."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from bench.corpus_100k import bench_embedder
    from kb.config import Settings
    from kb.search.results import SearchRequest
    from kb.service import KnowledgeBase

    texts = [json.loads(line)["text"] for line in QUERIES.read_text(encoding="utf-8").splitlines() if line]
    settings = Settings(data_dir=data_dir, embedding_model=model, model_cache=ROOT / "var" / "models")
    kb = KnowledgeBase(settings, embedder=bench_embedder(model, settings.model_cache_dir)).open()
    kb.engine.search(SearchRequest(texts[0], mode="hybrid", limit=10))
    cold_s = time.time() - STARTED
    opened = _status()
    gen = kb.index.generation
    out: dict[str, Any] = {"chunks": len(gen.vectors), "cold_start_s": round(cold_s, 2), "rss_opened_mib": opened}
    started = time.perf_counter()
    gen.vectors.search(kb.embedder.encode_queries([texts[0]])[0], 10, approximate=True)
    out["hnsw_build_s"] = round(time.perf_counter() - started, 2)
    warm, measured = texts[1 : 1 + WARMUP], texts[1 + WARMUP :][:n_queries]
    lat: dict[str, list[float]] = {}
    for q in warm:
        for mode in ("hybrid", "bm25", "vector"):
            kb.engine.search(SearchRequest(q, mode=mode, limit=10))
    for i, q in enumerate(measured):
        variants = [("hybrid", False), ("hybrid", True), ("bm25", False), ("vector", False), ("vector", True)]
        for mode, approx in variants if i % 2 else variants[::-1]:
            kb.engine.approximate_vectors = approx
            t0 = time.perf_counter()
            kb.engine.search(SearchRequest(q, mode=mode, limit=10))
            lat.setdefault(f"{mode} {'hnsw' if approx else 'flat'}", []).append((time.perf_counter() - t0) * 1000)
    kb.engine.approximate_vectors = False
    out["latency_ms"] = {k: {"p50": _pct(v, 0.5), "p95": _pct(v, 0.95), "n": len(v)} for k, v in lat.items()}
    vectors = kb.embedder.encode_queries(measured)
    recall: dict[int, list[float]] = {10: [], 100: []}
    for row in np.asarray(vectors):
        exact = gen.vectors.search(row, 100)
        approx_hits = gen.vectors.search(row, 100, approximate=True)
        for k in recall:
            want = {(h.article_id, h.ord) for h in exact[:k]}
            got = {(h.article_id, h.ord) for h in approx_hits[:k]}
            recall[k].append(len(want & got) / max(len(want), 1))
    out["hnsw_recall"] = {f"@{k}": round(statistics.fmean(v), 4) for k, v in recall.items()}
    out["rss_after_searches_mib"] = _status()
    out["load"] = [round(x, 2) for x in os.getloadavg()]
    kb.close()
    return out


def _import_rows(work: Path, model: str) -> list[dict[str, Any]]:
    log = work / f"import-{model}.jsonl"
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line] if log.exists() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="hash512")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "scale-100k")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--report", action="store_true", help="only rewrite scale-100k.md from the saved JSON and the import logs"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.queries)))
        return
    if args.report:
        saved = json.loads((args.out / "scale-100k.json").read_text(encoding="utf-8"))
        saved["real_model_import"] = {m: r[-1] for m in REAL_MODELS if (r := _import_rows(args.work, m))}
        (args.out / "scale-100k.json").write_text(json.dumps(saved, indent=2), encoding="utf-8")
        (args.out / "scale-100k.md").write_text(markdown(saved), encoding="utf-8")
        return
    folders = [args.work / f"kb-10k-{args.model}", args.work / f"kb-50k-{args.model}", args.work / f"kb-{args.model}"]
    rows = []
    for folder in folders:
        if not folder.exists():
            print(f"skipped {folder}: not built (bench/corpus_100k.py --model {args.model})", file=sys.stderr)
            continue
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(folder), "--model", args.model, "--queries", str(args.queries)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["folder"] = folder.name
        rows.append(row)
        print(json.dumps(row), flush=True)
    imports = _import_rows(args.work, args.model)
    data = {"model": args.model, "sizes": rows, "import": imports[-1] if imports else None}
    checkpoints = []
    for row in rows:
        at = next((r for r in imports if r["chunks"] >= row["chunks"]), None)
        checkpoints.append(at)
    data["import_at_sizes"] = checkpoints
    data["real_model_import"] = {m: r[-1] for m in REAL_MODELS if (r := _import_rows(args.work, m))}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"scale-100k-{args.model}.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (args.out / "scale-100k.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    report = markdown(data)
    (args.out / "scale-100k.md").write_text(report, encoding="utf-8")
    print(report)


def markdown(data: dict[str, Any]) -> str:
    """The figures of :func:`main` as ``bench/results/scale-100k.md``: one column per size, growth 10k -> 100k."""
    rows: list[dict[str, Any]] = data["sizes"]
    at: list[dict[str, Any] | None] = data["import_at_sizes"]

    def lat(row: dict[str, Any], key: str) -> str:
        found = row["latency_ms"].get(key)
        return f"{found['p50']} / {found['p95']}" if found else "-"

    figures: list[tuple[str, Any]] = [
        ("chunks", lambda r, i: f"{r['chunks']:,}"),
        ("cold start s (process start to first answer)", lambda r, i: r["cold_start_s"]),
        (
            "RSS after open / after searches MiB",
            lambda r, i: (
                f"{r['rss_opened_mib']['VmRSS']} / "
                f"{r['rss_after_searches_mib']['VmRSS']} (peak {r['rss_after_searches_mib']['VmHWM']})"
            ),
        ),
        ("hybrid p50 / p95 ms, flat", lambda r, i: lat(r, "hybrid flat")),
        ("hybrid p50 / p95 ms, HNSW", lambda r, i: lat(r, "hybrid hnsw")),
        ("BM25 leg p50 / p95 ms", lambda r, i: lat(r, "bm25 flat")),
        ("vector leg p50 / p95 ms, flat", lambda r, i: lat(r, "vector flat")),
        ("vector leg p50 / p95 ms, HNSW", lambda r, i: lat(r, "vector hnsw")),
        ("HNSW build s (first approximate search)", lambda r, i: r["hnsw_build_s"]),
        ("HNSW recall@10 / @100 vs flat", lambda r, i: f"{r['hnsw_recall']['@10']} / {r['hnsw_recall']['@100']}"),
        ("import s to this size (cumulative)", lambda r, i: at[i]["s"] if at[i] else "-"),
        ("import peak RSS MiB (VmHWM)", lambda r, i: at[i]["rss"]["VmHWM"] if at[i] else "-"),
        ("load average (1 min) at the end", lambda r, i: r["load"][0]),
    ]
    head = "| figure | " + " | ".join(r["folder"] for r in rows) + " |"
    lines = [
        f"# kb at 10k / 50k / 100k chunks ({data['model']}; `bench/scale.py`)",
        "",
        "In process, one fresh process per size; latencies over the desk-dev queries after 20 warm-up ones, the",
        "variants interleaved query by query. The load average is that of the shared 2-core machine (other",
        "processes included): above 2, times are inflated and only ratios within one column compare.",
        "",
        "Vectors of the `hash512` encoder (kb's hash encoder at 512 dimensions): the vector leg's cost depends only on",
        "the index's shape (n x 512 float32, as m3e-small's), and encoding 100k chunks with m3e-small takes hours on",
        "2 cores; its own encode cost is measured per chunk (`bench/encode_memory.py`, the real-model import below).",
        "",
        head,
        "|---" * (len(rows) + 1) + "|",
    ]
    for name, get in figures:
        lines.append(f"| {name} | " + " | ".join(str(get(r, i)) for i, r in enumerate(rows)) + " |")
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        grow = last["chunks"] / first["chunks"]
        lines += ["", f"Growth from {first['chunks']:,} to {last['chunks']:,} chunks (x{grow:.1f}):", ""]
        for key in ("hybrid flat", "hybrid hnsw", "bm25 flat", "vector flat", "vector hnsw"):
            a, b = first["latency_ms"].get(key), last["latency_ms"].get(key)
            if a and b:
                lines.append(f"- {key}: p50 x{b['p50'] / a['p50']:.2f}, p95 x{b['p95'] / a['p95']:.2f}")
        lines.append(f"- cold start: x{last['cold_start_s'] / first['cold_start_s']:.2f}")
        rss = [r["rss_after_searches_mib"]["VmRSS"] for r in (first, last)]
        lines.append(f"- RSS after searches: x{rss[1] / rss[0]:.2f}")
    lines += [
        "",
        "HNSW recall here is over hash vectors, which are close to random in 512 dimensions: a worse case than a",
        "real model's (`bench/ann_recall.py` measures recall on m3e-small vectors).",
    ]
    for model, row in data.get("real_model_import", {}).items():
        wall, encode = row["s"], row["encode_s"]
        lines += [
            "",
            f"Real model `{model}`, {row['chunks']:,} chunks imported from nothing cached: {wall} s wall, of which "
            f"{encode} s encode ({row['chunks'] / max(encode, 1e-9):.1f} chunks/s); import + index / pure encode "
            f"x{wall / max(encode, 1e-9):.2f}; peak RSS {row['rss']['VmHWM']} MiB; load {row['load']}.",
        ]
    for extra in (RESULTS / "encode-memory-m3e-small.md", RESULTS / "scale-100k-notes.md"):
        if extra.exists():  # the encode figures (bench/encode_memory.py) and the hand-written notes of the session
            text = extra.read_text(encoding="utf-8").rstrip()
            lines += ["", "#" + text if text.startswith("# ") else text]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
