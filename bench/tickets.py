"""Ticket benchmark: import the 47,837 real IT tickets, distil them into drafts, record times and the drafts.

    python bench/tickets.py [--model m3e-small] [--out bench/results]

Runs in a temporary data folder, or in ``--data-dir`` to keep the tickets and their embeddings (for example for
``bench/assignment.py``); the exported ONNX model is cached in ``--model-cache``, default ``var/models``.
Writes ``<out>/tickets-it-tickets-en.json`` (every number, every draft's size and title) and
``<out>/tickets-it-tickets-en.md`` (a summary with the two largest drafts in full).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from kb.config import Settings
from kb.ingest.tickets import import_tickets
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT.parent / "shared" / "data" / "tickets" / "it-tickets-en" / "all_tickets_processed_improved_v3.csv.zip"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="m3e-small")
    parser.add_argument("--model-cache", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--data-dir", type=Path, help="keep the knowledge base here (default: a temporary folder)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    with tempfile.TemporaryDirectory(prefix="kb-bench-tickets-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        settings = Settings(data_dir=data_dir, embedding_model=args.model, model_cache=args.model_cache)
        kb = KnowledgeBase(settings).open()
        try:
            started = time.perf_counter()
            imported = import_tickets(kb.database, EXPORT, "it-tickets-en")
            import_s = time.perf_counter() - started
            phases: dict[str, float] = {}
            phase_start: dict[str, float] = {}

            def progress(phase: str, done: int, total: int) -> None:
                # A phase lasts from its first report to the next phase's first report (or its own last one).
                now = time.perf_counter()
                if phase not in phase_start:
                    for previous, began in phase_start.items():
                        phases[previous] = round(max(phases.get(previous, 0.0), now - began), 1)
                    phase_start[phase] = now
                phases[phase] = round(now - phase_start[phase], 1)
                if done == total or done % 5120 == 0:
                    print(f"{phase}: {done}/{total}", flush=True)

            started = time.perf_counter()
            report = kb.distiller.distill("bench", progress=progress)
            distill_s = time.perf_counter() - started
            summary = report.as_dict()
            top = [kb.store.get(d["article_id"]) for d in summary["drafts"][:2]]
            shown = [f"### Draft {a.id}: {a.title}\n\n```markdown\n{a.body}```\n" for a in top]
        finally:
            kb.close()
    result = {
        "export": str(EXPORT.name),
        "model": args.model,
        "machine": {"nproc": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "kb_commit": commit.stdout.strip(),
        "import": imported.as_dict() | {"seconds": round(import_s, 1), "rows_per_s": round(imported.rows / import_s)},
        "distill": summary | {"seconds": round(distill_s, 1), "phases_s": phases},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tickets-it-tickets-en.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    d = result["distill"]
    lines = [
        "# Tickets: import and distillation of it-tickets-en (47,837 real tickets)",
        "",
        f"`python bench/tickets.py` at kb {result['kb_commit']}, model {args.model}, "
        f"{result['machine']['nproc']} cores.",
        "",
        "| step | result |",
        "|---|---|",
        f"| import (`kb tickets import … --mapping it-tickets-en`) | {imported.rows} rows, {imported.created} created, "
        f"{imported.failed} skipped, {import_s:.1f} s ({result['import']['rows_per_s']} rows/s) |",
        f"| distill (`kb tickets distill`) | {d['tickets']} closed tickets -> {d['groups']} groups of >= 5 "
        f"({d['tickets_in_groups']} tickets), {d['new_articles']} drafts, {d['update_proposals']} update proposals, "
        f"{d['seconds']:.0f} s (phases: {', '.join(f'{k} {v} s' for k, v in d['phases_s'].items())}) |",
        "",
        "Largest groups (size, title):",
        "",
        *[f"- {g['size']}: {g['title']}" for g in d["drafts"][:15]],
        "",
        "## The two largest drafts",
        "",
        *shown,
    ]
    (args.out / "tickets-it-tickets-en.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[:12]))


if __name__ == "__main__":
    main()
