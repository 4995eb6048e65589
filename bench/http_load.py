"""HTTP under load: ``GET /search`` against a real ``kb serve``, bounded async httpx clients at concurrency 1/8/32.

Copies a data folder holding the four shared collections (the ``--data-dir`` of ``bench/peer.py``, imported there
by ``bench/profile_search.py`` when empty) to a temp folder, creates a service account with the ``--scopes``
(default ``search,article.internal``: the imported articles are internal, and a ``search``-only account, the
default until session 7, is shown none of them: every answer was empty) there (``kb users create-service``),
starts ``kb serve`` on a free port over the copy and sends the distinct real desk queries of
``bench/data/desk-dev/queries.jsonl`` as that service's Bearer token, hybrid mode, 10 results.
At each concurrency, ``N`` workers take the next query from one shared list (a closed loop: a worker sends its
next request when its previous answer came), each level starting at another offset of the list; the first
``--warm`` queries (default: all) are sent once before the first level, so every level meets the caches a running
server has (otherwise concurrency 1 alone pays the first sight of every query and chunk). Latency is from sending
to the whole body read.

    python bench/http_load.py [--data-dir var/bench-peer] [--levels 1,8,32] [--requests 250] [--out bench/results]

Writes ``<out>/http-load.md`` and ``<out>/http-load.json`` with QPS, p50/p95/p99, errors, the server's and the
client's CPU milliseconds per request (``/proc`` times of ``kb serve`` and its workers: work, not latency), the
cores and the load average at start, after each level and at end (the client runs on the same cores as the
server: on a shared machine say so).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "bench" / "data" / "desk-dev" / "queries.jsonl"
_TOKEN = re.compile(r"API token .*Bearer\):\s*(\S+)")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _queries() -> list[str]:
    lines = QUERIES.read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(json.loads(line)["text"] for line in lines if line))


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and all its descendants (Linux ``/proc``);
    a work count that does not depend on what else the machine runs, unlike latency."""
    total, stack = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0..1) of ``values`` (ms)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _level(url: str, token: str, queries: list[str], concurrency: int) -> dict[str, float]:
    """Send every query of ``queries`` once with ``concurrency`` closed-loop workers; QPS and latency in ms."""
    pending = iter(queries)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal errors
            for query in pending:
                started = time.perf_counter()
                try:
                    response = await client.get("/search", params={"q": query, "limit": 10})
                    ok = response.status_code == 200 and "results" in response.json()
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - started) * 1000)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "qps": len(latencies) / wall,
        "p50_ms": _pct(latencies, 0.50),
        "p95_ms": _pct(latencies, 0.95),
        "p99_ms": _pct(latencies, 0.99),
    }


#: The service account's scopes: it may search and read internal articles (every imported article is internal).
SCOPES = ("search", "article.internal")


