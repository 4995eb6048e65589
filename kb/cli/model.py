"""``kb model adapt``: fine-tune the embedding model on this knowledge base's own pairs (see :mod:`kb.model`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kb.cli.output import print_json
from kb.config import Settings

#: Pair kinds ``--pairs`` accepts (:mod:`kb.model.pairs`), in the order they are read.
PAIR_KINDS = ("ticket", "section", "symptom")


def add_parsers(sub: Any) -> None:
    """Add the commands of this module to ``sub`` (an argparse subparsers object)."""
    from kb.model.adapt import AdaptSettings

    defaults = AdaptSettings()
    mdl = sub.add_parser("model", help="the embedding model")
    mdl_sub = mdl.add_subparsers(dest="model_command", required=True)
    ad = mdl_sub.add_parser(
        "adapt",
        help="fine-tune the embedding model on this KB's (heading, section) and (resolved ticket, article) pairs; "
        "then set KB_EMBEDDING_MODEL to the new folder and run `kb index rebuild`",
    )
    ad.add_argument("out", type=Path, help="new model folder (must not exist)")
    ad.add_argument("--steps", type=int, default=defaults.steps, help=f"optimiser steps (default {defaults.steps})")
    ad.add_argument("--batch-size", type=int, default=defaults.batch_size, help="pairs per batch")
    ad.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    ad.add_argument("--max-seq-length", type=int, default=defaults.max_seq_length, help="tokens per text in training")
    ad.add_argument("--seed", type=int, default=defaults.seed)
    ad.add_argument(
        "--train-word-embeddings", action="store_true", help="also train the token embeddings (default: frozen)"
    )
    ad.add_argument(
        "--pairs",
        default=",".join(PAIR_KINDS),
        help="comma-separated pair kinds to train on, of " + ", ".join(PAIR_KINDS) + " (default all)",
    )
    ad.add_argument("--no-sections", action="store_true", help="train on resolved-ticket pairs only")
    ad.add_argument(
        "--skip-collection",
        action="append",
        default=[],
        metavar="NAME",
        help="leave out the articles of this collection (repeatable), e.g. one an evaluation set was written from",
    )
    ad.add_argument("--json", action="store_true", help="print the manifest as JSON")
    cal = mdl_sub.add_parser(
        "calibrate",
        help="carry the base model's confidence bars over to an adapted model folder (quantile matching on this "
        "KB's own titles and sections; `kb model adapt` does it after training)",
    )
    cal.add_argument("folder", type=Path, help="a folder made by `kb model adapt`")
    cal.add_argument("--json", action="store_true", help="print the thresholds as JSON")


def _base_path(name: str) -> str:
    from kb.search.embedders.factory import M3E_SMALL, m3e_small_path

    return str(m3e_small_path()) if name == M3E_SMALL else name


def _calibrate(folder: Path, base_model: str, pairs: list[Any]) -> dict[str, float] | None:
    """Matched thresholds for the adapted ``folder`` (None when the base model has no calibrated cosine bar),
    written into its manifest."""
    import math

    from kb.model.adapt import AdaptManifest
    from kb.model.calibrate import matched_thresholds
    from kb.search.confidence import thresholds_for
    from kb.search.embedders.factory import load_embedder

    base = thresholds_for(base_model)
    if not math.isfinite(base.cosine_min) or not pairs:
        return None
    adapted = load_embedder(str(folder.resolve()))
    queries = list(dict.fromkeys(p.anchor for p in pairs))
    passages = list(dict.fromkeys(p.positive for p in pairs))
    matched = matched_thresholds(load_embedder(base_model), adapted, queries, passages, base)
    manifest = AdaptManifest.read(folder)
    manifest.thresholds = matched
    manifest.write(folder)
    return matched


def cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    if args.model_command == "calibrate":
        return _cmd_calibrate(args, settings)
    from kb.db import open_database
    from kb.errors import InvalidInputError
    from kb.model.adapt import AdaptSettings, adapt
    from kb.model.pairs import collection_of, section_pairs, symptom_pairs, ticket_pairs

    kinds = ["ticket"] if args.no_sections else [k.strip() for k in args.pairs.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(PAIR_KINDS))
    if unknown or not kinds:
        raise InvalidInputError(f"unknown pair kinds {unknown}; choose from {', '.join(PAIR_KINDS)}")
    readers = {"ticket": ticket_pairs, "section": section_pairs, "symptom": symptom_pairs}
    database = open_database(settings)
    try:
        pairs = [pair for kind in PAIR_KINDS if kind in kinds for pair in readers[kind](database)]
        if args.skip_collection:
            collections = collection_of(database)
            pairs = [p for p in pairs if collections.get(p.article_id) not in set(args.skip_collection)]
    finally:
        database.dispose()
    if args.steps < 0 or args.batch_size < 2 or args.max_seq_length < 8 or args.learning_rate <= 0:
        raise InvalidInputError("steps must be >= 0, batch size >= 2, max sequence length >= 8, learning rate > 0")
    run = AdaptSettings(
        args.steps, args.batch_size, args.learning_rate, args.max_seq_length, args.seed, not args.train_word_embeddings
    )
    quiet = args.json or not sys.stderr.isatty()

    def progress(step: int, steps: int, loss: float) -> None:
        if not quiet and (step % 10 == 0 or step == steps):
            print(f"\rstep {step}/{steps} loss {loss:.4f}", end="", file=sys.stderr, flush=True)

    manifest = adapt(settings.embedding_model, _base_path(settings.embedding_model), pairs, args.out, run, progress)
    if not quiet:
        print(file=sys.stderr)
    manifest.thresholds = _calibrate(args.out, settings.embedding_model, pairs)
    if args.json:
        print_json(asdict(manifest))
    else:
        print(
            f"adapted {manifest.base_model} on {sum(manifest.pairs.values())} pairs {manifest.pairs} in "
            f"{manifest.steps} steps ({manifest.seconds:.0f} s, loss {manifest.loss_first} -> {manifest.loss_last}); "
            f"saved to {args.out}.\nUse it: KB_EMBEDDING_MODEL={args.out.resolve()} kb index rebuild"
        )
    return 0


def _cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from kb.db import open_database
    from kb.errors import InvalidInputError
    from kb.model.adapt import AdaptManifest
    from kb.model.pairs import section_pairs

    manifest = AdaptManifest.read(args.folder)
    if manifest.base_model != settings.embedding_model:
        raise InvalidInputError(
            f"{args.folder} was adapted from {manifest.base_model!r}; run with KB_EMBEDDING_MODEL={manifest.base_model}"
        )
    database = open_database(settings)
    try:
        pairs = section_pairs(database)
    finally:
        database.dispose()
    matched = _calibrate(args.folder, manifest.base_model, pairs)
    if args.json:
        print_json(matched)
    else:
        print(f"thresholds of {args.folder}: {matched}" if matched else f"{manifest.base_model} has no cosine bar")
    return 0
