"""Benchmark of the kb library and HTTP API on real corpora.

Run with ``make bench`` (``.venv/bin/python bench/run.py``) or ``/work/venv-probe/bin/python bench/run.py``.
See ``bench/README.md`` for what is measured and how.

For each corpus (``shared``: four article folders of /work/shared/data, about 800 articles; ``tidb``: the
1,213 pages of the TiDB documentation tarball) a fresh data folder is created in a temporary directory,
and a worker subprocess (so peak RSS is per corpus) measures:

1. import + index time (``KnowledgeBase.import_paths``), articles/s and chunks/s;
2. index size on disk (``settings.resolved_index_dir``) and SQLite file size;
3. cold start to the first answer, in a fresh process: in-process (open + one search) and over HTTP
   (``kb serve`` spawned, ``GET /search`` polled until 200);
4. search latency p50/p95/p99 per mode (hybrid, bm25, vector) in-process and over HTTP (client side);
5. peak RSS after each phase.

Results: ``<out>/<corpus-name>.json`` per corpus and ``<out>/README.md`` (a table), overwritten each run.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

SHARED_DATA = Path(os.environ.get("KB_BENCH_SHARED_DATA", "/work/shared/data"))
SHARED_FOLDERS = ("k8s-troubleshooting", "windows-troubleshooting", "tidb-faq", "linux-command")
TIDB_TARBALL_DIR = "tidb-docs-full"
FAQ_QUERIES = Path("eval/tidb-faq-dev/queries.jsonl")
TITLE_FOLDERS = ("k8s-troubleshooting", "windows-troubleshooting")  # article titles used as queries

CORPORA = {"shared": "shared-articles", "tidb": "tidb-docs-full"}
MODES = ("hybrid", "bm25", "vector")
WARMUP = 20
LIMIT = 10
REPO = Path(__file__).resolve().parent.parent
T0 = time.perf_counter()


# -- small helpers ---------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.perf_counter() - T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB.

    ``VmHWM`` from /proc when available: ``getrusage().ru_maxrss`` (KiB on Linux) survives ``execve``, so in a
    child process it starts at the parent's peak. Falls back to ``getrusage``.
    """
    hwm = _proc_status_kib("self", "VmHWM")
    return hwm if hwm is not None else round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def getrusage_maxrss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mib(pid: int | str = "self") -> float | None:
    return _proc_status_kib(pid, "VmRSS")


