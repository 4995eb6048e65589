"""Desk synonyms (口语 => 术语) mined from resolved tickets linked to articles: the candidates, for inspection.

    python bench/mine_ticket_terms.py --history bench/data/desk-history/tickets.jsonl [--top 60]

For each history ticket ``T`` linked to article ``A`` (the desk history's ``article``): the colloquial candidates
are the ticket's Chinese terms (two or more characters, the index's analyzer) that at most ``--max-df`` of the
articles hold anywhere (users' words the articles do not use); the formal candidates the terms of ``A``'s title
and headings that at most ``--max-df`` of the articles hold in a title or heading (specific words) and that the
ticket does not hold. A rule ``t => a`` is printed when it is seen on at least ``--min-tickets`` tickets, for at
least ``--min-articles`` different articles, and on at least ``--min-share`` of the tickets holding ``t``.

Session 9 (bench/results/desk-history-session9.md): with the 415-ticket history the rules are almost all noise
(``反而 => 负载均衡``, ``一张 => 数据库``, ``下游 => 兼容``): 1-6 tickets per article cannot separate a
synonym from the other words of a large FAQ page, so no rule set was built from them.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from kb.desk.history import read_history
from kb.ingest.markdown import iter_markdown_files, read_article_file
from kb.search.text import TextAnalyzer

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = ("windows-troubleshooting", "k8s-troubleshooting", "tidb-faq", "linux-command")
HEADING = re.compile(r"^#+\s*(.+)$", re.MULTILINE)
CHINESE_TERM = re.compile(r"^[\u4e00-\u9fff]{2,}$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=Path, required=True)
    parser.add_argument("--articles", type=Path, default=ROOT.parent / "shared" / "data" / "articles")
    parser.add_argument("--max-df", type=float, default=0.02, help="share of the articles a candidate may be in")
    parser.add_argument("--min-tickets", type=int, default=2)
    parser.add_argument("--min-articles", type=int, default=2)
    parser.add_argument("--min-share", type=float, default=0.4)
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args()
    analyzer = TextAnalyzer()
    heads: dict[str, set[str]] = {}
    bodies: dict[str, set[str]] = {}
    for name in COLLECTIONS:
        for path in iter_markdown_files(args.articles / name):
            content = read_article_file(path)
            if content is None:
                continue
            key = f"{name}/{path.relative_to(args.articles / name)}"
            heads[key] = set(analyzer.terms(content.title + "\n" + "\n".join(HEADING.findall(content.body))))
            bodies[key] = set(analyzer.terms(f"{content.title}\n{content.summary}\n{content.body}"))
    limit = args.max_df * len(bodies)
    df = Counter(t for terms in bodies.values() for t in terms)
    head_df = Counter(t for terms in heads.values() for t in terms)
    tickets: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    articles: dict[tuple[str, str], set[str]] = {}
    for ticket in read_history(args.history):
        text = analyzer.normalize(f"{ticket.title}\n{ticket.description}")
        own = {t for t in analyzer.terms(text) if CHINESE_TERM.match(t)}
        for term in own:
            tickets[term] += 1
            if df[term] > limit:
                continue
            for formal in heads.get(ticket.article, set()) - own:
                if CHINESE_TERM.match(formal) and head_df[formal] <= limit:
                    pairs[(term, formal)] += 1
                    articles.setdefault((term, formal), set()).add(ticket.article)
    rules = [
        (t, a, n, tickets[t], len(articles[(t, a)]))
        for (t, a), n in pairs.items()
        if n >= args.min_tickets and len(articles[(t, a)]) >= args.min_articles and n / tickets[t] >= args.min_share
    ]
    print(f"{len(bodies)} articles, {sum(tickets.values())} ticket terms, {len(rules)} rules")
    print("colloquial => formal | tickets with both | tickets with the colloquial term | articles")
    for t, a, n, nt, na in sorted(rules, key=lambda r: (-r[4], -r[2], r[0], r[1]))[: args.top]:
        print(f"{t} => {a} | {n} | {nt} | {na}")


if __name__ == "__main__":
    main()
