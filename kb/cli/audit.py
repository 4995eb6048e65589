"""``kb audit verify``: check the audit trail's HMAC chain (exit 0 intact, 1 naming the first broken row)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kb.config import Settings
from kb.db import open_database
from kb.identity.audit import AuditTrail


def add_parsers(sub: Any) -> None:
    """Add the commands of this module to ``sub`` (an argparse subparsers object)."""
    au = sub.add_parser("audit", help="the audit trail")
    au_sub = au.add_subparsers(dest="audit_command", required=True)
    au_sub.add_parser("verify", help="check the HMAC chain with KB_AUDIT_KEY; exit 1 names the first broken row")


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    database = open_database(settings)
    try:
        report = AuditTrail(database, settings.audit_key).verify()
    finally:
        database.dispose()
    if report.ok:
        print(f"audit trail intact: {report.rows} rows")
        return 0
    print(f"audit trail broken at row {report.broken_seq}: {report.reason}", file=sys.stderr)
    return 1
