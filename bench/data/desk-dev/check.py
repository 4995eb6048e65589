#!/usr/bin/env python3
"""Validate the desk-dev query set (stdlib only).

    python bench/data/desk-dev/check.py                 # validate, print counts
    python bench/data/desk-dev/check.py --strict        # warnings count as errors too
    python bench/data/desk-dev/check.py --write-corpus /tmp/desk-corpus.jsonl
                                                        # also write a BEIR corpus.jsonl of the articles

Checks: query ids unique and well formed; fields and their values (style, answerable, fold, half,
collection); qrels header and rows (score 1 or 2, no duplicate pairs, query known); every corpus-id is an
existing .md file under <articles-root>/<one of the four collections>; every answerable query has at least
one grade-2 judgement and its `collection` matches the collection of a grade-2 article; unanswerable queries
have no judgements. Warnings: phrase queries outside 4-12 characters (an ASCII word counts as one), query
texts that repeat an article title or a query of eval/tidb-faq-dev, duplicate query texts.

The articles root is --articles-root, else $KB_BENCH_SHARED_DATA/articles, else /work/shared/data/articles.
Exit status: 0 when there is no error (and, with --strict, no warning), 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLLECTIONS = ("windows-troubleshooting", "k8s-troubleshooting", "tidb-faq", "linux-command")
STYLES = ("ticket", "layman", "phrase", "keyword")
QID = re.compile(r"^q\d{3,}$")
ASCII_RUN = re.compile(r"[A-Za-z0-9_./:+#%'$\\-]+")


def default_articles_root() -> Path:
    shared = os.environ.get("KB_BENCH_SHARED_DATA")
    return Path(shared) / "articles" if shared else Path("/work/shared/data/articles")


def phrase_length(text: str) -> int:
    """Characters of a phrase, counting each ASCII word (run of letters, digits, symbols) as one."""
    words = ASCII_RUN.findall(text)
    rest = ASCII_RUN.sub("", text)
    return len(words) + sum(1 for ch in rest if not ch.isspace())


def normalize(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).lower()


def article_title(path: Path) -> str:
    """Front-matter `title:`, else the first Markdown heading, else the file stem."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return path.stem
    if lines and lines[0].strip() == "---":
        for line in lines[1:]:
            if line.strip() == "---":
                break
            if line.startswith("title:"):
                return line[len("title:") :].strip().strip("'\"").replace("\\_", "_")
    for line in lines:
        if line.startswith("#"):
            title = re.sub(r"<a name=\"[^\"]*\"></a>", "", line.lstrip("#")).strip()
            if title:
                return title
        elif line.strip() and not line.startswith("---"):
            # linux-command pages: first line is the command name
            return line.strip()
    return path.stem


