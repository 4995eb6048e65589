"""The (chunk text, query terms) pairs the snippet benchmarks time: real desk-dev judgements on real articles.

Each judged article of ``bench/data/desk-dev/qrels.tsv`` that exists under ``../shared/data/articles`` is chunked
as the importer chunks it (320 tokens, a 2-characters-per-token estimate) and paired with its query's real terms
from the given :class:`~kb.search.text.TextAnalyzer`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from kb.articles.chunking import chunk_article
from kb.evaluation import query_texts
from kb.search.text import TextAnalyzer

ROOT = Path(__file__).resolve().parents[1]
ARTICLES = ROOT.parent / "shared" / "data" / "articles"
DESK_DEV = ROOT / "bench" / "data" / "desk-dev"


def judged_chunk_pairs(analyzer: TextAnalyzer, judgements: int | None = None) -> list[tuple[str, set[str]]]:
    """Pairs of (chunk text, query terms) for the first ``judgements`` rows of the qrels (all when None).

    Articles a judgement names but the shared data lacks are skipped. Raises ``FileNotFoundError`` when the
    desk-dev files are missing.
    """
    queries = query_texts(DESK_DEV / "queries.jsonl")
    with (DESK_DEV / "qrels.tsv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    pairs: list[tuple[str, set[str]]] = []
    for qid, path, *_ in rows if judgements is None else rows[:judgements]:
        source_path = ARTICLES / path
        if not source_path.exists():
            continue
        source = source_path.read_text(encoding="utf-8")
        body = source.split("---", 2)[2] if source.startswith("---") else source
        terms = set(analyzer.analyze_query(queries[qid]).terms)
        pairs.extend((c.text, terms) for c in chunk_article("t", body, lambda t: len(t) // 2, 320))
    return pairs
