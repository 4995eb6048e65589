"""``kb backup PATH`` / ``kb restore PATH``: the database and the search index (see :mod:`kb.identity.backup`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kb.cli.users import cli_context
from kb.config import Settings
from kb.db import open_database
from kb.identity.audit import AuditTrail
from kb.identity.backup import backup, restore


def add_parsers(sub: Any) -> None:
    """Add the commands of this module to ``sub`` (an argparse subparsers object)."""
    bk = sub.add_parser("backup", help="copy the database and the search index into the new folder PATH")
    bk.add_argument("path", type=Path, help="a new (or empty) folder")
    rs = sub.add_parser("restore", help="replace the database and index with the backup in PATH (stop kb first)")
    rs.add_argument("path", type=Path, help="a folder written by kb backup")


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    database = open_database(settings)
    try:
        report = backup(settings, args.path, AuditTrail(database, settings.audit_key), cli_context())
    finally:
        database.dispose()
    print(f"backed up the {report.database} database and index: {report.files} files in {report.path}")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    report = restore(settings, args.path, cli_context())
    print(f"restored the {report.database} database and index from {report.path} ({report.files} files)")
    return 0
