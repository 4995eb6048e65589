"""Choose ``KB_TICKET_VOTE_MIN_SIMILARITY`` and ``KB_TICKET_VOTE_WEIGHT`` for a ticket model, on desk-dev folds 0-2.

    python bench/vote_variants.py dump --data-dir var/eval-desk-dev --history bench/data/desk-history/tickets.jsonl
    python bench/vote_variants.py reencode --model var/models/desk-tickets-s13 \
        --history bench/data/desk-history/tickets.jsonl --out var/vote-variants-desk-tickets-s13.json
    python bench/ticket_vote_bar.py --dump var/vote-variants-desk-tickets-s13.json \
        --out bench/results/ticket-vote-bar-s11.json

Offline, on the engine's own fused top 100 of every desk-dev query (``bench/vote_variants.py``: ``dump`` runs the
real engine on a copy of the KB with the history replayed; ``reencode`` recomputes the embedding half of each
query-ticket similarity with the ticket model on both sides). Only what the engine can be set to is swept: the
formula of :mod:`kb.desk.similar` / :mod:`kb.search.rerank.desk` as it is (embedding share 0.5,
:data:`kb.desk.resolved_votes.NEIGHBOURS` neighbours), the similarity bar :data:`BARS` x the weight
:data:`WEIGHTS`. The pair with the best nDCG@10 on folds 0-2 is chosen (ties: the higher bar, then the lower
weight: the smaller change); folds 3-4 and the styles are reported beside it, and the folds 0-2 plateau around it
(every pair within :data:`PLATEAU` of the best) so that a lone peak shows. nDCG@10 here is over the top 100 only,
so it reads higher than ``kb eval`` (bench/results/desk-history-session9.md): compare rows within one file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_ranker
import vote_variants

from kb.desk.resolved_votes import NEIGHBOURS

#: Similarity bars swept (the engine's default is 0.6; session 9 found the adapted model's cosines sit lower).
BARS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65)
#: Vote weights swept (the engine's default is 2.0).
WEIGHTS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
#: The embedding cosine's share of the similarity in the engine (mean of embedding and TF-IDF cosine).
SHARE = 0.5
#: Pairs within this much of the best folds 0-2 nDCG@10 form the reported plateau (about a fifth of one query
#: of the 129 on folds 0-2: 1/129 = 0.0078).
PLATEAU = 0.0015


def sweep(dump_path: Path) -> dict[str, Any]:
    """The report (module docstring) of the dump or re-encoded dump at ``dump_path``."""
    data = json.loads(dump_path.read_text(encoding="utf-8"))
    meta, queries = data["history"], data["queries"]
    as_of = max(dt.datetime.fromisoformat(c) for _, c in meta.values())
    groups = vote_variants.GROUPS
    rows = []
    for bar, weight in itertools.product(BARS, WEIGHTS):
        boosted = [vote_variants.scores(q, meta, as_of, (SHARE, NEIGHBOURS, bar, weight)) for q in queries]
        _, per = train_ranker.ndcg(queries, boosted)
        rows.append({"bar": bar, "weight": weight} | vote_variants._group(queries, per, groups))
    _, per_fused = train_ranker.ndcg(queries, [np.array(q["fused"]) for q in queries])
    best = max(rows, key=lambda r: (r["folds 0-2"], r["bar"], -r["weight"]))
    plateau = [r for r in rows if r["folds 0-2"] >= best["folds 0-2"] - PLATEAU]
    return {
        "dump": str(dump_path),
        "model": data.get("model", "the KB's own (dump)"),
        "formula": {"share": SHARE, "k": NEIGHBOURS},
        "fused, no vote": vote_variants._group(queries, per_fused, groups),
        "chosen on folds 0-2": best,
        "plateau on folds 0-2": plateau,
        "variants": rows,
    }


def main() -> None:
    """Write ``--out`` and print the chosen pair, the plateau and the no-vote row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", type=Path, required=True, help="a vote_variants.py dump or reencode output")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    report = sweep(args.dump)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print("fused, no vote", json.dumps(report["fused, no vote"]))
    print("chosen on folds 0-2", json.dumps(report["chosen on folds 0-2"]))
    for row in report["plateau on folds 0-2"]:
        print("plateau", json.dumps(row))


if __name__ == "__main__":
    main()
