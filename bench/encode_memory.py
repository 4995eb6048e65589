"""Encode speed and peak memory of m3e-small on ONNX Runtime: fixed batches against token-budget batches, with
and without ONNX Runtime's CPU memory arena (issue 14 item 4: import RSS <= 1 GiB).

``--chunks`` real passages (the shared Markdown collections and the TiDB docs tarball, chunked by kb's chunker
with the model's tokenizer, as ``kb import`` embeds them: title / headings / text), in one seeded order, are
encoded by each variant in a fresh child process (so each peak is its own), twice in turn, interleaved:

- ``batch32-arena``: 32 passages per pass, arena on (kb before session 6);
- ``batch32``: 32 per pass, arena off;
- ``budget-arena``: at most 32 passages and :data:`kb.search.embedders.onnx.TOKEN_BUDGET` tokens per pass, arena on
  (kb's default since session 6);
- ``budget``: the same, arena off.

Each child reports passages per second of wall time and of CPU time (all its threads: less distorted by other
processes on a loaded machine than wall time), its peak resident set (VmHWM, MiB, after loading the model and after
encoding) and the largest cosine distance of its vectors from the first variant's (padding differs, the
vectors must not). Writes ``encode-memory-<model>.json`` and ``.md`` under ``--out``.

    .venv/bin/python bench/encode_memory.py [--model m3e-small] [--chunks 2000] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "articles"
FOLDERS = ["windows-troubleshooting", "k8s-troubleshooting", "tidb-faq", "linux-command"]
VARIANTS = {
    "batch32-arena": (10**9, True),
    "batch32": (10**9, False),
    "budget-arena": (None, True),
    "budget": (None, False),
}


def _hwm() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def passages(n: int, model: str) -> list[str]:
    """``n`` embedding inputs of real chunks (see module docstring), seeded order."""
    sys.path.insert(0, str(ROOT))
    import tarfile
    import tempfile

    from kb.articles.chunking import chunk_article, embedding_input
    from kb.errors import KBError
    from kb.ingest.markdown import read_article_file
    from kb.search.embedders.factory import load_embedder

    embedder = load_embedder(model, cache_dir=ROOT / "var" / "models")
    files = [p for f in FOLDERS for p in sorted((SHARED / f).rglob("*.md"))]
    tmp = Path(tempfile.mkdtemp(prefix="kb-encode-"))
    for tarball in sorted((SHARED / "tidb-docs-full").glob("*.tar.gz")):
        with tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="data")
    files += sorted(tmp.rglob("*.md"))
    random.Random(14).shuffle(files)
    texts: list[str] = []
    for path in files:
        try:
            content = read_article_file(path)
        except KBError:
            continue
        if content is None:
            continue
        for chunk in chunk_article(content.title, content.body, embedder.count_tokens, 320, 48):
            texts.append(embedding_input(content.title, chunk.heading_path, chunk.text))
        if len(texts) >= n:
            break
    return texts[:n]


def child(variant: str, model: str, texts_file: Path, vectors_out: Path) -> dict[str, Any]:
    """Encode the passages in ``texts_file`` with ``variant``; speed, peaks, vectors saved to ``vectors_out``."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from kb.search.embedders.factory import M3E_SMALL_INT8, m3e_small_path
    from kb.search.embedders.onnx import TOKEN_BUDGET, OnnxBertEmbedder

    budget, arena = VARIANTS[variant]
    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    embedder = OnnxBertEmbedder(
        model,
        m3e_small_path(),
        ROOT / "var" / "models",
        quantized=model == M3E_SMALL_INT8,
        token_budget=budget or TOKEN_BUDGET,
        memory_arena=arena,
    )
    embedder.load()
    embedder.encode_passages(texts[:8])
    loaded = _hwm()
    started, cpu = time.perf_counter(), time.process_time()
    vectors = np.vstack([embedder.encode_passages(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    np.save(vectors_out, vectors)
    return {
        "variant": variant,
        "passages": len(texts),
        "encode_s": round(seconds, 2),
        "passages_per_s": round(len(texts) / seconds, 2),
        "cpu_s": round(cpu, 2),
        "passages_per_cpu_s": round(len(texts) / cpu, 2),
        "hwm_loaded_mib": loaded,
        "hwm_mib": _hwm(),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="m3e-small")
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--vectors", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.texts, args.vectors)))
        return
    import numpy as np

    work = ROOT / "var" / "encode-memory"
    work.mkdir(parents=True, exist_ok=True)
    texts_file = work / f"texts-{args.chunks}.json"
    if not texts_file.exists():
        texts_file.write_text(json.dumps(passages(args.chunks, args.model), ensure_ascii=False), encoding="utf-8")
    runs: list[dict[str, Any]] = []
    for round_ in range(args.rounds):
        order = list(VARIANTS) if round_ % 2 == 0 else list(VARIANTS)[::-1]
        for variant in order:
            cmd = [sys.executable, __file__, "--child", variant, "--model", args.model, "--texts", str(texts_file)]
            cmd += ["--vectors", str(work / f"{variant}.npy")]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
            row = json.loads(done.stdout.strip().splitlines()[-1]) | {"round": round_}
            runs.append(row)
            print(json.dumps(row), flush=True)
    reference = np.load(work / f"{next(iter(VARIANTS))}.npy")
    summary = {}
    for variant in VARIANTS:
        vectors = np.load(work / f"{variant}.npy")
        mine = [r for r in runs if r["variant"] == variant]
        summary[variant] = {
            "passages_per_s": round(sum(r["passages_per_s"] for r in mine) / len(mine), 2),
            "passages_per_cpu_s": round(sum(r["passages_per_cpu_s"] for r in mine) / len(mine), 2),
            "hwm_mib": max(r["hwm_mib"] for r in mine),
            "hwm_loaded_mib": max(r["hwm_loaded_mib"] for r in mine),
            "max_cosine_distance": float(np.max(1 - np.sum(reference * vectors, axis=1))),
        }
    data = {"model": args.model, "passages": args.chunks, "runs": runs, "summary": summary}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"encode-memory-{args.model}.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    lines = [
        f"# Encode memory, {args.model}, {args.chunks} real passages (`bench/encode_memory.py`)",
        "",
        "| variant | passages/s (wall) | passages/CPU-s | peak RSS after load MiB | peak RSS after encoding MiB |"
        " max cosine distance |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {v} | {s['passages_per_s']} | {s['passages_per_cpu_s']} | {s['hwm_loaded_mib']} | {s['hwm_mib']} |"
        f" {s['max_cosine_distance']:.2e} |"
        for v, s in summary.items()
    ]
    lines += ["", f"load average during the runs: {sorted({tuple(r['load']) for r in runs})[-1]}"]
    (args.out / f"encode-memory-{args.model}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