def _serve(
    data: Path, model: str, workers: int, root: Path = ROOT, scopes: tuple[str, ...] = SCOPES
) -> tuple[subprocess.Popen[bytes], str, str]:
    """``kb serve --workers N`` of the code in ``root`` over ``data``, and a service token with ``scopes``:
    ``(server process, base URL, token)``."""
    env = {**os.environ, "KB_DATA_DIR": str(data), "KB_EMBEDDING_MODEL": model, "PYTHONPATH": str(root)}
    scope_args = [a for scope in scopes for a in ("--scope", scope)]
    created = subprocess.run(
        [sys.executable, "-m", "kb.cli.main", "users", "create-service", "http-load-bench", *scope_args],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    found = _TOKEN.search(created.stdout)
    if found is None:
        raise SystemExit(f"no token in the output of kb users create-service: {created.stdout!r}")
    port = _port()
    log = (data / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "kb.cli.main", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=log,
        stderr=log,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(900):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url, found.group(1)
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"kb serve did not become healthy; see {data / 'server.log'}")


def quiet_note(start: float, end: float, cores: int) -> str:
    """The report's sentence on the machine: quiet when the 1-minute load stayed at most ``cores + 1`` (the bench's
    own server workers and client make up to that), else a warning that the latencies are inflated."""
    if max(start, end) <= cores + 1:
        return " (the bench's own processes: a quiet machine)."
    return ": other work shared the machine, so these latencies are an upper bound, not the record; re-run quietly."


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench-peer")
    ap.add_argument("--model", default="m3e-small")
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument("--requests", type=int, default=250, help="requests per level (distinct queries, cycled)")
    ap.add_argument("--warm", type=int, default=250, help="queries sent once before the first level (default all)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--workers", type=int, default=1, help="kb serve --workers (server processes)")
    ap.add_argument("--name", default="http-load", help="file name of the results (<out>/<name>.md and .json)")
    ap.add_argument("--scopes", default=",".join(SCOPES), help="the service account's scopes, comma-separated")
    args = ap.parse_args()
    if not (args.data_dir / "kb.sqlite3").exists():
        raise SystemExit(f"{args.data_dir} holds no kb.sqlite3: run bench/profile_search.py --data-dir there first")
    queries = _queries()
    data = Path(tempfile.mkdtemp(prefix="kb-http-load-"))
    shutil.copytree(args.data_dir, data, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.lock", "server.log"))
    load_start = os.getloadavg()
    scopes = tuple(s.strip() for s in args.scopes.split(",") if s.strip())
    server, url, token = _serve(data, args.model, args.workers, scopes=scopes)
    try:
        first = httpx.get(
            f"{url}/search", params={"q": queries[0]}, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        if first.status_code != 200 or "results" not in first.json():
            raise SystemExit(f"GET /search answered {first.status_code}: {first.text[:300]}")
        if not first.json()["results"]:
            print(f"warning: scopes {','.join(scopes)} see no result for {queries[0]!r}", flush=True)
        if args.workers <= 1:
            asyncio.run(_level(url, token, queries[: args.warm], 1))
        else:  # each worker has its own caches: warm over several connections, once per worker
            for _ in range(args.workers):
                asyncio.run(_level(url, token, queries[: args.warm], 8))
        results = []
        for n, level in enumerate(int(c) for c in args.levels.split(",")):
            offset = (n * 83) % len(queries)
            rotated = queries[offset:] + queries[:offset]
            batch = (rotated * (args.requests // len(rotated) + 1))[: args.requests]
            server_cpu, client_cpu = _tree_cpu_s(server.pid), time.process_time()
            results.append(asyncio.run(_level(url, token, batch, level)))
            done = results[-1]["requests"]
            results[-1]["server_cpu_ms_per_request"] = (_tree_cpu_s(server.pid) - server_cpu) * 1000 / done
            results[-1]["client_cpu_ms_per_request"] = (time.process_time() - client_cpu) * 1000 / done
            results[-1]["load_average"] = os.getloadavg()[0]
            print(json.dumps(results[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data, ignore_errors=True)
    load_end = os.getloadavg()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "model": args.model,
        "workers": args.workers,
        "scopes": list(scopes),
        "distinct_queries": len(queries),
        "levels": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    rows = "\n".join(
        f"| {r['concurrency']} | {r['requests']} | {r['errors']} | {r['qps']:.1f} | {r['p50_ms']:.1f} | "
        f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['server_cpu_ms_per_request']:.1f} | "
        f"{r['client_cpu_ms_per_request']:.1f} | {r['load_average']:.1f} |"
        for r in results
    )
    (args.out / f"{args.name}.md").write_text(
        f"""# HTTP under load (`python bench/http_load.py`, {report["date"]})

`kb serve --workers {args.workers}` over a copy of the four shared collections ({args.model}), `GET /search`
hybrid, 10 results, as a service account's Bearer token (scopes {", ".join(scopes)}); {len(queries)} distinct
desk-dev queries, closed-loop async httpx workers on the same machine. {report["cores"]} cores, load average
{load_start[0]:.2f} at start and {load_end[0]:.2f} at end{quiet_note(load_start[0], load_end[0], report["cores"])}

| concurrency | requests | errors | QPS | p50 ms | p95 ms | p99 ms | server CPU ms / req | client CPU ms / req | load |
|---|---|---|---|---|---|---|---|---|---|
{rows}

Server CPU is user + system time of `kb serve` and its workers during the level, per request (independent of
the machine's load, unlike the latencies); with C cores free, QPS cannot exceed C x 1000 / (server + client CPU
ms per request). Issue 14 target: at least 100 QPS at p95 at most 100 ms on 2 cores.
""",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
