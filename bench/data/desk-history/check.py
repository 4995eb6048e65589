"""Validate ``tickets.jsonl`` of the desk history and print its counts (standard library only).

Checks that every line parses as a JSON object with the expected fields, ids are unique, ``channel`` is one of
phone/email/im/web, every ``article`` names an existing file under the articles root (``--articles``, default
``/work/shared/data/articles``; an article id is ``<collection>/<path inside the collection>``, the form
``kb eval`` uses for Markdown corpora), and ``opened_at`` < ``closed_at`` (ISO 8601 with offset).
Exit status 0 when all lines pass, 1 otherwise (each problem is printed as ``line N: ...``).

Usage: ``python3 bench/data/desk-history/check.py [--articles DIR] [tickets.jsonl]``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

FIELDS = ("id", "title", "description", "article", "channel", "opened_at", "closed_at", "requester")
CHANNELS = frozenset({"phone", "email", "im", "web"})


def check(tickets: Path, articles: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Return ``(problems, valid tickets)`` for the file ``tickets`` against the articles root ``articles``."""
    problems: list[str] = []
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for n, line in enumerate(tickets.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            problems.append(f"line {n}: not a JSON object")
            continue
        missing = [f for f in FIELDS if not isinstance(row.get(f), str) or not row[f].strip()]
        if missing:
            problems.append(f"line {n}: missing or empty {', '.join(missing)}")
            continue
        if row["id"] in seen:
            problems.append(f"line {n}: duplicate id {row['id']}")
        seen.add(row["id"])
        if row["channel"] not in CHANNELS:
            problems.append(f"line {n}: unknown channel {row['channel']!r}")
        if not row["article"].endswith(".md") or not (articles / row["article"]).is_file():
            problems.append(f"line {n}: no article file {row['article']}")
        try:
            opened = datetime.fromisoformat(row["opened_at"])
            closed = datetime.fromisoformat(row["closed_at"])
            if opened.tzinfo is None or closed.tzinfo is None:
                problems.append(f"line {n}: dates need a UTC offset")
            elif not opened < closed:
                problems.append(f"line {n}: closed_at is not after opened_at")
        except ValueError:
            problems.append(f"line {n}: dates are not ISO 8601")
        rows.append(row)
    return problems, rows


def main() -> int:
    """Run the checks from the command line and print the counts; returns the exit status."""
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tickets", nargs="?", type=Path, default=here / "tickets.jsonl")
    parser.add_argument("--articles", type=Path, default=Path("/work/shared/data/articles"))
    args = parser.parse_args()
    problems, rows = check(args.tickets, args.articles)
    for problem in problems:
        print(problem, file=sys.stderr)
    collections = Counter(r["article"].split("/", 1)[0] for r in rows)
    distinct = {r["article"] for r in rows}
    per_collection = Counter(a.split("/", 1)[0] for a in distinct)
    print(f"{len(rows)} tickets, {len(distinct)} distinct articles, {len(problems)} problems")
    for name, count in sorted(collections.items()):
        print(f"  {name}: {count} tickets, {per_collection[name]} articles")
    for name, count in sorted(Counter(r["channel"] for r in rows).items()):
        print(f"  channel {name}: {count}")
    per_article = Counter(r["article"] for r in rows)
    print("  tickets per article: " + ", ".join(f"{k}: {v}" for k, v in sorted(Counter(per_article.values()).items())))
    lengths = sorted(len(r["description"]) for r in rows)
    if lengths:
        print(f"  description length: min {lengths[0]}, median {lengths[len(lengths) // 2]}, max {lengths[-1]}")
        print(f"  opened: {min(r['opened_at'] for r in rows)} .. {max(r['opened_at'] for r in rows)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
