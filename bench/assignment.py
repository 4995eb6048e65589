"""Assignment suggestion measured on it-tickets-en: kNN vote of resolver groups against the majority baseline.

    python bench/tickets.py --data-dir var/tickets      # imports and embeds the 47,837 tickets (about 25 min)
    python bench/assignment.py --data-dir var/tickets   # this measurement (about a minute)

Label: the ticket's topic group (its resolver group in our mapping). Split: a seeded random 10 % of the tickets held
out (seed 20261129), the rest are the "past tickets". For each held-out ticket the 10 nearest past tickets vote with
their similarity (:func:`kb.desk.similar.vote`, the function the desk uses). Reported: accuracy, macro-F1
(scikit-learn), accuracy and coverage when only confident votes (share >= 0.6) are shown, against the majority-class
baseline, for three similarities: the stored embeddings, TF-IDF over kb's analyzer terms, and their mean (what the
desk uses, :class:`kb.desk.similar.ClosedTicketIndex`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from sqlalchemy import select

from kb.config import Settings
from kb.desk.similar import NEIGHBOURS, fit_tfidf, ticket_text, vote
from kb.models import Ticket
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261129
HELD_OUT = 0.10
CONFIDENT = 0.6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="knowledge base with the imported tickets")
    parser.add_argument("--model-cache", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    kb = KnowledgeBase(Settings(data_dir=args.data_dir, model_cache=args.model_cache))
    try:
        kb.ticket_vectors.embed_closed()
        with kb.database.session() as session:
            tickets = list(session.scalars(select(Ticket).where(Ticket.source == "it-tickets-en").order_by(Ticket.id)))
        analyzer = kb.analyzer
        model = kb.embedder.name
        embeddings = kb.ticket_vectors.matrix(tickets)
    finally:
        kb.close()
    labels = np.array([t.resolver_group or "" for t in tickets])
    order = np.random.default_rng(SEED).permutation(len(tickets))
    cut = int(len(tickets) * HELD_OUT)
    test, train = order[:cut], order[cut:]
    texts = [ticket_text(t) for t in tickets]
    tfidf, train_tfidf = fit_tfidf(analyzer, [texts[i] for i in train])  # as ClosedTicketIndex
    test_tfidf = tfidf.transform([texts[i] for i in test])

    values, counts = np.unique(labels[train], return_counts=True)
    majority = str(values[np.argmax(counts)])
    truth = labels[test]
    results: dict[str, object] = {
        "tickets": len(tickets),
        "train": len(train),
        "held_out": len(test),
        "model": model,
        "neighbours": NEIGHBOURS,
        "majority_baseline": {
            "group": majority,
            "accuracy": round(float((truth == majority).mean()), 4),
            "macro_f1": round(float(f1_score(truth, [majority] * len(test), average="macro", zero_division=0)), 4),
        },
    }
    for name in ("embedding", "tfidf", "embedding+tfidf"):
        predicted, confidence = [], []
        for start in range(0, len(test), 512):
            rows = slice(start, start + 512)
            sims = np.zeros((len(test[rows]), len(train)), dtype=np.float32)
            if name != "tfidf":
                sims += embeddings[test[rows]] @ embeddings[train].T
            if name != "embedding":
                sims += (test_tfidf[rows] @ train_tfidf.T).toarray()
            if name == "embedding+tfidf":
                sims /= 2
            top = np.argpartition(-sims, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]
            for r in range(len(top)):
                chosen = vote(list(labels[train[top[r]]]), sims[r, top[r]])
                predicted.append(chosen.group or majority)
                confidence.append(chosen.confidence)
        pred, conf = np.array(predicted), np.array(confidence)
        sure = conf >= CONFIDENT
        results[name] = {
            "accuracy": round(float((pred == truth).mean()), 4),
            "macro_f1": round(float(f1_score(truth, pred, average="macro", zero_division=0)), 4),
            f"accuracy_when_confidence_ge_{CONFIDENT}": round(float((pred[sure] == truth[sure]).mean()), 4),
            f"coverage_when_confidence_ge_{CONFIDENT}": round(float(sure.mean()), 4),
            "per_group_accuracy": {
                str(g): round(float((pred[truth == g] == g).mean()), 4) for g in sorted(set(truth.tolist()))
            },
        }
        print(name, round(float((pred == truth).mean()), 4), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "assignment-it-tickets-en.json").write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    base = results["majority_baseline"]
    assert isinstance(base, dict)
    lines = [
        "# Assignment suggestion on it-tickets-en (topic group as the resolver group)",
        "",
        f"`python bench/assignment.py`: {len(tickets)} tickets, {len(test)} held out (seeded random 10 %), "
        f"{NEIGHBOURS}-nearest-neighbour similarity-weighted vote, model {model}.",
        "",
        f"| method | accuracy | macro-F1 | accuracy / coverage at confidence >= {CONFIDENT} |",
        "|---|---|---|---|",
        f"| majority class ({majority}) | {base['accuracy']:.3f} | {base['macro_f1']:.3f} | – |",
    ]
    for method in ("embedding", "tfidf", "embedding+tfidf"):
        got = results[method]
        assert isinstance(got, dict)
        sure_acc = got[f"accuracy_when_confidence_ge_{CONFIDENT}"]
        sure_cov = got[f"coverage_when_confidence_ge_{CONFIDENT}"]
        lines.append(
            f"| kNN, {method} | {got['accuracy']:.3f} | {got['macro_f1']:.3f} | {sure_acc:.3f} / {sure_cov:.3f} |"
        )
    (args.out / "assignment-it-tickets-en.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
