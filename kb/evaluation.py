"""Retrieval evaluation on BEIR-layout folders: ``corpus.jsonl``, ``queries.jsonl``, ``qrels.tsv``.

A temporary knowledge base (its own data dir) is built from the corpus (each line's ``title`` + ``text`` as
one article), every query is run in each mode, and nDCG@10, Recall@10, Recall@100 and MRR@10 (``RR@10``) are
computed with ir-measures (Sean MacAvaney et al., ECIR 2022; trec_eval definitions through pytrec_eval).
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ir_measures

from kb.articles.content import validate_content
from kb.articles.store import ArticleFilter
from kb.config import Settings
from kb.errors import InvalidInputError
from kb.search.results import MODES, SearchRequest
from kb.service import KnowledgeBase

#: Measures reported, as ir-measures names, with the label used in reports.
MEASURES = {"nDCG@10": "nDCG@10", "Recall@10": "R@10", "Recall@100": "R@100", "MRR@10": "RR@10"}
DEPTH = 100


@dataclass
class EvalReport:
    """Per mode: aggregate measures and per-query results (the top 10 corpus ids and each query's nDCG@10)."""

    dataset: str
    documents: int
    queries: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    per_query: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def table(self) -> str:
        """The aggregate measures as a Markdown table."""
        lines = [
            "| mode | " + " | ".join(MEASURES) + " | p50 ms | p95 ms |",
            "|---" * (len(MEASURES) + 3) + "|",
        ]
        for mode, values in self.metrics.items():
            cells = " | ".join(f"{values[m]:.3f}" for m in MEASURES)
            lat = self.latency_ms.get(mode, {})
            lines.append(f"| {mode} | {cells} | {lat.get('p50', 0):.1f} | {lat.get('p95', 0):.1f} |")
        return "\n".join(lines)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"Cannot read {path}: {exc}") from exc


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: relevance}}`` from a BEIR ``qrels.tsv`` (header ``query-id corpus-id score``)."""
    qrels: dict[str, dict[str, int]] = {}
    try:
        with path.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    except (OSError, KeyError, ValueError) as exc:
        raise InvalidInputError(f"Cannot read qrels {path}: {exc}") from exc
    return qrels


def evaluate(
    folder: Path,
    settings: Settings,
    modes: tuple[str, ...] = MODES,
    *,
    progress: Callable[[str], None] | None = None,
) -> EvalReport:
    """Build a temporary KB from ``folder``'s corpus and measure every mode on its queries.

    Args:
        folder: BEIR-layout folder.
        settings: model and analysis settings; ``data_dir`` and ``database_url`` are replaced by a temporary dir.
        modes: modes to measure (``hybrid``, ``bm25``, ``vector``).
        progress: called with a line of text at each phase.

    Raises:
        InvalidInputError: a file is missing or malformed, or a mode is unknown.
    """
    for mode in modes:
        if mode not in MODES:
            raise InvalidInputError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    corpus = _read_jsonl(folder / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in _read_jsonl(folder / "queries.jsonl")}
    qrels = read_qrels(folder / "qrels.tsv")
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
    report = EvalReport(dataset=folder.name, documents=len(corpus), queries=len(queries))
    say = progress or (lambda _msg: None)

    with tempfile.TemporaryDirectory(prefix="kb-eval-") as tmp:
        run_settings = settings.model_copy(
            update={
                "data_dir": Path(tmp),
                "database_url": "",
                "index_dir": None,
                "model_cache": settings.model_cache_dir,
            }
        )
        kb = KnowledgeBase(run_settings).open()
        try:
            say(f"indexing {len(corpus)} documents")
            doc_of: dict[int, str] = {}
            for doc in corpus:
                content = validate_content({"title": doc.get("title") or doc["_id"], "body": doc.get("text", "")})
                doc_of[kb.store.create(content, "eval", source="eval").article.id] = doc["_id"]
            kb.index.apply_pending()
            measures = [ir_measures.parse_measure(m) for m in MEASURES.values()]
            for mode in modes:
                say(f"running {len(queries)} queries, mode {mode}")
                run: dict[str, dict[str, float]] = {}
                took: list[float] = []
                rows = []
                for qid, text in queries.items():
                    started = time.perf_counter()
                    request = SearchRequest(text, mode=mode, limit=DEPTH, filters=ArticleFilter(statuses=()))
                    result = kb.engine.search(request)
                    took.append((time.perf_counter() - started) * 1000)
                    ranked = [doc_of[h.article_id] for h in result.results]
                    # Scores for trec_eval: strictly decreasing by rank, so our order is the one measured.
                    run[qid] = {doc_id: float(DEPTH - i) for i, doc_id in enumerate(ranked)}
                    rows.append({"query_id": qid, "query": text, "relevant": sorted(qrels[qid]), "top10": ranked[:10]})
                per_query = {(m.query_id, str(m.measure)): m.value for m in ir_measures.iter_calc(measures, qrels, run)}
                for row in rows:
                    row["nDCG@10"] = round(per_query.get((row["query_id"], "nDCG@10"), 0.0), 4)
                aggregate = ir_measures.calc_aggregate(measures, qrels, run)
                report.metrics[mode] = {
                    label: round(float(aggregate[ir_measures.parse_measure(name)]), 4)
                    for label, name in MEASURES.items()
                }
                took.sort()
                report.latency_ms[mode] = {
                    "p50": round(took[len(took) // 2], 2),
                    "p95": round(took[min(len(took) - 1, int(len(took) * 0.95))], 2),
                }
                report.per_query[mode] = rows
        finally:
            kb.close()
    return report
