"""The ``kb`` command line: parse arguments, call one library function, print."""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import logging
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kb.cli import articles as cli_articles
from kb.config import Settings
from kb.errors import KBError

logger = logging.getLogger("kb.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kb", description="IT service desk knowledge base: import, index and search articles."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    imp = sub.add_parser("import", help="import Markdown folders or files as articles, then index them")
    imp.add_argument("paths", nargs="+", type=Path, help="folders (each an import root) or .md files")
    imp.add_argument("--collection", help="collection name (default: each root's folder name)")
    imp.add_argument("--delete-missing", action="store_true", help="retire articles whose file is gone")
    imp.add_argument(
        "--as-reviews", action="store_true", help="read the files as post-incident reviews (kind post_incident_review)"
    )
    imp.add_argument("--json", action="store_true", help="print the report as JSON")

    idx = sub.add_parser("index", help="index maintenance")
    idx_sub = idx.add_subparsers(dest="index_command", required=True)
    idx_sub.add_parser("rebuild", help="build a new index generation from the database and swap it in")
    st = idx_sub.add_parser("status", help="counts in the database and both index legs")
    st.add_argument("--json", action="store_true", help="print as JSON")

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
    ev.add_argument("folder", type=Path, help="folder with corpus.jsonl, queries.jsonl, qrels.tsv")
    ev.add_argument("--mode", default="all", choices=["all", "hybrid", "bm25", "vector"])
    ev.add_argument("--json", action="store_true", help='print {mode: {"nDCG@10": x, ...}}')
    ev.add_argument("--out", type=Path, help="also write the full report (with per-query results) as JSON here")

    cli_articles.add_parser(sub)

    tk = sub.add_parser("tickets", help="ticket exports")
    tk_sub = tk.add_subparsers(dest="tickets_command", required=True)
    ti = tk_sub.add_parser("import", help="import a CSV / JSONL export (or a zip holding one) through a mapping")
    ti.add_argument("file", type=Path)
    ti.add_argument("--mapping", required=True, help="bundled mapping name (it-tickets-en, kb-zh) or a YAML file")
    ti.add_argument("--json", action="store_true", help="print the report as JSON")
    td = tk_sub.add_parser("distill", help="group alike closed tickets into draft articles (or update proposals)")
    td.add_argument("--source", help="only tickets of this export (mapping source)")
    td.add_argument("--category", help="only tickets of this category")
    td.add_argument("--json", action="store_true", help="print the report as JSON")

    an = sub.add_parser("analysis", help="operations analysis of the desk's tickets over a date window")
    an.add_argument("--start", required=True, type=dt.datetime.fromisoformat, help="ISO date/time (UTC without offset)")
    an.add_argument("--end", required=True, type=dt.datetime.fromisoformat, help="ISO date/time, exclusive")
    an.add_argument("--csv", action="store_true", help="print CSV instead of JSON")

    sv = sub.add_parser("serve", help="serve the HTTP API")
    sv.add_argument("--host", help="bind address (default KB_HOST or 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default KB_PORT or 8000)")
    sv.add_argument(
        "--import",
        dest="import_paths",
        action="append",
        type=Path,
        default=[],
        help="import these Markdown folders before serving (unchanged files cost nothing)",
    )
    return parser


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _plain(snippet: str) -> str:
    return html.unescape(re.sub(r"</?mark>", lambda m: "】" if m.group(0)[1] == "/" else "【", snippet))


def _cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings).open()
    try:
        report = kb.writer.import_paths(
            args.paths,
            settings.dev_user,
            collection=args.collection,
            delete_missing=args.delete_missing,
            as_reviews=args.as_reviews,
        )
        status = kb.index.status()
    finally:
        kb.close()
    if args.json:
        _print_json(report.as_dict() | {"index": asdict(status)})
    else:
        print(
            f"imported: {report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{len(report.retired)} retired, {len(report.skipped)} skipped, {len(report.errors)} errors"
        )
        for path, error in report.errors:
            print(f"error: {path}: {error}", file=sys.stderr)
        print(f"index: {status.articles} articles, {status.bm25_chunks} chunks, consistent={status.consistent}")
    return 1 if report.errors and not report.total else 0


def _cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings)
    try:
        if args.index_command == "rebuild":
            manifest = kb.index.rebuild()
            status = kb.index.status()
            print(
                f"rebuilt generation {manifest.generation}: {status.articles} articles, "
                f"{status.vector_chunks} chunks, model {manifest.model}"
            )
            return 0
        if kb.index.open_readonly() is None:
            print("no index yet: run `kb import` or `kb index rebuild`", file=sys.stderr)
            return 1
        status = kb.index.status()
        if args.json:
            _print_json(asdict(status))
        else:
            for key, value in asdict(status).items():
                print(f"{key:20} {value}")
        return 0 if status.consistent else 2
    finally:
        kb.close()


def _cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from kb.articles.store import ArticleFilter
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
        _print_json(asdict(result))
        return 0
    if args.explain and result.explain:
        print(f"normalized: {result.explain.normalized_query}")
        print(f"terms:      {' '.join(result.explain.terms) or '(none: vector leg only)'}")
        print(f"legs:       {result.explain.legs}  candidates: {result.explain.candidates}")
    if not result.results:
        print("no results")
    for rank, hit in enumerate(result.results, start=1):
        print(f"{rank:2}. [{hit.article_id}] {hit.title}  (score {hit.score:.4f})")
        if hit.source_path:
            print(f"    {hit.source_path}")
        if hit.heading_path:
            print(f"    § {' / '.join(hit.heading_path)}")
        print(f"    {_plain(hit.snippet)}")
        if args.explain and hit.explain:
            print(f"    explain: {json.dumps(hit.explain, ensure_ascii=False, default=asdict)}")
    print(f"({result.took_ms} ms)")
    return 0


