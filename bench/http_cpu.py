"""Server CPU per ``GET /search`` at concurrency 1, for the code of any checkout: a before/after of one change.

Starts ``kb serve --workers N`` from the ``bench/http_load.py`` of ``ROOT`` (a checkout or ``git archive`` export of
another revision: its server runs that tree's code) over a copy of ``--data-dir``, sends every distinct desk-dev
query once to warm it, then twice more sequentially in ``--mode``, and prints the server's CPU milliseconds per
request (``/proc`` times of the server and its workers: work, which load distorts less than latency) and the wall
milliseconds per request, with the load average.

    python bench/http_cpu.py [ROOT] [--mode hybrid|bm25|vector] [--workers 1] [--data-dir var/bench-peer]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", type=Path, default=HERE, help="checkout whose server is measured")
    ap.add_argument("--mode", default="hybrid", choices=("hybrid", "bm25", "vector"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, default=HERE / "var" / "bench-peer")
    ap.add_argument("--model", default="m3e-small")
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("http_load_of_root", args.root / "bench" / "http_load.py")
    assert spec is not None and spec.loader is not None
    hl = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = hl
    spec.loader.exec_module(hl)
    data = Path(tempfile.mkdtemp(prefix="kb-http-load-"))
    shutil.copytree(args.data_dir, data, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.lock", "server.log"))
    server, url, token = hl._serve(data, args.model, args.workers)
    try:
        queries = hl._queries()

        async def run() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
                for query in queries:
                    answer = await client.get("/search", params={"q": query, "mode": args.mode})
                    answer.raise_for_status()

        asyncio.run(run())  # warm: every query once
        for _ in range(2):
            cpu, started = hl._tree_cpu_s(server.pid), time.perf_counter()
            asyncio.run(run())
            per_cpu = (hl._tree_cpu_s(server.pid) - cpu) * 1000 / len(queries)
            per_wall = (time.perf_counter() - started) * 1000 / len(queries)
            print(
                f"{args.root} {args.mode} workers={args.workers}: server CPU {per_cpu:.2f} ms/request, "
                f"wall {per_wall:.2f} ms/request, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
