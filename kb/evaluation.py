"""Retrieval evaluation: a BEIR-layout folder, or an article-level set over Markdown collections.

Two layouts are measured:

- **BEIR** (``corpus.jsonl``, ``queries.jsonl``, ``qrels.tsv``): each corpus line's ``title`` + ``text`` becomes
  one article; a result's corpus id is the line's ``_id``.
- **Article-level over Markdown** (``queries.jsonl`` and ``qrels.tsv`` only, plus ``articles`` roots, e.g.
  ``bench/data/desk-dev``): each root is imported as its own collection and an article's corpus id is
  ``collection + "/" + source_path``.

Every query is run in each mode (with ``explain``, so each query's confidence signals are kept for calibration, see
``bench/calibrate_confidence.py``); nDCG@10, Recall@10, Recall@100 and MRR@10 (``RR@10``) are computed with
ir-measures (Sean MacAvaney et al., ECIR 2022; trec_eval definitions through pytrec_eval), and ``R@1`` is the share
of answerable queries whose top-1 article has the highest grade judged for that query (the best answer is first).
Queries may carry ``style``, ``fold``, ``half`` and ``answerable`` (false: no qrels); results are then also
reported per style and per fold group, with the confident-but-wrong count (top-1 not judged relevant and
``low_confidence`` false) and the share of unanswerable queries flagged (``low_confidence`` true).

The knowledge base is built in a temporary data dir, or in ``data_dir`` when given: a persistent dir is reused
on the next run (unchanged articles are not re-embedded), which makes repeated runs with a real model cheap.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ir_measures

from kb.articles.content import validate_content
from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.desk.history import HistoryTicket, read_history, replay_history
from kb.errors import InvalidInputError
from kb.search.results import MODES, SearchRequest
from kb.service import KnowledgeBase

#: Measures reported, as ir-measures names, with the label used in reports.
MEASURES = {"nDCG@10": "nDCG@10", "Recall@10": "R@10", "Recall@100": "R@100", "MRR@10": "RR@10"}
#: Labels of a report row, in print order (``R@1`` is computed here, see the module docstring).
COLUMNS = ("nDCG@10", "R@1", "Recall@10", "Recall@100", "MRR@10")
DEPTH = 100
#: Collection name of the articles made from a BEIR corpus.
BEIR_COLLECTION = "beir"
#: Fold groups reported beside the whole set: tune on the first, check on the second.
FOLD_GROUPS = {"folds 0-2": (0, 1, 2), "folds 3-4": (3, 4)}


@dataclass
class EvalReport:
    """Per mode: aggregate measures, per-group measures, confidence counts, latency and per-query results.

    ``metrics[mode]`` holds the :data:`COLUMNS` over all answerable queries; ``groups[mode][name]`` the same
    over a style (``style:layman``) or fold group (:data:`FOLD_GROUPS`); ``confidence[mode]`` the
    confident-but-wrong and unanswerable-flagged counts (overall and per group); ``latency_ms[mode]`` p50/p95
    of one in-process search in milliseconds; ``desk_history`` what :func:`load_history` replayed (None: none).
    """

    dataset: str
    documents: int
    queries: int
    unanswerable: int = 0
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    groups: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    confidence: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    per_query: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    desk_history: dict[str, Any] | None = None

    def table(self) -> str:
        """The measures as Markdown tables: one row per mode, then per mode and group, then confidence."""
        head = "| mode | " + " | ".join(COLUMNS) + " | p50 ms | p95 ms |"
        lines = [head, "|---" * (len(COLUMNS) + 3) + "|"]
        for mode, values in self.metrics.items():
            cells = " | ".join(f"{values.get(m, 0.0):.3f}" for m in COLUMNS)
            lat = self.latency_ms.get(mode, {})
            lines.append(f"| {mode} | {cells} | {lat.get('p50', 0):.1f} | {lat.get('p95', 0):.1f} |")
        if any(self.groups.values()):
            lines += ["", "| group | mode | queries | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 3) + "|"]
            names = sorted({g for by_mode in self.groups.values() for g in by_mode})
            for name in names:
                for mode, by_group in self.groups.items():
                    if name in by_group:
                        v = by_group[name]
                        cells = " | ".join(f"{v.get(m, 0.0):.3f}" for m in COLUMNS)
                        lines.append(f"| {name} | {mode} | {int(v['queries'])} | {cells} |")
        if self.confidence:
            lines += [
                "",
                "| mode | group | confident-but-wrong | of answerable | unanswerable flagged | of unanswerable |",
                "|---|---|---:|---:|---:|---:|",
            ]
            for mode, by_group in self.confidence.items():
                for name, c in by_group.items():
                    lines.append(
                        f"| {mode} | {name} | {int(c['confident_wrong'])} / {int(c['answerable'])} | "
                        f"{c['confident_wrong_share']:.3f} | {int(c['flagged'])} / {int(c['unanswerable'])} | "
                        f"{c['flagged_share']:.3f} |"
                    )
        return "\n".join(lines)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"Cannot read {path}: {exc}") from exc


def query_texts(path: Path) -> dict[str, str]:
    """``{query_id: text}`` from a BEIR ``queries.jsonl`` (``_id`` and ``text`` of each line), in file order.

    Raises:
        InvalidInputError: the file cannot be read or a line is not JSON.
    """
    return {row["_id"]: row["text"] for row in _read_jsonl(path)}


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


@contextmanager
def eval_knowledge_base(settings: Settings, data_dir: Path | None, *, copy: bool = False) -> Iterator[KnowledgeBase]:
    """An open KB in ``data_dir`` (kept) or in a temporary dir (removed), on SQLite, with the model cache of
    ``settings``; with ``copy``, a temporary copy of ``data_dir`` (when it exists), so that nothing written to
    the KB stays."""
    with tempfile.TemporaryDirectory(prefix="kb-eval-") as tmp:
        where = data_dir
        if copy:
            where = Path(tmp) / "kb"
            if data_dir is not None and data_dir.is_dir():
                shutil.copytree(data_dir, where)
        run_settings = settings.model_copy(
            update={
                "data_dir": where or Path(tmp),
                "database_url": "",
                "index_dir": None,
                "model_cache": settings.model_cache_dir,
            }
        )
        kb = KnowledgeBase(run_settings).open()
        try:
            yield kb
        finally:
            kb.close()


def load_corpus(kb: KnowledgeBase, folder: Path, articles: Sequence[Path]) -> dict[int, str]:
    """Import the corpus (BEIR lines or Markdown roots), wait for the outline vectors, and return
    ``{article id: corpus id}``.

    Raises:
        InvalidInputError: a root is not a folder, or the corpus file is missing or malformed.
    """
    if articles:
        for root in articles:
            if not root.is_dir():
                raise InvalidInputError(f"Articles root {root} is not a folder.")
        kb.writer.import_paths(list(articles), "eval")
        names = {root.name for root in articles}
        found, _ = kb.store.list_articles(ArticleFilter(statuses=()), 0, 10**9)
        kb.engine.outlines.prepare(kb.index.generation.bm25.version)  # every query sees the outline vectors
        return {a.id: f"{a.collection}/{a.source_path}" for a in found if a.collection in names}
    doc_of: dict[int, str] = {}
    for doc in _read_jsonl(folder / "corpus.jsonl"):
        content = validate_content({"title": doc.get("title") or doc["_id"], "body": doc.get("text", "")})
        _, written = kb.store.upsert_imported(BEIR_COLLECTION, doc["_id"], content, "eval")
        doc_of[written.article.id] = doc["_id"]
    kb.index.apply_pending()
    kb.engine.outlines.prepare(kb.index.generation.bm25.version)
    return doc_of


def _groups(query: dict[str, Any]) -> list[str]:
    names = []
    if query.get("style"):
        names.append(f"style:{query['style']}")
    names += [name for name, folds in FOLD_GROUPS.items() if query.get("fold") in folds]
    return names


def _measure(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], top1: dict[str, str | None]
) -> dict[str, float]:
    """The :data:`COLUMNS` over the queries of ``qrels``, as means over those queries (a query without results
    counts 0, unlike trec_eval which leaves it out)."""
    measures = [ir_measures.parse_measure(m) for m in MEASURES.values()]
    sums = dict.fromkeys(map(str, measures), 0.0)
    for m in ir_measures.iter_calc(measures, qrels, {q: run[q] for q in qrels if run.get(q)}):
        sums[str(m.measure)] += m.value
    n = max(1, len(qrels))
    values = {label: round(sums[name] / n, 4) for label, name in MEASURES.items()}
    best = [qrels[q].get(top1.get(q) or "", 0) == max(qrels[q].values()) for q in qrels]
    values["R@1"] = round(sum(best) / len(best), 4) if best else 0.0
    values["queries"] = float(len(qrels))
    return values


def _confidence_counts(rows: list[dict[str, Any]]) -> dict[str, float]:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    wrong = sum(1 for r in answerable if r["top1_grade"] == 0 and not r["low_confidence"])
    flagged = sum(1 for r in unanswerable if r["low_confidence"])
    return {
        "answerable": float(len(answerable)),
        "confident_wrong": float(wrong),
        "confident_wrong_share": round(wrong / len(answerable), 4) if answerable else 0.0,
        "unanswerable": float(len(unanswerable)),
        "flagged": float(flagged),
        "flagged_share": round(flagged / len(unanswerable), 4) if unanswerable else 0.0,
    }


def evaluate(
    folder: Path,
    settings: Settings,
    modes: tuple[str, ...] = MODES,
    *,
    articles: Sequence[Path] = (),
    data_dir: Path | None = None,
    desk_history: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> EvalReport:
    """Build a KB from ``folder``'s corpus (or from the Markdown ``articles`` roots) and measure every mode.

    Args:
        folder: BEIR-layout folder; with ``articles``, only ``queries.jsonl`` and ``qrels.tsv`` are read.
        settings: model and analysis settings; ``data_dir`` and ``database_url`` are replaced.
        modes: modes to measure (``hybrid``, ``bm25``, ``vector``).
        articles: Markdown roots, each imported as the collection named by its folder.
        data_dir: persistent data dir to build (or reuse) the KB in; None for a temporary one.
        desk_history: resolved tickets to replay through the desk first (:mod:`kb.desk.history`); the KB of
            ``data_dir`` is then built (or reused) there and copied, so the tickets never stay in it; votes are
            dated as of the history's last close.
        progress: called with a line of text at each phase.

    Raises:
        InvalidInputError: a file or root is missing or malformed, or a mode is unknown.
    """
    for mode in modes:
        if mode not in MODES:
            raise InvalidInputError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    queries, qrels = read_queries(folder)
    history = read_history(desk_history) if desk_history is not None else None
    say = progress or (lambda _msg: None)

    with eval_knowledge_base(settings, data_dir, copy=history is not None) as kb:
        say("importing and indexing the corpus")
        doc_of = load_corpus(kb, folder, articles)
        report = EvalReport(
            dataset=folder.name,
            documents=len(doc_of),
            queries=sum(1 for q in queries if q["_id"] in qrels),
            unanswerable=sum(1 for q in queries if q["_id"] not in qrels),
        )
        if history is not None:
            say(f"replaying {len(history)} resolved tickets through the desk")
            report.desk_history = load_history(kb, history, doc_of)
        for mode in modes:
            say(f"running {len(queries)} queries, mode {mode}")
            run_mode(kb, mode, queries, qrels, doc_of, report)
    return report


def read_queries(folder: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """The queries of ``folder`` that have qrels or are marked unanswerable, and the qrels.

    Raises:
        InvalidInputError: a file is missing or malformed.
    """
    qrels = read_qrels(folder / "qrels.tsv")
    queries = [q for q in _read_jsonl(folder / "queries.jsonl") if q["_id"] in qrels or q.get("answerable") is False]
    return queries, qrels


def load_history(kb: KnowledgeBase, history: Sequence[HistoryTicket], doc_of: dict[int, str]) -> dict[str, Any]:
    """Replay ``history`` through ``kb``'s desk (:func:`kb.desk.history.replay_history`; corpus ids mapped by
    ``doc_of``, article id -> corpus id) and date the desk's votes at the last close of the tickets in the KB.
    Returns the counts (``tickets``, ``closed``, ``skipped``, ``unmapped``, ``encoded``), the ``as_of`` time and
    the vote's settings: ``ticket_model`` (the model of the ticket vectors), ``min_similarity`` and ``weight``."""
    done = replay_history(kb.desk, kb.ticket_vectors, history, {doc: aid for aid, doc in doc_of.items()})
    as_of = max((t.closed_at for t in history), default=None)
    if as_of is not None:
        kb.desk_votes.now = lambda: as_of
    boost = kb.engine.desk_boost
    return {
        "tickets": len(history),
        **dataclasses.asdict(done),
        "as_of": as_of.isoformat() if as_of else None,
        "ticket_model": kb.ticket_embedder.name,
        "min_similarity": kb.desk_votes.min_similarity,
        "weight": boost.weight if boost is not None else 0.0,
    }


