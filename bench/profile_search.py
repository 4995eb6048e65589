"""Where a search spends its time: cProfile call counts and shares, and SQL statements per query.

Wall-clock latency is noisy on a shared machine; call counts, SQL round trips and each function's share of the
profile are not. Runs :meth:`kb.search.engine.SearchEngine.search` over the desk-dev queries in one mode under
cProfile and prints the functions with the largest cumulative share, the number of SQL statements per query and
the encoder's share (the floor's own cost).

    .venv/bin/python bench/profile_search.py --data-dir DIR [--mode hybrid|bm25|vector] [--top 40] [--viewer service]

``DIR`` is a data folder holding the four shared article collections (the ``--data-dir`` of ``bench/peer.py`` or
of the desk-dev ``kb eval``); it is imported there first when empty. ``--viewer service`` searches as a service
account with the ``search`` scope only (session 7's ``bench/http_load.py`` caller: it may not see internal
articles, which every imported article is); the default is the system (no viewer), which skips every per-viewer
statistic.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import time
from pathlib import Path

import jieba
from sqlalchemy import event

from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.identity.permissions import Permission
from kb.identity.scopes import Principal
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
SHARED_ARTICLES = ROOT.parent / "shared" / "data" / "articles"
FOLDERS = ("k8s-troubleshooting", "windows-troubleshooting", "tidb-faq", "linux-command")
QUERIES = ROOT / "bench" / "data" / "desk-dev" / "queries.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench-peer")
    parser.add_argument("--model", default="m3e-small")
    parser.add_argument("--mode", default="hybrid", choices=("hybrid", "bm25", "vector"))
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--warm", action="store_true", help="run every query once before profiling (warm caches)")
    parser.add_argument("--sort", default="cumulative", choices=("cumulative", "tottime"))
    parser.add_argument("--viewer", default="system", choices=("system", "service"), help="who searches")
    args = parser.parse_args()
    jieba.setLogLevel(60)
    kb = KnowledgeBase(Settings(data_dir=args.data_dir, embedding_model=args.model, database_url="")).open()
    try:
        if kb.store.count() == 0:
            kb.writer.import_paths([SHARED_ARTICLES / f for f in FOLDERS], "bench-peer")
        queries = [json.loads(line)["text"] for line in QUERIES.read_text(encoding="utf-8").splitlines() if line]
        viewer = None if args.viewer == "system" else Principal("svc:bench", (), scopes=frozenset({Permission.SEARCH}))
        filters = ArticleFilter(viewer=viewer)

        def request(query: str) -> SearchRequest:
            return SearchRequest(query, mode=args.mode, limit=10, filters=filters)

        for query in queries if args.warm else queries[:20]:  # warm caches as a running server has them
            kb.engine.search(request(query))
        statements = 0

        def count(*_: object) -> None:
            nonlocal statements
            statements += 1

        event.listen(kb.database.engine, "before_cursor_execute", count)
        profile = cProfile.Profile()
        profile.enable()
        cpu = time.thread_time()
        for query in queries:
            kb.engine.search(request(query))
        cpu = time.thread_time() - cpu
        profile.disable()
        event.remove(kb.database.engine, "before_cursor_execute", count)
    finally:
        kb.close()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats(args.sort).print_stats(args.top)
    print(
        f"mode {args.mode}, viewer {args.viewer}: {len(queries)} queries, {statements / len(queries):.2f} SQL "
        f"statements per query, {cpu * 1000 / len(queries):.2f} ms thread CPU per query under the profiler, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    total = stats.total_tt  # type: ignore[attr-defined]
    encode = sum(
        v[3]
        for k, v in stats.stats.items()
        if k[2] == "encode_queries"  # type: ignore[attr-defined]
    )
    print(f"profile total {total:.2f} s; encode_queries {encode:.2f} s ({encode / total:.0%})")
    print(out.getvalue())


if __name__ == "__main__":
    main()
