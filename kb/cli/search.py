"""``kb search``, ``kb why``, ``kb synonyms`` and ``kb eval``: the search engine from the command line."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kb.cli.output import for_terminal, plain, print_json
from kb.config import Settings

logger = logging.getLogger("kb.cli")


def add_parsers(sub: Any) -> None:
    """Add the commands of this module to ``sub`` (an argparse subparsers object)."""
    se = sub.add_parser("search", help="search the knowledge base")
    se.add_argument("query", help="query text")
    se.add_argument("--mode", default="hybrid", choices=["hybrid", "bm25", "vector"])
    se.add_argument("--limit", type=int, default=10, help="articles to show (1-100)")
    se.add_argument("--kind", action="append", default=[], help="filter by kind (repeatable)")
    se.add_argument("--service", action="append", default=[], help="filter by service (repeatable)")
    se.add_argument("--tag", action="append", default=[], help="require tag (repeatable)")
    se.add_argument("--status", action="append", default=[], help="statuses (default: published)")
    se.add_argument("--explain", action="store_true", help="show the query analysis and each leg's rank")
    se.add_argument("--json", action="store_true", help="print the same result objects as the API")

    wy = sub.add_parser("why", help="explain why an article did or did not match a query")
    wy.add_argument("query")
    wy.add_argument("article_id", type=int)
    wy.add_argument("--json", action="store_true", help="print as JSON")

    sy = sub.add_parser("synonyms", help="list or edit the synonym groups used to expand queries")
    sy_sub = sy.add_subparsers(dest="synonyms_command", required=True)
    sy_sub.add_parser("list", help="show all groups")
    sy_add = sy_sub.add_parser("add", help="add a group of equivalent terms")
    sy_add.add_argument("terms", nargs="+", help="two or more terms, e.g. VPN 虚拟专用网")
    sy_rm = sy_sub.add_parser("remove", help="remove a group by id")
    sy_rm.add_argument("group_id", type=int)

    ev = sub.add_parser("eval", help="measure retrieval quality on a BEIR-layout folder")
    ev.add_argument(
        "folder",
        type=Path,
        help="folder with queries.jsonl and qrels.tsv, and corpus.jsonl unless --articles is given",
    )
    ev.add_argument(
        "--articles",
        type=Path,
        action="append",
        default=[],
        help="Markdown root imported as a collection (repeatable); corpus id = collection/source_path",
    )
    ev.add_argument("--data-dir", type=Path, help="build (or reuse) the evaluation KB here instead of a temp dir")
    ev.add_argument(
        "--desk-history",
        type=Path,
        help="resolved tickets (JSON lines, kb.desk.history) replayed through the desk into a copy of the KB first",
    )
    ev.add_argument("--mode", default="all", choices=["all", "hybrid", "bm25", "vector"])
    ev.add_argument("--json", action="store_true", help='print {mode: {"nDCG@10": x, ...}}')
    ev.add_argument("--out", type=Path, help="also write the full report (with per-query results) as JSON here")


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from kb.articles.filters import ArticleFilter
    from kb.search.results import SearchRequest
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings).open()
    try:
        flt = ArticleFilter(
            statuses=tuple(args.status) or ("published",),
            kinds=tuple(args.kind),
            services=tuple(args.service),
            tags=tuple(args.tag),
        )
        result = kb.engine.search(
            SearchRequest(args.query, mode=args.mode, limit=args.limit, filters=flt, explain=args.explain)
        )
    finally:
        kb.close()
    if args.json:
        print_json(asdict(result))
        return 0
    if args.explain and result.explain:
        print(f"normalized: {result.explain.normalized_query}")
        print(f"terms:      {' '.join(result.explain.terms) or '(none: vector leg only)'}")
        print(f"legs:       {result.explain.legs}  candidates: {result.explain.candidates}")
    if not result.results:
        print("no results")
    for rank, hit in enumerate(result.results, start=1):
        print(f"{rank:2}. [{hit.article_id}] {for_terminal(hit.title)}  (score {hit.score:.4f})")
        if hit.source_path:
            print(f"    {hit.source_path}")
        if hit.heading_path:
            print(f"    § {for_terminal(' / '.join(hit.heading_path))}")
        print(f"    {plain(hit.snippet)}")
        if args.explain and hit.explain:
            print(f"    explain: {json.dumps(hit.explain, ensure_ascii=False, default=asdict)}")
    print(f"({result.took_ms} ms)")
    return 0


def cmd_why(args: argparse.Namespace, settings: Settings) -> int:
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings).open()
    try:
        report = kb.engine.why(args.query, args.article_id)
    finally:
        kb.close()
    if args.json:
        print_json(report.as_json())
        return 0
    art = report.article
    print(f"article {art.id}: {for_terminal(art.title)}  (status {art.status}, {art.chunks} chunks)")
    print(f"query: {report.normalized_query}")
    for term in report.terms:
        where = ", ".join(term.in_) or "NOT in the article"
        print(f"  term {term.term:<16} idf {term.idf:<7} {where}")
    bm25 = report.bm25
    print(f"BM25 leg:   rank {bm25.rank or 'not matched'}" + (f" ({bm25.note})" if bm25.note else ""))
    vec = report.vector
    print(f"vector leg: best chunk {vec.best_chunk}, cosine {vec.cosine}, chunk rank {vec.chunk_rank}")
    print(f"hybrid:     rank {report.hybrid_rank or 'not in the top 100'}")
    for reason in report.hidden_by_default_filters:
        print(f"hidden by default filters: {reason}")
    return 0


def cmd_synonyms(args: argparse.Namespace, settings: Settings) -> int:
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings)
    try:
        if args.synonyms_command == "add":
            group = kb.synonyms.add(args.terms, settings.dev_user)
            print(f"added group {group.id}: {', '.join(group.terms)}")
        elif args.synonyms_command == "remove":
            kb.synonyms.remove(args.group_id, settings.dev_user)
            print(f"removed group {args.group_id}")
        else:
            for group in kb.synonyms.groups():
                print(f"{group.id:4}  {', '.join(group.terms)}")
    finally:
        kb.close()
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from kb.evaluation import evaluate
    from kb.search.results import MODES

    modes = MODES if args.mode == "all" else (args.mode,)
    report = evaluate(
        args.folder,
        settings,
        modes,
        articles=args.articles,
        data_dir=args.data_dir,
        desk_history=args.desk_history,
        progress=lambda msg: logger.info("%s", msg),
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(asdict(report), ensure_ascii=False, indent=1), encoding="utf-8")
    if args.json:
        print_json(report.metrics)
    else:
        print(
            f"{report.dataset}: {report.documents} documents, {report.queries} queries "
            f"(+{report.unanswerable} unanswerable), "
            f"model {settings.embedding_model}"
            + (f", desk history {report.desk_history}" if report.desk_history else "")
        )
        print(report.table())
    return 0
