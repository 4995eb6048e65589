"""Micro-benchmark of the snippet path, this tree against another tree's modules, in one process, interleaved.

Loads ``kb/search/term_tokens.py``, ``snippets.py`` and ``duplicates.py`` of ``--base`` (a checkout or a
``git archive`` export of the older tree) as separate modules beside this tree's, each side with its own
:class:`~kb.search.text.TextAnalyzer`, so neither warms the other's caches. Pairs: the desk-dev judgements of the
first ``--judgements`` rows of ``qrels.tsv``, each judged real article chunked as the importer chunks it, with
the query's real terms (few enough that every cache holds them all: a cyclic pass over more texts than an LRU
holds measures its misses, not the code), and a few odd ones (empty text, only punctuation, a 1,200-character
block, Latin terms inside longer words, a phrase term with spaces).

Reported per pair, in µs: ``highlight`` + ``held_terms`` on first sight (one pass, thread CPU; the old side
first, then the new, then the reverse order in a second process is the fair check) and warm (per pair the
minimum of 7 interleaved repetitions, ``perf_counter_ns``: the minimum filters preemption on a shared machine);
``readable`` over every chunk of the shared articles; ``duplicates._same`` over the pairs of each query's best 20
chunks. Every output of the two sides is compared; the script fails when one differs.

    python bench/snippet_ab.py --base /tmp/base-tree [--judgements 120] [--out bench/results/snippet-ab.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jieba  # noqa: E402

from bench.snippet_pairs import ARTICLES, judged_chunk_pairs  # noqa: E402
from kb.articles.chunking import chunk_article  # noqa: E402
from kb.search import duplicates as new_d  # noqa: E402
from kb.search import snippets as new_s  # noqa: E402
from kb.search import term_tokens as new_tt  # noqa: E402
from kb.search.text import TextAnalyzer  # noqa: E402

ODD = [
    ("", {"a"}),
    ("!!! ？？？ ...", {"!"}),
    ("数据库服务器" * 200, {"数据", "数据库", "服务器", "器"}),
    ("Win10 系统 ip地址 pip ipip kube-proxy arp cache", {"win10", "ip", "kube", "arp_cache", "地址"}),
]


def _load(name: str, path: Path, subs: list[tuple[str, str]]) -> ModuleType:
    source = path.read_text(encoding="utf-8")
    for old, new in subs:
        source = source.replace(old, new)
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, str(path), "exec"), module.__dict__)  # the base tree's own module
    return module


def _pairs(analyzer: TextAnalyzer, judgements: int) -> list[tuple[str, set[str]]]:
    return judged_chunk_pairs(analyzer, judgements) + ODD


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the older tree (holds kb/search/)")
    parser.add_argument("--judgements", type=int, default=120)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    jieba.setLogLevel(60)
    base = args.base / "kb" / "search"
    old_tt = _load("old_term_tokens", base / "term_tokens.py", [])
    old_s = _load(
        "old_snippets", base / "snippets.py", [("from kb.search.term_tokens import", "from old_term_tokens import")]
    )
    old_d = _load("old_duplicates", base / "duplicates.py", [])
    a_old, a_new = TextAnalyzer(), TextAnalyzer()
    pairs = _pairs(a_old, args.judgements)
    sides = {"old": (old_s, old_tt, a_old), "new": (new_s, new_tt, a_new)}

    def one(side: str, text: str, terms: set[str]) -> tuple[str, set[str]]:
        s, tt, an = sides[side]
        return s.highlight(text, terms, an), tt.held_terms(text, terms, an)

    first: dict[str, float] = {}
    outputs: dict[str, list[Any]] = {}
    for side in ("old", "new"):
        c0 = time.thread_time()
        outputs[side] = [one(side, t, terms) for t, terms in pairs]
        first[side] = (time.thread_time() - c0) / len(pairs) * 1e6
    differ = sum(a != b for a, b in zip(outputs["old"], outputs["new"], strict=True))
    warm = {side: [math.inf] * len(pairs) for side in sides}
    for rep in range(7):
        for k, (text, terms) in enumerate(pairs):
            for side in ("old", "new") if (k + rep) % 2 else ("new", "old"):
                c0 = time.perf_counter_ns()
                got = one(side, text, terms)
                warm[side][k] = min(warm[side][k], time.perf_counter_ns() - c0)
                differ += rep == 0 and side == "new" and got != outputs["old"][k]
    texts = []
    for path in sorted(ARTICLES.rglob("*.md")):
        source = path.read_text(encoding="utf-8", errors="replace")
        body = source.split("---", 2)[2] if source.startswith("---") else source
        texts += [c.text for c in chunk_article("t", body, lambda t: len(t) // 2, 320)]
    readable: dict[str, list[float]] = {"old": [], "new": []}
    for rep in range(4):
        for side, module in (("old", old_s), ("new", new_s)) if rep % 2 else (("new", new_s), ("old", old_s)):
            c0 = time.thread_time()
            got_r = [module.readable(t) for t in texts]
            readable[side].append((time.thread_time() - c0) / len(texts) * 1e6)
            if side == "new":
                differ += sum(a != b for a, b in zip(got_r, [old_s.readable(t) for t in texts], strict=True))
    groups = [texts[i : i + 20] for i in range(0, min(len(texts), 4000), 20)]
    same: dict[str, list[float]] = {"old": [], "new": []}
    for rep in range(4):
        for side, module in (("old", old_d), ("new", new_d)) if rep % 2 else (("new", new_d), ("old", old_d)):
            prepared = []
            for group in groups:
                flats = [module.compact(t) for t in group]
                prepared.append([(f, frozenset(module.shingles(f)) if len(f) >= 40 else frozenset()) for f in flats])
            c0 = time.thread_time()
            verdicts = [module._same(*a, *b) for g in prepared for i, a in enumerate(g) for b in g[:i]]
            same[side].append((time.thread_time() - c0) / len(verdicts) * 1e6)
            if side == "new":
                old_v = [old_d._same(*a, *b) for g in prepared for i, a in enumerate(g) for b in g[:i]]
                differ += sum(a != b for a, b in zip(verdicts, old_v, strict=True))
    result = {
        "pairs": len(pairs),
        "first_sight_us_per_pair_thread_cpu": {k: round(v, 1) for k, v in first.items()},
        "warm_us_per_pair_min_of_7": {k: round(sum(v) / len(v) / 1000, 2) for k, v in warm.items()},
        "readable_us_per_chunk_thread_cpu": {k: [round(x, 1) for x in v] for k, v in readable.items()},
        "readable_chunks": len(texts),
        "duplicates_same_us_per_pair_thread_cpu": {k: [round(x, 2) for x in v] for k, v in same.items()},
        "outputs_differ": differ,
    }
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