def _proc_status_kib(pid: int | str, key: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (other work on the machine skews every number here)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def dir_size(path: Path) -> dict[str, Any]:
    """Apparent size (sum of file sizes) and allocated size (blocks) of every file under ``path``."""
    apparent = allocated = files = 0
    if path.exists():
        for item in path.rglob("*"):
            if item.is_file() and not item.is_symlink():
                st = item.stat()
                apparent += st.st_size
                allocated += st.st_blocks * 512
                files += 1
    return {"bytes": apparent, "mib": mib(apparent), "allocated_bytes": allocated, "files": files}


def file_sizes(paths: list[Path]) -> dict[str, Any]:
    parts = {p.name: p.stat().st_size for p in paths if p.exists()}
    total = sum(parts.values())
    return {"bytes": total, "mib": mib(total), "files": parts}


def mib(n: float) -> float:
    return round(n / 2**20, 2)


def percentiles(samples: list[float]) -> dict[str, Any]:
    """p50/p95/p99 (linear interpolation between closest ranks), mean, min, max; milliseconds."""
    if not samples:
        return {"n": 0}
    xs = sorted(samples)

    def pct(p: float) -> float:
        k = (len(xs) - 1) * p / 100
        lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

    return {
        "n": len(xs),
        "p50": round(pct(50), 2),
        "p95": round(pct(95), 2),
        "p99": round(pct(99), 2),
        "mean": round(statistics.fmean(xs), 2),
        "min": round(xs[0], 2),
        "max": round(xs[-1], 2),
    }


def latency_summary(
    label: str, lat: list[float], took_key: str, took: list[float], hits: list[int], errors: list[str], started: float
) -> dict[str, Any]:
    """One mode's latency numbers (client-side ``lat`` and engine ``took``, ms), logged as one line."""
    wall = time.perf_counter() - started
    summary: dict[str, Any] = {
        "loadavg_after": load_average(),
        "latency_ms": percentiles(lat),
        took_key: percentiles(took),
        "samples_ms": [round(x, 1) for x in lat],
        "qps": round(len(lat) / wall, 1) if wall else None,
        "mean_hits": round(statistics.fmean(hits), 2) if hits else 0,
        "zero_hit_queries": sum(1 for h in hits if h == 0),
        "errors": len(errors),
        "error_examples": errors[:5],
    }
    ms = summary["latency_ms"]
    log(f"  {label}: p50 {ms.get('p50')} ms, p95 {ms.get('p95')} ms, p99 {ms.get('p99')} ms")
    return summary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(data_dir: Path, model: str, port: int | None = None) -> dict[str, str]:
    """The environment for subprocesses: this run's data folder and model; other KB_* settings (for example
    KB_EMBEDDING_BACKEND) pass through, as the worker's own Settings read them too."""
    drop = {"KB_DATA_DIR", "KB_DATABASE_URL", "KB_INDEX_DIR", "KB_PORT", "KB_HOST"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["KB_DATA_DIR"] = str(data_dir)
    env["KB_EMBEDDING_MODEL"] = model
    if port is not None:
        env["KB_PORT"] = str(port)
        env["KB_HOST"] = "127.0.0.1"
    # Loopback only: never route through a proxy.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def kb_command() -> list[str]:
    """The ``kb`` console script next to this interpreter, or ``python -m kb.cli``."""
    script = Path(sys.executable).parent / "kb"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "kb.cli"]


# -- machine ---------------------------------------------------------------------------------------


def machine_info(model: str) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = _proc_status_like("/proc/meminfo", "MemTotal")
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 0
    versions: dict[str, str] = {}
    from importlib import metadata

    for dist in (
        "kb",
        "onnxruntime",
        "torch",
        "sentence-transformers",
        "transformers",
        "faiss-cpu",
        "whoosh",
        "jieba",
        "SQLAlchemy",
        "fastapi",
        "uvicorn",
        "httpx",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    git = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "kb"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        git = {"commit": head, "kb_dirty": bool(dirty)}
    return {
        "date": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        "nproc": nproc,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "mem_total_gib": round(mem / 2**20, 1) if mem else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "model": model,
        "packages": versions,
        "git": git,
    }


def _proc_status_like(path: str, key: str) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


# -- corpora and queries ---------------------------------------------------------------------------


def prepare_corpus(corpus: str, workdir: Path) -> tuple[list[Path], dict[str, Any]]:
    """The import roots of ``corpus`` (extracting the tarball into ``workdir`` for tidb)."""
    articles = SHARED_DATA / "articles"
    if corpus == "shared":
        roots = [articles / name for name in SHARED_FOLDERS]
        for root in roots:
            if not root.is_dir():
                raise SystemExit(f"bench: missing corpus folder {root}")
        return roots, {"roots": [str(r) for r in roots]}
    tarballs = sorted((articles / TIDB_TARBALL_DIR).glob("*.tar.gz"))
    if not tarballs:
        raise SystemExit(f"bench: no *.tar.gz in {articles / TIDB_TARBALL_DIR}")
    dest = workdir / "src"
    dest.mkdir(parents=True)
    started = time.perf_counter()
    for tarball in tarballs:
        with tarfile.open(tarball) as tar:
            try:
                tar.extractall(dest, filter="data")
            except TypeError:  # Python without extraction filters
                tar.extractall(dest)
    tops = sorted(p for p in dest.iterdir() if p.is_dir())
    roots = tops or [dest]
    md = sum(1 for r in roots for p in r.rglob("*") if p.suffix.lower() in (".md", ".markdown"))
    return roots, {
        "tarballs": [str(t) for t in tarballs],
        "roots": [str(r) for r in roots],
        "markdown_files": md,
        "extract_s": round(time.perf_counter() - started, 2),
    }


def load_queries(n: int) -> tuple[list[str], list[str], dict[str, int]]:
    """``n`` measured queries and ``WARMUP`` warm-up queries, and where they came from.

    Measured: the FAQ eval questions, then titles of the k8s and windows collections (alternating), parsed
    by the same reader the importer uses. Warm-up queries are taken from what is left over (or repeated).
    """
    from kb.errors import KBError
    from kb.ingest.markdown import iter_markdown_files, read_article_file

    faq = []
    with open(SHARED_DATA / FAQ_QUERIES, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                text = json.loads(line).get("text", "").strip()
                if text:
                    faq.append(text)
    per_folder: list[list[str]] = []
    for name in TITLE_FOLDERS:
        titles = []
        for path in iter_markdown_files(SHARED_DATA / "articles" / name):
            with contextlib.suppress(KBError, OSError):
                content = read_article_file(path)
                if content is not None and content.title.strip():
                    titles.append(content.title.strip())
        per_folder.append(titles)
    titles = []
    for i in range(max((len(t) for t in per_folder), default=0)):
        titles.extend(t[i] for t in per_folder if i < len(t))
    pool = list(dict.fromkeys(faq + titles))  # de-duplicated, order kept
    if not pool:
        raise SystemExit("bench: no queries found")
    measured = [pool[i % len(pool)] for i in range(n)]
    rest = pool[n:]
    warmup = [(rest or pool)[i % len(rest or pool)] for i in range(WARMUP)]
    used = pool[:n]
    sources = {
        "faq_questions": sum(1 for q in used if q in set(faq)),
        "titles": sum(1 for q in used if q not in set(faq)),
        "pool": len(pool),
        "measured": len(measured),
        "repeated": max(0, n - len(pool)),
    }
    return measured, warmup, sources


# -- phases ----------------------------------------------------------------------------------------


def measure_inprocess(kb: Any, queries: list[str], warmup: list[str]) -> dict[str, Any]:
    from kb.errors import KBError
    from kb.search.results import SearchRequest

    out: dict[str, Any] = {}
    for mode in MODES:
        for q in warmup:
            with contextlib.suppress(KBError):
                kb.engine.search(SearchRequest(q, mode=mode, limit=LIMIT))
        lat: list[float] = []
        took: list[float] = []
        hits: list[int] = []
        errors: list[str] = []
        started = time.perf_counter()
        for q in queries:
            t = time.perf_counter()
            try:
                result = kb.engine.search(SearchRequest(q, mode=mode, limit=LIMIT))
            except KBError as exc:
                errors.append(f"{q[:60]}: {exc.message}")
                continue
            lat.append((time.perf_counter() - t) * 1000)
            took.append(result.took_ms)
            hits.append(len(result.results))
        out[mode] = latency_summary(f"in-process {mode:6}", lat, "engine_took_ms", took, hits, errors, started)
    return out


COLD_INPROCESS = r"""
import time
t_start = time.time()
import json, resource, sys
from pathlib import Path
from kb.config import Settings
from kb.service import KnowledgeBase
from kb.search.results import SearchRequest
t_imported = time.time()


def hwm_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


settings = Settings(data_dir=Path(sys.argv[1]), embedding_model=sys.argv[2], database_url="", index_dir=None)
kb = KnowledgeBase(settings)
t_built = time.time()
kb.open()
t_opened = time.time()
result = kb.engine.search(SearchRequest(sys.argv[3], mode="hybrid", limit=10))
t_answer = time.time()
print(json.dumps({
    "t_start": t_start, "t_imported": t_imported, "t_built": t_built, "t_opened": t_opened,
    "t_answer": t_answer, "hits": len(result.results), "kb_module": __import__("kb").__file__,
    "peak_rss_mib": hwm_mib(),
}), flush=True)
kb.close()
"""


def measure_cold_inprocess(data_dir: Path, model: str, query: str, runs: int) -> dict[str, Any]:
    samples = []
    for i in range(runs):
        spawned = time.time()
        proc = subprocess.run(
            [sys.executable, "-c", COLD_INPROCESS, str(data_dir), model, query],
            env=child_env(data_dir, model),
            capture_output=True,
            text=True,
            timeout=900,
            cwd=data_dir.parent,
        )
        exited = time.time()
        if proc.returncode != 0:
            raise RuntimeError(f"cold-start child failed ({proc.returncode}): {proc.stderr[-2000:]}")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        sample = {
            "first_answer_s": round(info["t_answer"] - spawned, 3),
            "interpreter_start_s": round(info["t_start"] - spawned, 3),
            "imports_s": round(info["t_imported"] - info["t_start"], 3),
            "construct_s": round(info["t_built"] - info["t_imported"], 3),
            "open_s": round(info["t_opened"] - info["t_built"], 3),
            "first_search_s": round(info["t_answer"] - info["t_opened"], 3),
            "process_exit_s": round(exited - spawned, 3),
            "hits": info["hits"],
            "peak_rss_mib": info["peak_rss_mib"],
            "kb_module": info.get("kb_module"),
        }
        samples.append(sample)
        log(
            f"  cold in-process run {i + 1}/{runs}: first answer after {sample['first_answer_s']} s "
            f"(imports {sample['imports_s']}, construct {sample['construct_s']}, open {sample['open_s']}, "
            f"search {sample['first_search_s']})"
        )
    return summarize_cold(samples)


def summarize_cold(samples: list[dict[str, Any]]) -> dict[str, Any]:
    firsts = [s["first_answer_s"] for s in samples]
    return {
        "first_answer_s_first_run": firsts[0],
        "first_answer_s_median": round(statistics.median(firsts), 3),
        "first_answer_s_min": min(firsts),
        "runs": samples,
    }


@contextlib.contextmanager
def kb_server(data_dir: Path, model: str, log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """Spawn ``kb serve`` on a free loopback port; yields (process, base URL, spawn time)."""
    port = free_port()
    handle = open(log_path, "ab")  # noqa: SIM115 - closed below
    spawned = time.time()
    proc = subprocess.Popen(
        [*kb_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=child_env(data_dir, model, port),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=data_dir.parent,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}", spawned
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        handle.close()


def wait_first_answer(
    client: Any,
    proc: subprocess.Popen[bytes],
    base: str,
    query: str,
    spawned: float,
    log_path: Path,
    timeout: float = 900,
) -> dict[str, Any]:
    import httpx

    url = f"{base}/search?q={quote(query)}&mode=hybrid"
    polls = 0
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"kb serve exited with {proc.returncode} before answering:\n{tail}")
        if time.time() - spawned > timeout:
            raise RuntimeError(f"kb serve did not answer within {timeout} s")
        polls += 1
        with contextlib.suppress(httpx.TransportError):
            response = client.get(url, timeout=120)
            if response.status_code == 200:
                answered = time.time()
                return {
                    "first_answer_s": round(answered - spawned, 3),
                    "polls": polls,
                    "hits": len(response.json().get("results", [])),
                }
            if response.status_code >= 400 and response.status_code != 503:
                raise RuntimeError(f"GET /search answered {response.status_code}: {response.text[:500]}")
        time.sleep(0.05)


def measure_http(
    data_dir: Path, model: str, queries: list[str], warmup: list[str], runs: int, log_path: Path
) -> dict[str, Any]:
    import httpx

    cold_samples = []
    latency: dict[str, Any] = {}
    server_rss: dict[str, Any] = {}
    for i in range(runs):
        with (
            kb_server(data_dir, model, log_path) as (proc, base, spawned),
            httpx.Client(trust_env=False, timeout=120) as client,
        ):
            sample = wait_first_answer(client, proc, base, queries[0], spawned, log_path)
            cold_samples.append(sample)
            log(f"  cold HTTP run {i + 1}/{runs}: first 200 from GET /search after {sample['first_answer_s']} s")
            if i == runs - 1:
                latency = http_latency(client, base, queries, warmup)
                server_rss = {
                    "peak_rss_mib": _proc_status_kib(proc.pid, "VmHWM"),
                    "rss_mib": _proc_status_kib(proc.pid, "VmRSS"),
                }
    return {"cold_start": summarize_cold(cold_samples), "latency": latency, "server": server_rss}


def http_latency(client: Any, base: str, queries: list[str], warmup: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        for q in warmup:
            client.get(f"{base}/search", params={"q": q, "mode": mode, "limit": LIMIT})
        lat: list[float] = []
        took: list[float] = []
        hits: list[int] = []
        errors: list[str] = []
        started = time.perf_counter()
        for q in queries:
            t = time.perf_counter()
            response = client.get(f"{base}/search", params={"q": q, "mode": mode, "limit": LIMIT})
            body = response.content
            elapsed = (time.perf_counter() - t) * 1000
            if response.status_code != 200:
                errors.append(f"{q[:60]}: HTTP {response.status_code} {body[:200]!r}")
                continue
            data = json.loads(body)
            lat.append(elapsed)
            if isinstance(data.get("took_ms"), (int, float)):
                took.append(float(data["took_ms"]))
            hits.append(len(data.get("results", [])))
        out[mode] = latency_summary(f"HTTP {mode:6}", lat, "server_took_ms", took, hits, errors, started)
    return out


# -- one corpus (worker) ---------------------------------------------------------------------------


def run_corpus(corpus: str, args: argparse.Namespace) -> dict[str, Any]:
    from kb.config import Settings
    from kb.service import KnowledgeBase

    rss: dict[str, Any] = {}

    def phase(name: str) -> None:
        rss[name] = {
            "peak_rss_mib": peak_rss_mib(),
            "rss_mib": current_rss_mib(),
            "ru_maxrss_mib": getrusage_maxrss_mib(),
            "loadavg": load_average(),
        }

    phase("start")
    name = CORPORA[corpus]
    import kb as kb_package

    result: dict[str, Any] = {
        "corpus": name,
        "model": args.model,
        "queries_requested": args.queries,
        "kb_module": str(Path(kb_package.__file__).parent),
        "errors": [],
        "rss": rss,
    }
    workdir = Path(tempfile.mkdtemp(prefix=f"kb-bench-{corpus}-"))
    try:
        roots, source = prepare_corpus(corpus, workdir)
        result["source"] = source
        queries, warmup, query_sources = load_queries(args.queries)
        result["queries"] = query_sources
        phase("corpus_and_queries_loaded")
        data_dir = workdir / "data"
        settings = Settings(data_dir=data_dir, embedding_model=args.model, database_url="", index_dir=None)

        log(f"{name}: importing {', '.join(Path(r).name for r in roots)} with model {args.model}")
        marks: dict[str, float] = {}
        counter = {"n": 0}

        def progress(done: int, total: int, path: Path) -> None:
            counter["n"] += 1
            marks["last_file"] = time.perf_counter()
            if done == total or counter["n"] % 200 == 0:
                log(f"  stored {counter['n']} articles ({done}/{total} of {path.parent.name}...)")

        t0 = time.perf_counter()
        kb = KnowledgeBase(settings)
        t1 = time.perf_counter()
        kb.open()
        t2 = time.perf_counter()
        phase("opened_empty")
        report = kb.writer.import_paths(list(roots), "bench", progress=progress)
        t3 = time.perf_counter()
        phase("imported_and_indexed")
        status = kb.index.status()
        t4 = time.perf_counter()
        import_s = t3 - t2
        total_s = t3 - t0
        chunks = status.vector_chunks
        articles = status.articles
        result["import"] = {
            "report": {
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "skipped": len(report.skipped),
                "errors": len(report.errors),
                "error_examples": [{"path": p, "error": e} for p, e in report.errors[:10]],
            },
            "construct_s": round(t1 - t0, 2),
            "open_empty_s": round(t2 - t1, 2),
            "import_and_index_s": round(import_s, 2),
            "store_phase_s": round(marks.get("last_file", t2) - t2, 2),
            "index_phase_s": round(t3 - marks.get("last_file", t2), 2),
            "total_s": round(total_s, 2),
            "articles_per_s": round(articles / import_s, 1) if import_s else None,
            "chunks_per_s": round(chunks / import_s, 1) if import_s else None,
            "index_status_s": round(t4 - t3, 3),
        }
        result["index_status"] = asdict(status)
        result["settings"] = json.loads(settings.model_dump_json())
        log(
            f"{name}: {articles} articles, {chunks} chunks in {import_s:.1f} s "
            f"({result['import']['articles_per_s']} articles/s, {result['import']['chunks_per_s']} chunks/s); "
            f"consistent={status.consistent}; {report.created} created, {len(report.skipped)} skipped, "
            f"{len(report.errors)} errors"
        )

        def attempt(label: str, fn: Callable[[], Any]) -> Any:
            """Run one measurement; a failure is recorded in the result and the next phase still runs."""
            try:
                return fn()
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                log(f"{name}: {label} FAILED: {message[:1500]}")
                result["errors"].append({"phase": label, "error": message[:4000]})
                return None

        log(f"{name}: in-process latency, {len(queries)} queries x {len(MODES)} modes ({WARMUP} warm-up each)")
        result["inprocess"] = {"latency": attempt("in-process latency", lambda: measure_inprocess(kb, queries, warmup))}
        phase("inprocess_latency")
        kb.close()

        index_dir = settings.resolved_index_dir
        db_file = data_dir / "kb.sqlite3"
        result["disk"] = {
            "index_dir": str(index_dir),
            "index": dir_size(index_dir),
            "sqlite": file_sizes([db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")]),
            "data_dir_total": dir_size(data_dir),
        }
        log(f"{name}: index {result['disk']['index']['mib']} MiB, SQLite {result['disk']['sqlite']['mib']} MiB")

        log(f"{name}: cold start in-process ({args.cold_runs} fresh processes)")
        result["inprocess"]["cold_start"] = attempt(
            "cold start in-process", lambda: measure_cold_inprocess(data_dir, args.model, queries[0], args.cold_runs)
        )
        phase("cold_inprocess")

        log(f"{name}: HTTP ({args.cold_runs} server starts; latency on the last one)")
        result["http"] = attempt(
            "HTTP", lambda: measure_http(data_dir, args.model, queries, warmup, args.cold_runs, workdir / "server.log")
        )
        phase("http")
        return result
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        log(f"{name}: FAILED: {message[:1500]}")
        result["errors"].append({"phase": "setup/import", "error": message[:4000]})
        return result
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# -- report ----------------------------------------------------------------------------------------


def _latency_cell(where: str, mode: str, r: dict[str, Any]) -> str:
    m = r[where]["latency"][mode]
    return "{p50} / {p95} / {p99}".format(**m["latency_ms"]) + (f" ({m['errors']} errors)" if m["errors"] else "")


def _load_cell(key: str, r: dict[str, Any]) -> str:
    return " / ".join(str(x) for x in r["rss"][key]["loadavg"])


def write_readme(out: Path, machine: dict[str, Any], results: list[dict[str, Any]], argv: list[str]) -> None:
    lines = [
        "# kb benchmark results",
        "",
        f"Written by `bench/run.py` (`{' '.join(['python', 'bench/run.py', *machine.get('argv', argv)])}`); "
        "overwritten on each run. "
        "Method: `bench/README.md`. Raw numbers: the JSON file of each corpus.",
        "",
        f"- date: {machine['date']}",
        f"- machine: nproc {machine['nproc']}, {machine['cpu_model'] or 'unknown CPU'}, "
        f"{machine['mem_total_gib']} GiB RAM, {machine['platform']}",
        f"- python: {machine['python']} ({machine['python_executable']})",
        f"- model: {machine['model']}"
        + "".join(
            sorted(
                {
                    f", backend {r['settings'].get('embedding_backend', '?')}"
                    for r in results
                    if "settings" in r and machine["model"] != "hash"
                }
            )
        ),
        f"- kb: git {machine['git'].get('commit', '?')}"
        + (" (kb/ had uncommitted changes)" if machine["git"].get("kb_dirty") else ""),
        f"- kb source snapshot: sha256 {machine.get('kb_source', {}).get('sha256', '?')} "
        f"(all processes of the run import this copy)",
        f"- packages: {', '.join(f'{k} {v}' for k, v in machine['packages'].items())}",
        "",
    ]
    if not results:
        lines.append("No corpus was measured.")
    else:
        names = [r["corpus"] for r in results]
        head = "| | " + " | ".join(names) + " |"
        sep = "|---|" + "---|" * len(names)

        def row(label: str, fn: Callable[[dict[str, Any]], Any]) -> str:
            cells = []
            for r in results:
                try:
                    cells.append(str(fn(r)))
                except (KeyError, TypeError, IndexError):
                    cells.append("—")
            return f"| {label} | " + " | ".join(cells) + " |"

        lines += ["## Import and index", "", head, sep]
        lines += [
            row(
                "articles (created / skipped / errors)",
                lambda r: (
                    f"{r['index_status']['articles']} "
                    f"({r['import']['report']['created']} / {r['import']['report']['skipped']} / "
                    f"{r['import']['report']['errors']})"
                ),
            ),
            row("chunks (vector leg)", lambda r: r["index_status"]["vector_chunks"]),
            row("index consistent", lambda r: r["index_status"]["consistent"]),
            row("import + index, s", lambda r: r["import"]["import_and_index_s"]),
            row(
                "… of which storing articles / indexing, s",
                lambda r: f"{r['import']['store_phase_s']} / {r['import']['index_phase_s']}",
            ),
            row(
                "KnowledgeBase construct + open (empty), s",
                lambda r: f"{r['import']['construct_s']} + {r['import']['open_empty_s']}",
            ),
            row("articles/s", lambda r: r["import"]["articles_per_s"]),
            row("chunks/s", lambda r: r["import"]["chunks_per_s"]),
            row("index on disk, MiB", lambda r: r["disk"]["index"]["mib"]),
            row("SQLite file, MiB", lambda r: r["disk"]["sqlite"]["mib"]),
            row("whole data folder (with exported model, if any), MiB", lambda r: r["disk"]["data_dir_total"]["mib"]),
            "",
            "## Cold start to first answer (fresh process, index already built; median of runs, first run)",
            "",
            head,
            sep,
            row(
                "in-process (open + 1 hybrid search), s",
                lambda r: (
                    f"{r['inprocess']['cold_start']['first_answer_s_median']} "
                    f"(first {r['inprocess']['cold_start']['first_answer_s_first_run']})"
                ),
            ),
            row(
                "… imports / construct / open / search, s",
                lambda r: " / ".join(
                    str(r["inprocess"]["cold_start"]["runs"][-1][k])
                    for k in ("imports_s", "construct_s", "open_s", "first_search_s")
                ),
            ),
            row(
                "HTTP (`kb serve` spawn → first 200 from /search), s",
                lambda r: (
                    f"{r['http']['cold_start']['first_answer_s_median']} "
                    f"(first {r['http']['cold_start']['first_answer_s_first_run']})"
                ),
            ),
            "",
        ]
        qn = results[0].get("queries", {})
        lines += [
            f"## Search latency, ms (p50 / p95 / p99; {qn.get('measured', '?')} queries: "
            f"{qn.get('faq_questions', '?')} FAQ questions + {qn.get('titles', '?')} article titles; "
            f"{WARMUP} warm-up queries per mode; limit {LIMIT})",
            "",
            head,
            sep,
        ]
        for where, label in (("inprocess", "in-process"), ("http", "HTTP (client side)")):
            for mode in MODES:
                lines.append(row(f"{label} {mode}", functools.partial(_latency_cell, where, mode)))
        lines += [
            row(
                "HTTP hybrid, server-side took_ms p50 / p95",
                lambda r: "{p50} / {p95}".format(**r["http"]["latency"]["hybrid"]["server_took_ms"]),
            ),
            row(
                "in-process hybrid throughput (sequential), queries/s",
                lambda r: r["inprocess"]["latency"]["hybrid"]["qps"],
            ),
            "",
            "## Memory (peak RSS, MiB)",
            "",
            head,
            sep,
            row("bench worker after import + index", lambda r: r["rss"]["imported_and_indexed"]["peak_rss_mib"]),
            row("bench worker after in-process latency", lambda r: r["rss"]["inprocess_latency"]["peak_rss_mib"]),
            row("bench worker at end (HTTP client phase)", lambda r: r["rss"]["http"]["peak_rss_mib"]),
            row(
                "cold in-process child (open + 1 search)",
                lambda r: r["inprocess"]["cold_start"]["runs"][-1]["peak_rss_mib"],
            ),
            row("`kb serve` after latency runs", lambda r: r["http"]["server"]["peak_rss_mib"]),
            "",
            "## Machine load during the run (load average 1 / 5 / 15 min)",
            "",
            "Other work on the machine slows the model runtime's and faiss' thread pools a lot; compare with care "
            f"when the 1-minute load exceeded nproc ({machine['nproc']}).",
            "",
            head,
            sep,
        ]
        for label, key in (
            ("after import + index", "imported_and_indexed"),
            ("after in-process latency", "inprocess_latency"),
            ("after HTTP", "http"),
        ):
            lines.append(row(label, functools.partial(_load_cell, key)))
        lines.append("")
        problems = [(r["corpus"], e) for r in results for e in r.get("errors", [])]
        if problems:
            lines += ["## Problems", ""]
            lines += [f"- {corpus}, {e['phase']}: `{' '.join(e['error'].split())[:600]}`" for corpus, e in problems]
            lines.append("")
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark kb import, index size, cold start and latency.")
    parser.add_argument("--model", default="m3e-small", help="embedding model (default m3e-small; 'hash' is fast)")
    parser.add_argument(
        "--backend",
        choices=["onnx", "torch"],
        help="embedding backend (KB_EMBEDDING_BACKEND; default: kb's own default)",
    )
    parser.add_argument("--corpus", default="all", choices=["all", "shared", "tidb"])
    parser.add_argument("--queries", type=int, default=200, help="measured queries per mode (default 200)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="results folder")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh processes / server starts (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folders")
    parser.add_argument(
        "--readme-only",
        action="store_true",
        help="measure nothing: rewrite <out>/README.md from the JSON files already in <out>",
    )
    parser.add_argument("--worker", choices=sorted(CORPORA), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.queries < 1 or args.cold_runs < 1:
        parser.error("--queries and --cold-runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:  # one corpus, in its own process (peak RSS per corpus)
        result = run_corpus(args.worker, args)
        args.worker_out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
        return 0

    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out.mkdir(parents=True, exist_ok=True)
    corpora = ["shared", "tidb"] if args.corpus == "all" else [args.corpus]
    if args.readme_only:
        paths = [out / f"{CORPORA[c]}.json" for c in corpora]
        saved = [json.loads(p.read_text(encoding="utf-8")) for p in paths if p.exists()]
        if not saved:
            raise SystemExit(f"bench: no results in {out}")
        write_readme(out, saved[0]["machine"], saved, saved[0]["machine"].get("argv", ["(see the JSON files)"]))
        log(f"wrote {out / 'README.md'} from {len(saved)} JSON files")
        return 0
    machine = machine_info(args.model)
    machine["argv"] = argv
    log(f"machine: nproc {machine['nproc']}, python {machine['python']}, model {args.model}; corpora {corpora}")
    results = []
    failed = []
    with tempfile.TemporaryDirectory(prefix="kb-bench-src-") as src:
        # Every process of this run (workers, cold-start children, servers) imports the same copy of kb/,
        # taken now: edits to the working tree during a long run cannot mix code versions (an index built by
        # one version and opened by another fails its settings check).
        env = snapshot_kb(Path(src), machine)
        if args.backend:
            env["KB_EMBEDDING_BACKEND"] = args.backend
        for corpus in corpora:
            name = CORPORA[corpus]
            worker_out = Path(src) / f"{corpus}.json"
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                corpus,
                "--worker-out",
                str(worker_out),
                "--model",
                args.model,
                "--queries",
                str(args.queries),
                "--cold-runs",
                str(args.cold_runs),
            ]
            if args.keep:
                cmd.append("--keep")
            started = time.perf_counter()
            code = subprocess.run(cmd, env=env, cwd=src).returncode
            if not worker_out.exists():
                log(f"{name}: worker failed with exit status {code} and wrote no results")
                failed.append(name)
                continue
            result = json.loads(worker_out.read_text(encoding="utf-8"))
            result["bench_wall_s"] = round(time.perf_counter() - started, 1)
            result["machine"] = machine
            if code != 0 or result.get("errors"):
                failed.append(name)
            path = out / f"{name}.json"
            path.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
            log(f"{name}: wrote {path} ({result['bench_wall_s']} s; {len(result.get('errors', []))} errors)")
            results.append(result)
    write_readme(out, machine, results, argv)
    log(f"wrote {out / 'README.md'}")
    if failed:
        log(f"problems in: {', '.join(failed)} (see the errors in the JSON files and README)")
    return 1 if failed else 0


def snapshot_kb(dest: Path, machine: dict[str, Any]) -> dict[str, str]:
    """Copy the kb package to ``dest`` and return an environment that imports it from there."""
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("kb")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bench: the kb package is not installed in this interpreter")
    package = Path(next(iter(spec.submodule_search_locations)))
    shutil.copytree(package, dest / "kb", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for path in sorted((dest / "kb").rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(dest).as_posix().encode() + b"\0" + path.read_bytes())
    machine["kb_source"] = {"copied_from": str(package), "sha256": digest.hexdigest()[:16]}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(dest), *filter(None, [env.get("PYTHONPATH")])])
    log(f"kb source snapshot {machine['kb_source']['sha256']} from {package}")
    return env


if __name__ == "__main__":
    raise SystemExit(main())