def _cmd_why(args: argparse.Namespace, settings: Settings) -> int:
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings).open()
    try:
        report = kb.engine.why(args.query, args.article_id)
    finally:
        kb.close()
    if args.json:
        _print_json(report.as_json())
        return 0
    art = report.article
    print(f"article {art.id}: {art.title}  (status {art.status}, {art.chunks} chunks)")
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


def _cmd_synonyms(args: argparse.Namespace, settings: Settings) -> int:
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings)
    try:
        if args.synonyms_command == "add":
            group = kb.synonyms.add(args.terms, settings.dev_user)
            print(f"added group {group.id}: {', '.join(group.terms)}")
        elif args.synonyms_command == "remove":
            kb.synonyms.remove(args.group_id)
            print(f"removed group {args.group_id}")
        else:
            for group in kb.synonyms.groups():
                print(f"{group.id:4}  {', '.join(group.terms)}")
    finally:
        kb.close()
    return 0


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from kb.evaluation import evaluate
    from kb.search.results import MODES

    modes = MODES if args.mode == "all" else (args.mode,)
    report = evaluate(args.folder, settings, modes, progress=lambda msg: logger.info("%s", msg))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(asdict(report), ensure_ascii=False, indent=1), encoding="utf-8")
    if args.json:
        _print_json(report.metrics)
    else:
        print(
            f"{report.dataset}: {report.documents} documents, {report.queries} queries, "
            f"model {settings.embedding_model}"
        )
        print(report.table())
    return 0


def _cmd_tickets(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from kb.ingest.tickets import import_tickets
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings)
    try:
        if args.tickets_command == "distill":
            return _distill(kb, args, settings)
        with tqdm(unit=" rows", desc="tickets", disable=args.json, file=sys.stderr) as bar:
            report = import_tickets(
                kb.database, args.file, args.mapping, progress=lambda rows: bar.update(rows - bar.n)
            )
    finally:
        kb.close()
    if args.json:
        _print_json(report.as_dict())
    else:
        print(
            f"tickets: {report.rows} rows in {report.seconds:.1f} s: {report.created} created, "
            f"{report.updated} updated, {report.unchanged} unchanged, {report.failed} skipped"
        )
        for line, error in report.errors[:20]:
            print(f"line {line}: {error}", file=sys.stderr)
    return 0 if report.created + report.updated + report.unchanged or not report.rows else 1


def _distill(kb: Any, args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    kb.open()
    bars: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if args.json:
            return
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = tqdm(total=total, desc=phase, unit=" tickets" if phase != "drafting" else " groups")
        bar.update(done - bar.n)

    report = kb.distiller.distill(settings.dev_user, source=args.source, category=args.category, progress=progress)
    for bar in bars.values():
        bar.close()
    data = report.as_dict()
    if args.json:
        _print_json(data)
    else:
        print(
            f"distilled {data['tickets']} closed tickets: {data['groups']} groups "
            f"({data['tickets_in_groups']} tickets), {data['new_articles']} draft articles, "
            f"{data['update_proposals']} update proposals"
        )
        for draft in data["drafts"][:20]:
            target = f" -> article {draft['target_article']}" if draft["target_article"] else ""
            print(f"  {draft['size']:6} tickets  draft {draft['article_id']}{target}  {draft['title']}")
    return 0


def _cmd_analysis(args: argparse.Namespace, settings: Settings) -> int:
    from kb.desk.analysis import as_csv
    from kb.models import as_utc
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings)
    try:
        report = kb.analysis.analyze(as_utc(args.start), as_utc(args.end))
    finally:
        kb.close()
    if args.csv:
        print(as_csv(report), end="")
    else:
        _print_json(report.as_dict())
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from kb.api import create_app
    from kb.service import KnowledgeBase

    host = args.host or settings.host
    port = args.port or settings.port
    kb = KnowledgeBase(settings)
    if args.import_paths:
        kb.open()
        report = kb.writer.import_paths(args.import_paths, settings.dev_user)
        print(
            f"imported {', '.join(str(p) for p in args.import_paths)}: {report.created} created, "
            f"{report.updated} updated, {report.unchanged} unchanged, {len(report.errors)} errors",
            flush=True,
        )
    if settings.smtp_port:
        from kb.desk.channels.email import SmtpIntake

        smtp_host, smtp_port = SmtpIntake(kb.tickets, settings.intake_default_service, host, settings.smtp_port).start()
        print(f"e-mail intake (SMTP) on {smtp_host}:{smtp_port}", flush=True)
    example = f"http://{host}:{port}/search?q={quote('远程桌面 没有可用的许可证')}"
    print(f"kb serving on http://{host}:{port}  (try {example})", flush=True)
    uvicorn.run(create_app(settings, kb=kb), host=host, port=port, log_level="info")
    return 0


COMMANDS = {
    "import": _cmd_import,
    "index": _cmd_index,
    "search": _cmd_search,
    "eval": _cmd_eval,
    "synonyms": _cmd_synonyms,
    "why": _cmd_why,
    "article": cli_articles.run,
    "tickets": _cmd_tickets,
    "analysis": _cmd_analysis,
    "serve": _cmd_serve,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kb`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
        return COMMANDS[args.command](args, settings)
    except KBError as exc:
        print(f"kb: error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
