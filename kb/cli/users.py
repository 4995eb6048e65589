"""``kb users``: accounts on the command line (create, disable, enable, reset-password, list).

One-time passwords are printed once here and nowhere else; ``--password-stdin`` reads a chosen password instead.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from kb.cli.output import print_json
from kb.config import Settings
from kb.db import open_database
from kb.identity.accounts import Account, AccountStore
from kb.identity.audit import AuditContext, AuditTrail
from kb.identity.passwords import PasswordPolicy
from kb.identity.roles import ROLES


def add_parsers(sub: Any) -> None:
    """Add the commands of this module to ``sub`` (an argparse subparsers object)."""
    us = sub.add_parser("users", help="user accounts")
    us_sub = us.add_subparsers(dest="users_command", required=True)
    cr = us_sub.add_parser("create", help="create a user; prints a one-time password unless --password-stdin")
    cr.add_argument("name")
    cr.add_argument("--role", action="append", required=True, choices=ROLES, help="a role (repeat for more)")
    cr.add_argument("--group", action="append", default=[], help="a resolver group the user works in (repeat)")
    cr.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    for name, text in (
        ("disable", "disable a user (ends the user's sessions at once)"),
        ("enable", "enable a disabled user"),
        ("reset-password", "give a user a new one-time password (printed once) and end the user's sessions"),
    ):
        us_sub.add_parser(name, help=text).add_argument("name")
    us_sub.add_parser(
        "totp", help="enrol a new TOTP secret (required for administrators); prints the URI once"
    ).add_argument("name")
    ls = us_sub.add_parser("list", help="list the users")
    ls.add_argument("--json", action="store_true", help="print JSON")


def cli_context() -> AuditContext:
    """The audit context of a command: the operating-system account that ran it, channel ``cli``."""
    return AuditContext(f"os:{getpass.getuser()}", channel="cli")


def _row(account: Account) -> str:
    state = "active" if account.active else "disabled"
    change = " must-change-password" if account.must_change_password or account.password_expired else ""
    groups = f" groups={','.join(account.groups)}" if account.groups else ""
    return f"{account.username}\t{','.join(account.roles)}\t{state}{change}{groups}"


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    database = open_database(settings)
    try:
        accounts = AccountStore(
            database, PasswordPolicy.from_settings(settings), AuditTrail(database, settings.audit_key)
        )
        context = cli_context()
        command = args.users_command
        if command == "create":
            password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
            account, once = accounts.create(args.name, args.role, context.actor, groups=args.group,
                                            password=password, context=context)  # fmt: skip
            print(f"created {_row(account)}")
            if once is not None:
                print(f"one-time password (shown once; must be changed at first login): {once}")
        elif command in ("disable", "enable"):
            print(_row(accounts.set_active(args.name, command == "enable", context)))
        elif command == "reset-password":
            once = accounts.reset_password(args.name, context)
            print(f"one-time password for {args.name.strip().casefold()} (shown once): {once}")
        elif command == "totp":
            uri = accounts.enrol_totp(args.name, context)
            print(f"TOTP enrolment for {args.name.strip().casefold()} (shown once; add it to an authenticator app):")
            print(uri)
        elif args.json:
            print_json([a.as_dict() for a in accounts.list()])
        else:
            for account in accounts.list():
                print(_row(account))
    finally:
        database.dispose()
    return 0
