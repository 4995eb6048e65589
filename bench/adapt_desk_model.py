"""Train the desk history's ticket model: m3e-small fine-tuned on the history's (resolved ticket, article) pairs.

The pairs are ``kb.model.pairs.ticket_pairs``'s formula (anchor: ticket title + description; positive: article
title + summary, or its first chunk without one), read here from the history file and the article files rather
than from a KB with the history replayed into it, so that training can start before any KB is built. Replaying the
history and running ``kb model adapt --pairs ticket`` gives the same pairs up to the few articles whose first chunk
the import cuts differently (session 9: 4 of 415 positives). The training is :func:`kb.model.adapt.adapt` with the
settings of session 9 (120 steps, batch 16, learning rate 2e-5, seed 13; :data:`SETTINGS`). The pairs come from
``bench/data/desk-history/tickets.jsonl`` only: no desk-dev query is ever read.

The model is the ticket model of the similar-ticket vote (``KB_TICKET_EMBEDDING_MODEL``); the chunks stay on the
base model. It is not calibrated (its confidence bars would only matter as a chunk model).

Usage: ``python bench/adapt_desk_model.py [--out var/models/desk-tickets-s13]``; skips when ``--out`` exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kb.articles.chunking import chunk_article
from kb.config import Settings
from kb.ingest.markdown import read_article_file
from kb.model.adapt import AdaptSettings, adapt
from kb.model.pairs import MAX_TEXT_CHARS, Pair
from kb.search.embedders.factory import M3E_SMALL, m3e_small_path
from kb.search.embedders.sentence_transformers import SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parent.parent
#: Session 9's training run (bench/results/desk-history-session9.md, section 1).
SETTINGS = AdaptSettings(steps=120, batch_size=16, learning_rate=2e-5, max_seq_length=192, seed=13)


def history_pairs(history: Path, articles_root: Path) -> list[Pair]:
    """``ticket`` pairs of the history file, in its order, one per (anchor, article) (see module docstring).

    ``article_id`` is the 1-based order of first appearance of the article (the history has no KB ids).

    Raises:
        FileNotFoundError: a linked article file is missing.
    """
    settings = Settings()
    counter = SentenceTransformerEmbedder(M3E_SMALL, str(m3e_small_path()))
    positives: dict[str, tuple[int, str]] = {}
    pairs: dict[tuple[str, int], Pair] = {}
    for line in history.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        ticket = json.loads(line)
        key = ticket["article"]
        if key not in positives:
            content = read_article_file(articles_root / key)
            if content is None:
                raise FileNotFoundError(f"{key} has no text of its own")
            body = content.summary.strip()
            if not body:
                chunks = chunk_article(
                    content.title,
                    content.body,
                    counter.count_tokens,
                    settings.chunk_tokens,
                    settings.chunk_overlap_tokens,
                )
                body = chunks[0].text
            positives[key] = (len(positives) + 1, "\n".join(p for p in (content.title, body) if p))
        aid, positive = positives[key]
        anchor = "\n".join(p for p in (ticket.get("title"), ticket.get("description")) if p and p.strip())
        if anchor.strip():
            pairs.setdefault((anchor, aid), Pair("ticket", anchor[:MAX_TEXT_CHARS], positive[:MAX_TEXT_CHARS], aid))
    return list(pairs.values())


def main(argv: list[str] | None = None) -> int:
    """Train into ``--out`` unless it exists; prints the manifest as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "var/models/desk-tickets-s13")
    parser.add_argument("--history", type=Path, default=ROOT / "bench/data/desk-history/tickets.jsonl")
    parser.add_argument("--articles-root", type=Path, default=ROOT.parent / "shared/data/articles")
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"{args.out} exists; not training again", file=sys.stderr)
        return 0
    pairs = history_pairs(args.history, args.articles_root)
    print(f"{len(pairs)} pairs from {args.history}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def progress(step: int, steps: int, loss: float) -> None:
        if step % 10 == 0 or step == steps or step == 1:
            print(f"step {step}/{steps} loss {loss:.4f}", file=sys.stderr, flush=True)

    manifest = adapt(M3E_SMALL, str(m3e_small_path()), pairs, args.out, SETTINGS, progress)
    print(json.dumps(manifest.__dict__, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
