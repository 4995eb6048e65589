"""``kb import`` and ``kb index``: Markdown import and index maintenance."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kb.articles.outbox import Outbox
from kb.cli.output import print_json
from kb.cli.progress import bars_enabled, import_progress, rebuild_progress
from kb.config import Settings


def add_parsers(sub: Any) -> None:
    """Add the commands of this module to ``sub`` (an argparse subparsers object)."""
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
    rb = idx_sub.add_parser("rebuild", help="build a new index generation from the database and swap it in")
    rb.add_argument("--json", action="store_true", help="print the new manifest and the status as JSON (no bar)")
    st = idx_sub.add_parser("status", help="counts in the database and both index legs")
    st.add_argument("--json", action="store_true", help="print as JSON")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings).open()
    try:
        outbox = Outbox(kb.database)
        lag = lambda: outbox.pending(kb.index.generation.manifest.last_seq)  # noqa: E731
        with import_progress(lag, bars_enabled(args.json)) as progress:
            report = kb.writer.import_paths(
                args.paths,
                settings.dev_user,
                collection=args.collection,
                delete_missing=args.delete_missing,
                as_reviews=args.as_reviews,
                progress=progress.file_done,
            )
        status = kb.index.status()
    finally:
        kb.close()
    if args.json:
        print_json(report.as_dict() | {"index": asdict(status)})
    else:
        print(
            f"imported: {report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{len(report.retired)} retired, {len(report.skipped)} skipped, {len(report.errors)} errors"
        )
        for path, error in report.errors:
            print(f"error: {path}: {error}", file=sys.stderr)
        print(f"index: {status.articles} articles, {status.bm25_chunks} chunks, consistent={status.consistent}")
    return 1 if report.errors and not report.total else 0


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings)
    try:
        if args.index_command == "rebuild":
            with rebuild_progress(bars_enabled(args.json)) as progress:
                manifest = kb.index.rebuild(progress=progress)
            status = kb.index.status()
            if args.json:
                print_json({"generation": manifest.generation, "model": manifest.model, "index": asdict(status)})
                return 0
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
            print_json(asdict(status))
        else:
            for key, value in asdict(status).items():
                print(f"{key:20} {value}")
        return 0 if status.consistent else 2
    finally:
        kb.close()