def corpus_files(root: Path) -> list[str]:
    out = []
    for coll in COLLECTIONS:
        base = root / coll
        if base.is_dir():
            out.extend(str(p.relative_to(root)) for p in sorted(base.rglob("*.md")))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=HERE, help="folder with queries.jsonl and qrels.tsv")
    ap.add_argument("--articles-root", type=Path, default=None)
    ap.add_argument("--strict", action="store_true", help="treat warnings as errors")
    ap.add_argument(
        "--write-corpus",
        type=Path,
        default=None,
        metavar="PATH",
        help="write a BEIR corpus.jsonl (_id = article path, title, text) of the four collections",
    )
    args = ap.parse_args(argv)
    root = args.articles_root or default_articles_root()

    errors: list[str] = []
    warnings: list[str] = []

    # ---- queries
    queries: dict[str, dict] = {}
    order: list[str] = []
    qpath = args.dir / "queries.jsonl"
    for lineno, line in enumerate(qpath.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"queries.jsonl:{lineno}: invalid JSON ({exc})")
            continue
        qid = rec.get("_id")
        if not isinstance(qid, str) or not QID.match(qid):
            errors.append(f"queries.jsonl:{lineno}: bad _id {qid!r}")
            continue
        if qid in queries:
            errors.append(f"queries.jsonl:{lineno}: duplicate _id {qid}")
            continue
        text = rec.get("text")
        if not isinstance(text, str) or not text.strip():
            errors.append(f"{qid}: empty text")
        if rec.get("style") not in STYLES:
            errors.append(f"{qid}: style {rec.get('style')!r} not in {STYLES}")
        if not isinstance(rec.get("answerable"), bool):
            errors.append(f"{qid}: answerable must be true or false")
        if rec.get("fold") not in range(5):
            errors.append(f"{qid}: fold must be 0..4")
        if rec.get("half") not in ("A", "B"):
            errors.append(f"{qid}: half must be 'A' or 'B'")
        coll = rec.get("collection")
        if rec.get("answerable") is True and coll not in COLLECTIONS:
            errors.append(f"{qid}: answerable query needs collection in {COLLECTIONS}")
        if rec.get("answerable") is False and coll is not None:
            errors.append(f"{qid}: unanswerable query must not have a collection")
        queries[qid] = rec
        order.append(qid)

    # ---- qrels
    judged: dict[str, dict[str, int]] = collections.defaultdict(dict)
    rpath = args.dir / "qrels.tsv"
    rlines = rpath.read_text(encoding="utf-8").splitlines()
    if not rlines or rlines[0] != "query-id\tcorpus-id\tscore":
        errors.append("qrels.tsv: header must be 'query-id<TAB>corpus-id<TAB>score'")
    existing = set(corpus_files(root)) if root.is_dir() else set()
    if not root.is_dir():
        errors.append(f"articles root {root} not found: cannot check corpus ids")
    for lineno, line in enumerate(rlines[1:], 2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            errors.append(f"qrels.tsv:{lineno}: expected 3 tab-separated fields")
            continue
        qid, doc, score = parts
        if qid not in queries:
            errors.append(f"qrels.tsv:{lineno}: unknown query {qid}")
            continue
        if score not in ("1", "2"):
            errors.append(f"qrels.tsv:{lineno}: score {score!r} must be 1 or 2")
            continue
        if doc in judged[qid]:
            errors.append(f"qrels.tsv:{lineno}: duplicate judgement {qid} {doc}")
            continue
        if doc.split("/", 1)[0] not in COLLECTIONS or not doc.endswith(".md"):
            errors.append(f"qrels.tsv:{lineno}: {doc} is not a .md file of the four collections")
        elif existing and doc not in existing:
            errors.append(f"qrels.tsv:{lineno}: {doc} does not exist under {root}")
        judged[qid][doc] = int(score)

    for qid in order:
        rec = queries[qid]
        rel = judged.get(qid, {})
        if rec.get("answerable") is True:
            grade2 = [d for d, g in rel.items() if g == 2]
            if not grade2:
                errors.append(f"{qid}: answerable but no grade-2 judgement")
            elif rec.get("collection") not in {d.split("/", 1)[0] for d in grade2}:
                errors.append(f"{qid}: collection {rec.get('collection')} has no grade-2 article")
        elif rel:
            errors.append(f"{qid}: unanswerable but has {len(rel)} judgement(s)")

    # ---- warnings
    titles: dict[str, str] = {}
    if existing:
        for rel_path in existing:
            t = normalize(article_title(root / rel_path))
            if len(t) >= 4:
                titles[t] = rel_path
    eval_q = set()
    eval_path = root.parent / "eval" / "tidb-faq-dev" / "queries.jsonl"
    if eval_path.is_file():
        for line in eval_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                eval_q.add(normalize(json.loads(line)["text"]))
    seen_text: dict[str, str] = {}
    for qid in order:
        rec = queries[qid]
        text = rec.get("text") or ""
        n = normalize(text)
        if n in seen_text:
            warnings.append(f"{qid}: same text as {seen_text[n]}")
        seen_text.setdefault(n, qid)
        if n in titles:
            warnings.append(f"{qid}: text repeats the title of {titles[n]}")
        if n in eval_q:
            warnings.append(f"{qid}: text repeats a query of eval/tidb-faq-dev")
        if rec.get("style") == "phrase" and not 4 <= phrase_length(text) <= 12:
            warnings.append(f"{qid}: phrase length {phrase_length(text)} outside 4-12: {text}")

    # ---- report
    ans = [q for q in order if queries[q].get("answerable") is True]
    una = [q for q in order if queries[q].get("answerable") is False]
    print(f"queries: {len(order)} ({len(ans)} answerable, {len(una)} unanswerable)")
    print(
        f"judgements: {sum(len(v) for v in judged.values())} "
        f"(grade 2: {sum(1 for v in judged.values() for g in v.values() if g == 2)}, "
        f"grade 1: {sum(1 for v in judged.values() for g in v.values() if g == 1)}); "
        f"distinct articles judged: {len({d for v in judged.values() for d in v})}"
    )
    by_style = collections.Counter(queries[q]["style"] for q in ans)
    by_style_u = collections.Counter(queries[q]["style"] for q in una)
    print("per style (answerable / unanswerable): " + ", ".join(f"{s} {by_style[s]}/{by_style_u[s]}" for s in STYLES))
    by_coll = collections.Counter(queries[q]["collection"] for q in ans)
    print("answerable per collection: " + ", ".join(f"{c} {by_coll[c]}" for c in COLLECTIONS))
    table = collections.Counter((queries[q]["collection"], queries[q]["style"]) for q in ans)
    width = max(len(c) for c in COLLECTIONS)
    print(" " * width + "".join(f"{s:>9}" for s in STYLES))
    for c in COLLECTIONS:
        print(f"{c:<{width}}" + "".join(f"{table[(c, s)]:>9}" for s in STYLES))
    folds = collections.Counter(queries[q]["fold"] for q in ans)
    halves = collections.Counter(queries[q]["half"] for q in ans)
    print(
        "answerable per fold: "
        + ", ".join(f"{f}: {folds[f]}" for f in range(5))
        + f"; per half: A {halves['A']}, B {halves['B']}"
    )
    multi = sum(1 for q in ans if sum(1 for g in judged[q].values() if g == 2) > 1)
    print(f"answerable queries with more than one grade-2 article: {multi}")

    if args.write_corpus:
        if not existing:
            errors.append("--write-corpus: no articles found")
        else:
            with open(args.write_corpus, "w", encoding="utf-8") as out:
                for rel_path in sorted(existing):
                    p = root / rel_path
                    out.write(
                        json.dumps(
                            {
                                "_id": rel_path,
                                "title": article_title(p),
                                "text": p.read_text(encoding="utf-8", errors="replace"),
                            },
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
            print(f"wrote {len(existing)} articles to {args.write_corpus}")

    for w in warnings:
        print(f"WARNING: {w}")
    for e in errors:
        print(f"ERROR: {e}")
    print(f"{len(errors)} error(s), {len(warnings)} warning(s)")
    return 1 if errors or (args.strict and warnings) else 0


if __name__ == "__main__":
    sys.exit(main())
