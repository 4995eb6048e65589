"""``kb tickets`` and ``kb analysis``: ticket exports, distillation and the operations analysis."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from kb.cli.output import print_json
from kb.config import Settings


def add_parsers(sub: Any) -> None:
    """Add the commands of this module to ``sub`` (an argparse subparsers object)."""
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


def cmd_tickets(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from kb.cli.users import cli_context
    from kb.ingest.mapping import load_mapping
    from kb.ingest.tickets import import_tickets
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings)
    try:
        if args.tickets_command == "distill":
            return _distill(kb, args, settings)
        with tqdm(unit=" rows", desc="tickets", disable=args.json, file=sys.stderr) as bar:
            report = import_tickets(
                kb.database,
                args.file,
                load_mapping(args.mapping, settings.mappings_dir),
                progress=lambda rows: bar.update(rows - bar.n),
                audit=lambda s, event, obj, why: kb.audit.record(s, cli_context(), event, obj, reason=why),
            )
    finally:
        kb.close()
    if args.json:
        print_json(report.as_dict())
    else:
        print(
            f"tickets: {report.rows} rows in {report.seconds:.1f} s: {report.created} created, "
            f"{report.updated} updated, {report.unchanged} unchanged, {report.failed} skipped, "
            f"{report.conflicts} conflicts"
        )
        for line, error in report.errors[:20]:
            print(f"line {line}: {error}", file=sys.stderr)
        for conflict in report.conflicting[:20]:
            print(f"line {conflict.line}: {conflict.number}: {conflict.reason}", file=sys.stderr)
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
        print_json(data)
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


def cmd_analysis(args: argparse.Namespace, settings: Settings) -> int:
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
        print_json(report.as_dict())
    return 0
