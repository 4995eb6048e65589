"""``kb audit verify``: check the audit trail's HMAC chain (exit 0 intact, 1 naming the first broken row);
``kb audit archive PATH``: export and purge rows older than 184 days."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kb.cli.users import cli_context
from kb.config import Settings
from kb.db import open_database
from kb.identity.audit import RETENTION_DAYS, AuditTrail


def add_parsers(sub: Any) -> None:
    """Add the commands of this module to ``sub`` (an argparse subparsers object)."""
    au = sub.add_parser("audit", help="the audit trail")
    au_sub = au.add_subparsers(dest="audit_command", required=True)
    au_sub.add_parser("verify", help="check the HMAC chain with KB_AUDIT_KEY; exit 1 names the first broken row")
    ar = au_sub.add_parser("archive", help=f"export rows older than {RETENTION_DAYS} days to PATH, then purge them")
    ar.add_argument("path", type=Path, help="JSON-lines file the rows are appended to")
    ar.add_argument("--older-than-days", type=int, default=RETENTION_DAYS, help=f"at least {RETENTION_DAYS}")


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    database = open_database(settings)
    try:
        trail = AuditTrail(database, settings.audit_key)
        if args.audit_command == "archive":
            purged = trail.archive(args.path, cli_context(), older_than_days=args.older_than_days)
            print(f"archived and purged {purged} rows to {args.path}")
            return 0
        report = trail.verify()
    finally:
        database.dispose()
    if report.ok:
        print(f"audit trail intact: {report.rows} rows")
        return 0
    print(f"audit trail broken at row {report.broken_seq}: {report.reason}", file=sys.stderr)
    return 1
