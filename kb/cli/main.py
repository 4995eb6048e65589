"""The ``kb`` console script: builds the parser from each command module and dispatches (thin: parse, call one
library function, print)."""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError
from pydantic_settings import SettingsError

from kb.cli import articles, audit, backup, index, model, search, serve, tickets, users
from kb.config import Settings
from kb.db import missing_database
from kb.errors import KBError, NotFoundError

COMMANDS = {
    "import": index.cmd_import,
    "index": index.cmd_index,
    "search": search.cmd_search,
    "eval": search.cmd_eval,
    "synonyms": search.cmd_synonyms,
    "why": search.cmd_why,
    "article": articles.run,
    "tickets": tickets.cmd_tickets,
    "analysis": tickets.cmd_analysis,
    "serve": serve.cmd_serve,
    "users": users.cmd_users,
    "audit": audit.cmd_audit,
    "backup": backup.cmd_backup,
    "restore": backup.cmd_restore,
    "model": model.cmd_model,
}

#: Commands that read or change an existing knowledge base: run where there is none, they would create an empty
#: one (SQLite under ``./var``) and answer from it, so they stop with a message naming the folder instead.
NEEDS_KB = frozenset({"search", "why", "analysis", "audit", "backup", "index", "article", "synonyms"})
#: (``kb article review-template`` prints the bundled template and reads no knowledge base.)


def require_existing(settings: Settings) -> None:
    """Stop when the knowledge base of ``settings`` does not exist (:func:`kb.db.missing_database`: no SQLite file,
    or a PostgreSQL database kb never migrated).

    Raises:
        NotFoundError: no database there; the message names the folder (or the database) and the way out.
    """
    missing = missing_database(settings.resolved_database_url)
    if missing is not None:
        where = settings.data_dir.expanduser().resolve() if not settings.database_url else missing
        raise NotFoundError(
            f"no knowledge base in {where} (KB_DATA_DIR, default ./var of the folder kb runs in): "
            "run kb in the project folder, set KB_DATA_DIR, or create one with `kb import FOLDER`"
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kb", description="IT service desk knowledge base: import, index and search articles."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    index.add_parsers(sub)
    search.add_parsers(sub)
    articles.add_parser(sub)
    tickets.add_parsers(sub)
    serve.add_parsers(sub)
    users.add_parsers(sub)
    audit.add_parsers(sub)
    backup.add_parsers(sub)
    model.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kb`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():  # the value is not echoed: it may be a key (KB_AUDIT_KEY, KB_DATA_KEY)
            name = "KB_" + "_".join(str(part) for part in error["loc"]).upper()
            print(f"kb: error: setting {name}: {error['msg']}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # a list or JSON setting that does not parse; its message names the setting
        print(f"kb: error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command in NEEDS_KB and getattr(args, "article_command", None) != "review-template":
            require_existing(settings)
        return COMMANDS[args.command](args, settings)
    except KBError as exc:
        print(f"kb: error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
