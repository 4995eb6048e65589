"""Exact-ranking guard for changes to the search path: every desk-dev query's whole answer, written or compared.

For each query of ``bench/data/desk-dev/queries.jsonl``: hybrid, bm25 and vector (limit 10, with and without
``explain``) and hybrid with RRF, each answer as the API's JSON without ``took_ms`` (ids, scores, snippets,
confidence, explanations). ``--write`` saves them; ``--compare`` runs them again and lists every answer that
differs in any field (exit 1 when one does). Session 6 used it around each change of ``kb/search``: 1,750
answers identical before and after.

    .venv/bin/python bench/search_golden.py [--data-dir var/bench-peer] --write before.json   # on the old code
    .venv/bin/python bench/search_golden.py [--data-dir var/bench-peer] --compare before.json  # on the new code
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import jieba
from pydantic import TypeAdapter

from kb.config import Settings
from kb.search.results import SearchRequest, SearchResult
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "bench" / "data" / "desk-dev" / "queries.jsonl"


def answers(data_dir: Path, model: str) -> list[dict[str, Any]]:
    """Every answer (module docstring), in a fixed order."""
    jieba.setLogLevel(60)
    queries = [json.loads(line)["text"] for line in QUERIES.read_text(encoding="utf-8").splitlines() if line]
    adapter = TypeAdapter(SearchResult)
    kb = KnowledgeBase(Settings(data_dir=data_dir, embedding_model=model, database_url="")).open()
    out: list[dict[str, Any]] = []
    try:
        requests = [
            *({"mode": mode, "explain": explain} for mode in ("hybrid", "bm25", "vector") for explain in (False, True)),
            {"mode": "hybrid", "fusion": "rrf"},
        ]
        for query in queries:
            for extra in requests:
                result = adapter.dump_python(kb.engine.search(SearchRequest(query, limit=10, **extra)), mode="json")
                result.pop("took_ms", None)
                out.append(result)
    finally:
        kb.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench-peer")
    parser.add_argument("--model", default="m3e-small")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path)
    group.add_argument("--compare", type=Path)
    args = parser.parse_args()
    found = answers(args.data_dir, args.model)
    if args.write:
        args.write.write_text(json.dumps(found, ensure_ascii=False), encoding="utf-8")
        print(f"{len(found)} answers written to {args.write}")
        return 0
    expected = json.loads(args.compare.read_text(encoding="utf-8"))
    if len(expected) != len(found):
        print(f"{len(expected)} answers expected, {len(found)} found")
        return 1
    differ = [i for i, (a, b) in enumerate(zip(expected, found, strict=True)) if a != b]
    for i in differ[:5]:
        fields = [k for k in expected[i] if expected[i][k] != found[i].get(k)]
        print(f"differs: {expected[i]['query'][:40]!r} {expected[i]['mode']}: {', '.join(fields)}")
    print(f"{len(found)} answers, {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
