"""Writes under load (issue 10): N writers and M readers against a served kb on a temporary data folder.

Phase 1: readers alone (``--seconds`` s); phase 2: readers while writers POST articles (``--seconds`` s). Reports
search p50/p95 in both phases (and their ratio, taken in the same run), write p50/p95/max, the status codes seen,
and writes to ``bench/results/concurrent-writes.md`` (``--out``). The server is uvicorn in this process (as
``kb serve`` runs it), over real HTTP on 127.0.0.1; the load generators are threads with their own httpx
clients. Use ``--label`` to name the run (e.g. ``before``/``after``) and ``--append`` to add to the file.

Run: ``PYTHONPATH=. python bench/concurrent_writes.py --writers 40 --readers 8 --seconds 30 --label after``.
The machine may be shared: the report records ``os.getloadavg()`` at the start and end of each run.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from kb.api import create_app
from kb.config import Settings
from kb.service import KnowledgeBase

QUERIES = ["打印机脱机", "VPN 连接失败", "邮箱无法登录", "远程桌面 许可证", "共享盘 打不开", "密码重置", "网络中断",
           "Outlook 无法发送", "蓝屏 0x0000007B", "DNS 解析失败"]  # fmt: skip
USER, PASSWORD = "bench", "Kb-bench-2026!"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": 0.0, "p95": 0.0, "max": 0.0}
    array = np.asarray(values)
    return {"n": len(values), "p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95)),
            "max": float(array.max())}  # fmt: skip


def run(writers: int, readers: int, seconds: float, model: str, seed_articles: int) -> dict[str, object]:
    """Serve a fresh kb and measure; returns every number (milliseconds)."""
    data = Path(tempfile.mkdtemp(prefix="kb-bench-cw-"))
    settings = Settings(data_dir=data, embedding_model=model, login_rate_limit="100000/minute")
    kb = KnowledgeBase(settings)
    kb.accounts.create(USER, ["kb_editor", "agent"], "bench", password=PASSWORD)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, kb=kb), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    token = httpx.post(f"{base}/auth/login", json={"username": USER, "password": PASSWORD}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as seed:
        for i in range(seed_articles):
            seed.post("/articles", json={"body": f"# {QUERIES[i % len(QUERIES)]} 处理办法 {i}\n步骤 {i}：重启服务。"})

    lock = threading.Lock()
    statuses: dict[str, int] = {}

    def load(kind: str, stop: threading.Event, out: list[float], n: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            i = 0
            while not stop.is_set():
                started = time.perf_counter()
                if kind == "search":
                    answer = client.get("/search", params={"q": QUERIES[(n + i) % len(QUERIES)]})
                else:
                    words = QUERIES[(n + i) % len(QUERIES)]
                    body = f"# 并发写入 {n}-{i}\n{words}：第 {i} 次记录，编号 CW{n:02d}{i:05d}。"
                    answer = client.post("/articles", json={"body": body})
                out.append((time.perf_counter() - started) * 1000)
                with lock:
                    key = f"{kind} {answer.status_code}"
                    statuses[key] = statuses.get(key, 0) + 1
                i += 1

    def phase(n_writers: int) -> tuple[list[float], list[float]]:
        stop = threading.Event()
        searches: list[list[float]] = [[] for _ in range(readers)]
        writes: list[list[float]] = [[] for _ in range(n_writers)]
        threads = [threading.Thread(target=load, args=("search", stop, searches[n], n)) for n in range(readers)]
        threads += [threading.Thread(target=load, args=("write", stop, writes[n], n)) for n in range(n_writers)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        return [v for s in searches for v in s], [v for w in writes for v in w]

    load_start = os.getloadavg()
    alone, _ = phase(0)
    during, writes = phase(writers)
    load_end = os.getloadavg()
    time.sleep(2 * settings.index_poll_seconds + 1)  # let the background applier catch up on 202s
    kb_status = kb.index.status()
    server.should_exit = True
    thread.join(timeout=30)
    result = {
        "search_alone": _percentiles(alone),
        "search_during_writes": _percentiles(during),
        "writes": _percentiles(writes),
        "statuses": dict(sorted(statuses.items())),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "consistent": kb_status.consistent,
    }
    return result


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def report(label: str, args: argparse.Namespace, result: dict[str, object]) -> str:
    """One Markdown section for ``result``."""
    alone, during, writes = result["search_alone"], result["search_during_writes"], result["writes"]
    assert isinstance(alone, dict) and isinstance(during, dict) and isinstance(writes, dict)
    ratio = during["p95"] / alone["p95"] if alone["p95"] else float("nan")
    return "\n".join([
        f"## {label} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, kb {_commit()})",
        "",
        f"{args.writers} writers + {args.readers} readers, {args.seconds:g} s per phase, model `{args.model}`, "
        f"{args.seed} seed articles; {os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
        f"{result['loadavg_start'][0]:.1f} at start, {result['loadavg_end'][0]:.1f} at end "  # type: ignore[index]
        "(other jobs share the machine: compare the ratio, taken in one run).",
        "",
        "| measure | n | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
        f"| search, readers alone | {alone['n']} | {alone['p50']:.0f} | {alone['p95']:.0f} | {alone['max']:.0f} |",
        f"| search, during writes | {during['n']} | {during['p50']:.0f} | {during['p95']:.0f} | {during['max']:.0f} |",
        f"| write (POST /articles) | {writes['n']} | {writes['p50']:.0f} | {writes['p95']:.0f} | {writes['max']:.0f} |",
        "",
        f"Search p95 during writes / alone: **{ratio:.2f}x**. Statuses: {result['statuses']}. "
        f"Index consistent at the end: {result['consistent']}.",
        "",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=40)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--model", default="hash", help="embedding model (hash: no model file)")
    parser.add_argument("--seed", type=int, default=200, help="articles written before measuring")
    parser.add_argument("--label", default="run")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "concurrent-writes.md")
    parser.add_argument("--append", action="store_true", help="add to the results file instead of replacing it")
    args = parser.parse_args()
    section = report(args.label, args, run(args.writers, args.readers, args.seconds, args.model, args.seed))
    header = "# Writes under load (bench/concurrent_writes.py)\n\n"
    if args.append and args.out.exists():
        args.out.write_text(args.out.read_text(encoding="utf-8") + "\n" + section, encoding="utf-8")
    else:
        args.out.write_text(header + section, encoding="utf-8")
    print(section)


if __name__ == "__main__":
    main()
