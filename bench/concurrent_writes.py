"""Writes under load (issue 10): N writers and M readers against ``kb serve`` on a temporary data folder.

Phase 1: readers alone (``--seconds`` s); phase 2: the same readers while writers POST articles (``--seconds`` s).
Reports search p50/p95 in both phases (and their ratio, taken in the same run), write p50/p95/max, the status codes
seen, the server's CPU seconds per phase, and writes to ``bench/results/concurrent-writes.md`` (``--out``).

Three kinds of process, so that the numbers are the server's, not the load generators' fight for one GIL:

- the server: ``python -m kb.cli serve`` (exactly what ``kb serve`` runs: one uvicorn worker), on 127.0.0.1;
- one process for the readers and one for the writers (``multiprocessing``, spawn), each running its clients as
  threads with their own ``httpx`` client (keep-alive); a reader's latency is not inflated by 40 writer threads.

Writes are real: each POST carries a real Chinese article (Markdown with front matter, median about 6 KB) from
``../shared/data/articles/{windows-troubleshooting,k8s-troubleshooting,tidb-faq}`` (override with
``KB_BENCH_SHARED_DATA``), with a line naming the writer and its count appended so every body differs. The index
is seeded first with ``--seed`` other real articles (stored and indexed in one batch before the server starts), and
the readers search desk queries.

Run (one command; about 2 minutes with ``hash``): ``.venv/bin/python bench/concurrent_writes.py --label after
--append``. Options: ``--writers 40 --readers 8 --seconds 30 --model hash --seed 200``; ``--model m3e-small``
encodes with the real model (the server exports it into the temporary folder first); ``--write-rate 6`` offers a
fixed 6 writes/s (open loop) instead of 40 writers each posting again as soon as answered, so that two versions of
the server are compared at the same write load ("searches lost per write" = searches alone minus searches during
writes, per write: the search capacity one write costs). The machine may be shared: the
report records ``os.getloadavg()`` at the start and end of each phase.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ["打印机脱机", "VPN 连接失败", "邮箱无法登录", "远程桌面 许可证", "共享盘 打不开", "密码重置", "网络中断",
           "Outlook 无法发送", "蓝屏 0x0000007B", "DNS 解析失败", "Pod 一直 Pending", "TiDB 慢查询",
           "域控制器 复制失败", "磁盘空间不足", "证书过期"]  # fmt: skip
USER, PASSWORD = "bench", "Kb-bench-2026!"
FOLDERS = ("windows-troubleshooting", "k8s-troubleshooting", "tidb-faq")


def _shared_data() -> Path:
    return Path(os.environ.get("KB_BENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))


def load_articles() -> list[str]:
    """Real Chinese articles that kb parses (Markdown with front matter), 1 KB and up, in a fixed order."""
    from kb.articles.content import parse_markdown
    from kb.errors import KBError

    bodies: list[str] = []
    for folder in FOLDERS:
        for path in sorted((_shared_data() / "articles" / folder).rglob("*.md")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if len(text.encode()) < 1024:
                continue
            try:
                parse_markdown(text)
            except KBError:
                continue
            bodies.append(text)
    if not bodies:
        raise SystemExit(f"no articles under {_shared_data() / 'articles'}")
    return bodies


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


def load(
    kind: str, clients: int, seconds: float, base: str, token: str, bodies: list[str], rate: float = 0.0
) -> dict[str, Any]:
    """Run ``clients`` threads of ``kind`` (``search`` or ``write``) for ``seconds``; in a process of its own. With
    ``rate`` > 0 (requests per second, all threads together) each thread starts its requests on a fixed schedule
    (open loop: a slow answer does not lower the offered load); 0: each sends its next request on the answer.

    A write refused with 429 (``overloaded``, :mod:`kb.api.admission`) is sent again, the same body, after the
    answer's ``Retry-After`` seconds (as a well-behaved client does); its latency is kept apart.

    Returns:
        ``{"ms": [latency per answered request but refusals, ms], "refused_ms": [latency per 429, ms],
        "statuses": {"search 200": n, ...}}``.
    """
    headers = {"Authorization": f"Bearer {token}"}
    lock = threading.Lock()
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    refused: list[float] = []
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=300) as http:
            i = 0
            interval = clients / rate if rate > 0 else 0.0
            due = time.monotonic() + interval * n / clients
            while time.monotonic() < deadline:
                if interval:
                    time.sleep(max(0.0, due - time.monotonic()))
                    due += interval
                    if time.monotonic() >= deadline:
                        break
                started = time.perf_counter()
                if kind == "search":
                    answer = http.get("/search", params={"q": QUERIES[(n * 5 + i) % len(QUERIES)]})
                else:
                    body = bodies[(n * 131 + i) % len(bodies)] + f"\n\n记录：并发写入 CW{n:02d}-{i:05d}。\n"
                    answer = http.post("/articles", json={"body": body})
                took = (time.perf_counter() - started) * 1000
                with lock:
                    (refused if answer.status_code == 429 else latencies).append(took)
                    key = f"{kind} {answer.status_code}"
                    statuses[key] = statuses.get(key, 0) + 1
                if answer.status_code == 429:
                    time.sleep(
                        min(float(answer.headers.get("retry-after", "1")), max(0.0, deadline - time.monotonic()))
                    )
                    if interval:
                        due = max(due, time.monotonic())
                    continue  # the same body again
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"ms": latencies, "refused_ms": refused, "statuses": statuses}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (and its threads), seconds (``/proc/PID/stat`` fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds(pid: int) -> float:
    """CPU seconds of the running child processes of ``pid`` (the applier process of ``kb serve``), 0 if none."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):  # a restarted applier is a child of a supervising thread
        try:
            children += (task / "children").read_text().split()
        except OSError:
            continue
    total = 0.0
    for child in children:
        try:
            total += _cpu_seconds(int(child))
        except OSError:
            continue
    return total