def run_mode(
    kb: KnowledgeBase,
    mode: str,
    queries: Sequence[dict[str, Any]],
    qrels: dict[str, dict[str, int]],
    doc_of: dict[int, str],
    report: EvalReport,
) -> None:
    """Run every query in ``mode`` on ``kb`` and store its measures, groups, confidence counts, latency and
    per-query rows in ``report`` (``doc_of``: article id -> corpus id)."""
    run: dict[str, dict[str, float]] = {}
    top1: dict[str, str | None] = {}
    took: list[float] = []
    rows = []
    for query in queries:
        qid, text = query["_id"], query["text"]
        started = time.perf_counter()
        request = SearchRequest(text, mode=mode, limit=DEPTH, filters=ArticleFilter(statuses=()), explain=True)
        result = kb.engine.search(request)
        took.append((time.perf_counter() - started) * 1000)
        # A hit with folded duplicates lists them: they follow it, in order.
        ids = [aid for h in result.results for aid in (h.article_id, *(d.article_id for d in h.duplicates))]
        ranked = [doc_of.get(aid, f"#{aid}") for aid in ids]
        signals = result.explain.confidence if result.explain else None
        top1[qid] = ranked[0] if ranked else None
        if qid in qrels:
            # Scores for trec_eval: strictly decreasing by rank, so our order is the one measured.
            run[qid] = {doc_id: float(DEPTH - i) for i, doc_id in enumerate(ranked)}
        rows.append(
            {
                "query_id": qid,
                "query": text,
                "style": query.get("style"),
                "fold": query.get("fold"),
                "answerable": qid in qrels,
                "relevant": sorted(qrels.get(qid, {})),
                "top10": ranked[:10],
                "top1_grade": qrels.get(qid, {}).get(ranked[0], 0) if ranked else 0,
                "low_confidence": result.low_confidence,
                "coverage": signals.coverage if signals else None,
                "cosine": signals.cosine if signals else None,
                "top_score": signals.score if signals else None,
                "desk_boosted": sum(1 for h in result.results[:10] if h.explain is not None and "desk" in h.explain),
            }
        )
    per_query = {
        (m.query_id, str(m.measure)): m.value
        for m in ir_measures.iter_calc([ir_measures.parse_measure("nDCG@10")], qrels, run)
    }
    for row in rows:
        row["nDCG@10"] = round(per_query.get((row["query_id"], "nDCG@10"), 0.0), 4)
    report.metrics[mode] = _measure(qrels, run, top1)
    group_rows: dict[str, list[dict[str, Any]]] = {}
    for query, row in zip(queries, rows, strict=True):
        for name in _groups(query):
            group_rows.setdefault(name, []).append(row)
    report.groups[mode] = {
        name: _measure({r["query_id"]: qrels[r["query_id"]] for r in grows if r["answerable"]}, run, top1)
        for name, grows in sorted(group_rows.items())
        if any(r["answerable"] for r in grows)
    }
    report.confidence[mode] = {"all": _confidence_counts(rows)} | {
        name: _confidence_counts(grows) for name, grows in sorted(group_rows.items()) if name in FOLD_GROUPS
    }
    took.sort()
    report.latency_ms[mode] = {
        "p50": round(took[len(took) // 2], 2),
        "p95": round(took[min(len(took) - 1, int(len(took) * 0.95))], 2),
    }
    report.per_query[mode] = rows
