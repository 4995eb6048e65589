"""Cost of one snippet, before and after, in one process, interleaved: ``kb.search.snippets.highlight`` of this
checkout against the same module at another git revision (default ``f7d11e2``, main after issue 14's first round).

Pairs: every desk-dev judgement (``bench/data/desk-dev``), the judged real article chunked as the importer chunks
it, with the query's real terms; about 6,600 (chunk, terms) pairs. Each side has its own :class:`TextAnalyzer`, so
neither warms the other's caches. Pass 1 is "first sight" (nothing remembered yet), pass 2 "warm" (as a running
server sees the same best chunks again). Per pair the two sides run in alternating order. Also counts how often
the two snippets differ.

    python bench/snippet_cost.py [--before f7d11e2] [--out bench/results]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.snippet_pairs import judged_chunk_pairs  # noqa: E402
from kb.search import snippets  # noqa: E402
from kb.search.text import TextAnalyzer  # noqa: E402


def _old_module(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:kb/search/snippets.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="kb-snippets-")) / "snippets_before.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("snippets_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="f7d11e2", help="git revision of the 'before' snippets module")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    old = _old_module(args.before)
    pairs = judged_chunk_pairs(TextAnalyzer())
    sides = {"before": (old.highlight, TextAnalyzer()), "after": (snippets.highlight, TextAnalyzer())}
    times: dict[str, dict[str, list[float]]] = {p: {s: [] for s in sides} for p in ("first sight", "warm")}
    differ = 0
    for phase in times:
        for i, (text, terms) in enumerate(pairs):
            order = list(sides) if i % 2 == 0 else list(reversed(sides))
            out = {}
            for side in order:
                highlight, analyzer = sides[side]
                started = time.perf_counter()
                out[side] = highlight(text, terms, analyzer)
                times[phase][side].append((time.perf_counter() - started) * 1000)
            differ += phase == "warm" and out["before"] != out["after"]
    load = os.getloadavg()
    result = {
        "pairs": len(pairs),
        "before_rev": args.before,
        "differ": differ,
        "load_average_end": load,
        "ms": {
            phase: {
                side: {"mean": sum(v) / len(v), "p50": _pct(v, 0.5), "p95": _pct(v, 0.95)} for side, v in by.items()
            }
            for phase, by in times.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "snippet-cost.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
