"""``kb article ...``: the knowledge lifecycle from the command line (the same library calls as the API)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from kb.articles.content import STATUSES, to_markdown
from kb.articles.reviews import TEMPLATE
from kb.articles.rows import content_of
from kb.config import Settings


def add_parser(sub: Any) -> None:
    """Add the ``article`` command and its subcommands to ``sub`` (an argparse subparsers object)."""
    art = sub.add_parser("article", help="article lifecycle: status, versions, feedback, review queue, export")
    cmd = art.add_subparsers(dest="article_command", required=True)

    show = cmd.add_parser("show", help="an article's fields, lifecycle and counts")
    show.add_argument("article_id", type=int)
    show.add_argument("--json", action="store_true", help="print as JSON")

    st = cmd.add_parser("status", help="move an article through draft -> in_review -> published -> retired")
    st.add_argument("article_id", type=int)
    st.add_argument("status", choices=STATUSES)
    st.add_argument("--superseded-by", type=int, help="when retiring: the article that replaces it")
    st.add_argument("--review-by", type=dt.date.fromisoformat, help="when publishing: review-by date YYYY-MM-DD")

    ver = cmd.add_parser("versions", help="list saved versions")
    ver.add_argument("article_id", type=int)

    diff = cmd.add_parser("diff", help="unified diff between two versions")
    diff.add_argument("article_id", type=int)
    diff.add_argument("from_version", type=int)
    diff.add_argument("to_version", type=int, nargs="?", help="default: the current version")

    res = cmd.add_parser("restore", help="make an old version's content current again (a new version)")
    res.add_argument("article_id", type=int)
    res.add_argument("version", type=int)

    exp = cmd.add_parser("export", help="the article as Markdown with front matter (kb import reads it back)")
    exp.add_argument("article_id", type=int)
    exp.add_argument("-o", "--output", type=Path, help="write to this file instead of standard output")

    fb = cmd.add_parser("feedback", help="record helpful / not helpful")
    fb.add_argument("article_id", type=int)
    vote = fb.add_mutually_exclusive_group(required=True)
    vote.add_argument("--helpful", dest="helpful", action="store_true")
    vote.add_argument("--not-helpful", dest="helpful", action="store_false")
    fb.add_argument("--comment", default="")
    fb.add_argument("--query", help="the search the article was a result of")

    used = cmd.add_parser("used", help="record that the article resolved a ticket")
    used.add_argument("article_id", type=int)
    used.add_argument("ticket")

    ke = cmd.add_parser("known-error", help="draft a known-error article from a post-incident review")
    ke.add_argument("review_id", type=int)

    cmd.add_parser("review-template", help="print the post-incident review template (import with --as-reviews)")

    rq = cmd.add_parser("review-queue", help="published articles past their review-by date or with poor feedback")
    rq.add_argument("--json", action="store_true", help="print as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``kb article`` subcommand; returns the exit status. KBError propagates (the caller prints it)."""
    from kb.articles.versions import diff_versions
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings)
    user = settings.dev_user
    try:
        command = args.article_command
        if command in ("status", "restore", "known-error"):
            kb.open()  # these change what is searchable: the index is brought up to date before returning
            if command == "status":
                outcome = kb.writer.set_status(
                    args.article_id, args.status, user, superseded_by=args.superseded_by, review_by=args.review_by
                )
            elif command == "restore":
                outcome = kb.writer.restore(args.article_id, args.version, user)
            else:
                outcome = kb.writer.create_known_error(args.review_id, user)
            article = outcome.article
            assert article is not None
            print(f"article {article.id}: {article.status}, version {article.version}, indexed={outcome.indexed}")
        elif command == "show":
            article = kb.store.get(args.article_id)
            stats = kb.feedback.stats([article.id])[article.id]
            keys = [
                "id",
                "title",
                "kind",
                "service",
                "status",
                "version",
                "reviewer",
                "review_by",
                "published_at",
                "superseded_by",
                "source_path",
                "updated_at",
                "updated_by",
            ]
            data: dict[str, Any] = {k: getattr(article, k) for k in keys} | {"stats": vars(stats)}
            if args.json:
                print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
            else:
                for key, value in data.items():
                    print(f"{key:>14}: {value}")
        elif command == "versions":
            for row in kb.store.versions(args.article_id):
                status = row.fields.get("status", "")
                print(
                    f"v{row.version:<4} {row.created_at:%Y-%m-%d %H:%M} {row.created_by:<12} {status:<10} {row.title}"
                )
        elif command == "diff":
            to_version = args.to_version or kb.store.get(args.article_id).version
            old, new = (
                kb.store.version(args.article_id, args.from_version),
                kb.store.version(args.article_id, to_version),
            )
            print(diff_versions(old, new), end="")
        elif command == "export":
            text = to_markdown(content_of(kb.store.get(args.article_id)))
            if args.output:
                args.output.write_text(text, encoding="utf-8")
            else:
                print(text, end="" if text.endswith("\n") else "\n")
        elif command == "review-template":
            print(TEMPLATE, end="")
        elif command == "feedback":
            kb.feedback.add_feedback(args.article_id, args.helpful, user, comment=args.comment, query=args.query)
            print(f"feedback recorded on article {args.article_id}")
        elif command == "used":
            kb.feedback.record_usage(args.article_id, "resolved", user, ticket=args.ticket)
            print(f"article {args.article_id} resolved ticket {args.ticket}")
        elif command == "review-queue":
            items = kb.feedback.review_queue()
            if args.json:
                print(
                    json.dumps(
                        [
                            {"id": i.article.id, "title": i.article.title, "reasons": i.reasons} | vars(i.stats)
                            for i in items
                        ],
                        ensure_ascii=False,
                        indent=2,
                    )
                )
            else:
                for item in items:
                    s = item.stats
                    print(
                        f"{item.article.id:6}  {','.join(item.reasons):<22} review by {item.article.review_by}  "
                        f"+{s.helpful}/-{s.not_helpful}  {item.article.title}"
                    )
                print(f"{len(items)} articles due for review")
    finally:
        kb.close()
    return 0
