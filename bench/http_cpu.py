"""Server CPU per ``GET /search`` at concurrency 1, for the code of any checkout: a before/after of one change.

Starts ``kb serve --workers N`` of the code of ``ROOT`` (a checkout or ``git archive`` export of another revision,
with this checkout's ``bench/http_load.py``) over a copy of ``--data-dir``, as a service account with ``--scopes``
(default that of ``bench/http_load.py``), sends every distinct desk-dev
query once to warm it, then twice more sequentially in ``--mode``, and prints the server's CPU milliseconds per
request (``/proc`` times of the server and its workers: work, which load distorts less than latency) and the wall
milliseconds per request, with the load average.

    python bench/http_cpu.py [ROOT] [--mode hybrid|bm25|vector] [--workers 1] [--data-dir var/bench-peer]
        [--scopes search,article.internal] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import asyncio
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
    ap.add_argument("--scopes", default=None, help="the service account's scopes (default bench/http_load.py's)")
    ap.add_argument("--concurrency", type=int, default=1, help="requests in flight (closed loop)")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE / "bench"))
    import http_load as hl

    scopes = tuple(s for s in args.scopes.split(",") if s) if args.scopes else hl.SCOPES
    data = Path(tempfile.mkdtemp(prefix="kb-http-load-"))
    shutil.copytree(args.data_dir, data, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.lock", "server.log"))
    server, url, token = hl._serve(data, args.model, args.workers, root=args.root.resolve(), scopes=scopes)
    try:
        queries = hl._queries()

        async def run() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            todo = list(reversed(queries))
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:

                async def worker() -> None:
                    while todo:
                        answer = await client.get("/search", params={"q": todo.pop(), "mode": args.mode})
                        answer.raise_for_status()

                await asyncio.gather(*(worker() for _ in range(args.concurrency)))

        asyncio.run(run())  # warm: every query once
        for _ in range(2):
            cpu, started = hl._tree_cpu_s(server.pid), time.perf_counter()
            asyncio.run(run())
            per_cpu = (hl._tree_cpu_s(server.pid) - cpu) * 1000 / len(queries)
            per_wall = (time.perf_counter() - started) * 1000 / len(queries)
            print(
                f"{args.root} {args.mode} workers={args.workers} c={args.concurrency} scopes={','.join(scopes)}: "
                f"server CPU {per_cpu:.2f} ms/request, "
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