def _prepare(data: Path, model: str, seed: list[str]) -> None:
    """Create the bench user and store + index the seed articles (one batch) in ``data``."""
    from kb.articles.content import parse_markdown
    from kb.config import Settings
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(Settings(data_dir=data, embedding_model=model))
    try:
        kb.accounts.create(USER, ["kb_editor", "agent"], "bench", password=PASSWORD, must_change=False)
        kb.open()
        for body in seed:
            kb.store.create(parse_markdown(body), USER)
        kb.index.apply_pending()
    finally:
        kb.close()


def run(
    writers: int,
    readers: int,
    seconds: float,
    model: str,
    seed_articles: int,
    write_rate: float = 0.0,
    server_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Serve a fresh kb in a subprocess (``server_env``: more ``KB_*`` settings) and measure; returns every number
    (milliseconds, seconds for CPU)."""
    bodies = load_articles()
    data = Path(tempfile.mkdtemp(prefix="kb-bench-cw-"))
    _prepare(data, model, [bodies[(i * 7) % len(bodies)] for i in range(seed_articles)])
    port = _free_port()
    env = {**os.environ, "KB_DATA_DIR": str(data), "KB_EMBEDDING_MODEL": model, "KB_HOST": "127.0.0.1",
           "KB_PORT": str(port), "KB_LOGIN_RATE_LIMIT": "100000/minute", "PYTHONPATH": str(ROOT),
           **(server_env or {})}  # fmt: skip
    for name in ("KB_DATABASE_URL", "KB_INDEX_DIR"):
        env.pop(name, None)
    server = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=open(data / "server.log", "w"))  # fmt: skip  # noqa: SIM115
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            if server.poll() is not None or time.monotonic() - started > 600:
                raise SystemExit(f"server did not start; see {data / 'server.log'}")
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        token = httpx.post(f"{base}/auth/login", json={"username": USER, "password": PASSWORD}).json()["token"]
        spawn = multiprocessing.get_context("spawn")
        result: dict[str, Any] = {"statuses": {}}
        with spawn.Pool(2) as pool:
            for name, n_writers in (("alone", 0), ("during", writers)):
                load_start, cpu_start = os.getloadavg(), _cpu_seconds(server.pid)
                child_start = _children_cpu_seconds(server.pid)
                reads = pool.apply_async(load, ("search", readers, seconds, base, token, []))
                writes = None
                if n_writers:
                    writes = pool.apply_async(load, ("write", n_writers, seconds, base, token, bodies, write_rate))
                search_out = reads.get()
                write_out = writes.get() if writes is not None else {"ms": [], "refused_ms": [], "statuses": {}}
                result[f"search_{name}"] = _percentiles(search_out["ms"])
                if n_writers:
                    result["writes"] = _percentiles(write_out["ms"])
                    result["write_ms"] = write_out["ms"]
                    result["refused"] = _percentiles(write_out["refused_ms"])
                for key, count in (search_out["statuses"] | {}).items():
                    result["statuses"][f"{key} ({name})"] = count
                for key, count in write_out["statuses"].items():
                    result["statuses"][key] = result["statuses"].get(key, 0) + count
                result[f"loadavg_{name}"] = (load_start[0], os.getloadavg()[0])
                result[f"cpu_{name}"] = _cpu_seconds(server.pid) - cpu_start
                result[f"cpu_applier_{name}"] = _children_cpu_seconds(server.pid) - child_start
        deadline = time.monotonic() + 300  # the background applier catches up on 202s
        while True:
            # /health shows index counts only to callers who may read the metrics: ask the index itself
            status = subprocess.run(
                [sys.executable, "-m", "kb.cli", "index", "status", "--json"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,  # exit 2 while the counts disagree (the applier is still catching up): ask again
            )
            if status.returncode not in (0, 2) or not status.stdout.strip():
                raise RuntimeError(f"kb index status failed ({status.returncode}): {status.stderr.strip()}")
            index = json.loads(status.stdout)
            if index.get("consistent") or time.monotonic() > deadline:
                break
            time.sleep(1)
        result["consistent"] = index.get("consistent")
        result["articles"] = index.get("articles")
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return result


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        return out.stdout.strip()
    except OSError:
        return "?"


def report(label: str, args: argparse.Namespace, result: dict[str, Any]) -> str:
    """One Markdown section for ``result``.

    Raises:
        SystemExit: a phase answered no search with 200, or no write with 201/202 (the bench measured refusals, e.g.
            a 403 when its account cannot act: session 9 found a run timing 403s).
    """
    answered = result["statuses"]
    for needed in ("search 200 (alone)", "search 200 (during)"):
        if not answered.get(needed):
            raise SystemExit(f"no {needed!r} answers: the bench measured refusals, not searches ({answered})")
    if not answered.get("write 201", 0) + answered.get("write 202", 0):
        raise SystemExit(f"no write answered 201 or 202: the bench measured refusals, not writes ({answered})")
    alone, during, writes, refused = (result[k] for k in ("search_alone", "search_during", "writes", "refused"))
    ratio = during["p95"] / alone["p95"] if alone["p95"] else float("nan")
    la, ld = result["loadavg_alone"], result["loadavg_during"]
    pace = f"writes offered at {args.write_rate:g}/s (open loop)" if args.write_rate else "closed loop"
    lost = (alone["n"] - during["n"]) / writes["n"] if writes["n"] else float("nan")
    created = result["statuses"].get("write 201", 0)
    settings_text = ", ".join(f"`{k}={v}`" for k, v in sorted(args.server_env.items())) or "defaults"
    return "\n".join([
        f"## {label} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, kb {_commit()})",
        "",
        f"{args.writers} writers + {args.readers} readers (load generators in their own processes, server "
        f"`kb serve`), {pace}, {args.seconds:g} s per phase, model `{args.model}`, {args.seed} seed articles, "
        f"real articles posted; {os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
        f"{la[0]:.1f} -> {la[1]:.1f} "
        f"(readers alone), {ld[0]:.1f} -> {ld[1]:.1f} (during writes); server CPU {result['cpu_alone']:.1f} s / "
        f"{result['cpu_during']:.1f} s, applier process CPU {result['cpu_applier_alone']:.1f} s / "
        f"{result['cpu_applier_during']:.1f} s; server settings: {settings_text}.",
        "",
        "| measure | n | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
        f"| search, readers alone | {alone['n']} | {alone['p50']:.0f} | {alone['p95']:.0f} | {alone['max']:.0f} |",
        f"| search, during writes | {during['n']} | {during['p50']:.0f} | {during['p95']:.0f} | {during['max']:.0f} |",
        f"| write (POST /articles), answered | {writes['n']} | {writes['p50']:.0f} | {writes['p95']:.0f} | "
        f"{writes['max']:.0f} |",
        f"| write refused (429, retried after Retry-After) | {refused['n']} | {refused['p50']:.0f} | "
        f"{refused['p95']:.0f} | {refused['max']:.0f} |",
        "",
        f"Search p95 during writes / alone: **{ratio:.2f}x**; answered writes over 1 s: "
        f"{sum(1 for ms in result['write_ms'] if ms > 1000)}; writes answered {writes['n']} "
        f"({writes['n'] / args.seconds:.1f}/s), of which searchable on return (201) {created} "
        f"({created / args.seconds:.1f}/s); refused {refused['n']}; searches lost per write: {lost:.1f}. "
        f"Statuses: {result['statuses']}. "
        f"Index consistent at the end: {result['consistent']} ({result['articles']} articles).",
        "",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--writers", type=int, default=40)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--model", default="hash", help="embedding model (hash: no model file)")
    parser.add_argument("--seed", type=int, default=200, help="real articles indexed before measuring")
    parser.add_argument("--write-rate", type=float, default=0.0, help="writes/s offered (0: closed loop)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KB_NAME=VALUE", help="a server setting (repeatable)"
    )
    parser.add_argument("--label", default="run")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "concurrent-writes.md")
    parser.add_argument("--append", action="store_true", help="add to the results file instead of replacing it")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    args.server_env = dict(item.split("=", 1) for item in args.env)
    result = run(args.writers, args.readers, args.seconds, args.model, args.seed, args.write_rate, args.server_env)
    section = report(args.label, args, result)
    header = "# Writes under load (bench/concurrent_writes.py)\n\n"
    if args.append and args.out.exists():
        args.out.write_text(args.out.read_text(encoding="utf-8") + "\n" + section, encoding="utf-8")
    else:
        args.out.write_text(header + section, encoding="utf-8")
    print(section)


if __name__ == "__main__":
    main()
