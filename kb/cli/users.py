"""``kb users``: accounts on the command line (create, disable, enable, reset-password, list, totp), the security
administrator's roles and unlock, and service accounts (create-service, revoke-service, services).

One-time passwords are printed once here and nowhere else; ``--password-stdin`` reads a chosen password instead,
which the user must change at first login like a one-time password (the operator knows it;
:meth:`kb.identity.accounts.AccountStore.create`).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from kb.cli.output import print_json
from kb.config import Settings
from kb.db import missing_database, open_database
from kb.errors import InvalidInputError
from kb.identity.accounts import Account, AccountStore
from kb.identity.audit import AuditContext, AuditTrail
from kb.identity.data_key import DataKey
from kb.identity.passwords import PasswordPolicy
from kb.identity.roles import ROLES
from kb.identity.secadmin import SecurityAdmin
from kb.identity.service_tokens import ServiceTokens
from kb.identity.sysadmin import SERVICE_SCOPES
from kb.identity.totp import qr_svg


def add_parsers(sub: Any) -> None:
    """Add the commands of this module to ``sub`` (an argparse subparsers object)."""
    us = sub.add_parser("users", help="user accounts")
    us.add_argument(
        "--init",
        action="store_true",
        help="create the database when the data folder holds none (else the command refuses: a wrong folder)",
    )
    us_sub = us.add_subparsers(dest="users_command", required=True)
    cr = us_sub.add_parser("create", help="create a user; prints a one-time password unless --password-stdin")
    cr.add_argument("name")
    cr.add_argument("--role", action="append", required=True, choices=ROLES, help="a role (repeat for more)")
    cr.add_argument("--group", action="append", default=[], help="a resolver group the user works in (repeat)")
    cr.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (changed at first login)",
    )
    for name, text in (
        ("disable", "disable a user (ends the user's sessions at once)"),
        ("enable", "enable a disabled user"),
        ("reset-password", "give a user a new one-time password (printed once) and end the user's sessions"),
    ):
        us_sub.add_parser(name, help=text).add_argument("name")
    tp = us_sub.add_parser("totp", help="enrol a new TOTP secret (required for administrators); prints the URI once")
    tp.add_argument("name")
    tp.add_argument("--svg", type=Path, help="also save the enrolment QR code as this SVG file")
    ro = us_sub.add_parser("roles", help="give a user exactly these roles (the security administrator's work)")
    ro.add_argument("name")
    ro.add_argument("--role", action="append", required=True, choices=ROLES, help="a role (repeat for more)")
    us_sub.add_parser("unlock", help="clear a lockout after failed logins").add_argument("name")
    gr = us_sub.add_parser("groups", help="give a user exactly these resolver groups (none: no --group)")
    gr.add_argument("name")
    gr.add_argument("--group", action="append", default=[], help="a resolver group (repeat for more)")
    cs = us_sub.add_parser("create-service", help="a service account with a scoped API token (printed once)")
    cs.add_argument("name")
    scopes = sorted(s.value for s in SERVICE_SCOPES)
    cs.add_argument("--scope", action="append", required=True, choices=scopes, help="a scope (repeat for more)")
    us_sub.add_parser("revoke-service", help="revoke a service account's token at once").add_argument("name")
    us_sub.add_parser("services", help="list the service accounts")
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


def _services(tokens: ServiceTokens, args: argparse.Namespace, context: AuditContext) -> None:
    if args.users_command == "create-service":
        service, token = tokens.create(args.name, args.scope, context)
        print(f"created service {service.name} scopes={','.join(service.scopes)}")
        print(f"API token (shown once; send as Authorization: Bearer): {token}")
    elif args.users_command == "revoke-service":
        print(f"revoked service {tokens.revoke(args.name, context).name}")
    else:
        for item in tokens.list():
            state = f"revoked {item.revoked_at.isoformat()}" if item.revoked_at else "active"
            print(f"{item.name} scopes={','.join(item.scopes)} {state}")


def check_database_exists(settings: Settings) -> None:
    """Refuse to go on when the data folder holds no database (a SQLite file that does not exist, or a server
    database without kb's tables): ``kb users create`` run from another folder silently made a new ``./var`` with
    an account nobody's server reads (found by session 7's outside tester).

    Raises:
        InvalidInputError: no database there; the message names the folder and ``--init``.
    """
    where = missing_database(settings.resolved_database_url)
    if where is None:
        return
    raise InvalidInputError(
        f"No kb database at {where}: run the command where the server runs, or set KB_DATA_DIR (or "
        "KB_DATABASE_URL); `kb users --init ...` creates a new one."
    )


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    if not args.init:
        check_database_exists(settings)
    database = open_database(settings)
    try:
        accounts = AccountStore(
            database,
            PasswordPolicy.from_settings(settings),
            AuditTrail(database, settings.audit_key),
            DataKey.from_settings(settings),
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
            if args.svg is not None:
                args.svg.write_text(qr_svg(uri), encoding="utf-8")
                print(f"QR code saved to {args.svg} (delete it once scanned)")
        elif command == "groups":
            print(_row(accounts.set_groups(args.name, args.group, context)))
        elif command in ("roles", "unlock"):
            security = SecurityAdmin(database, accounts, accounts.audit)
            if command == "roles":
                print(_row(security.set_roles(args.name, args.role, context)))
            else:
                done = security.unlock(args.name, context)
                print(f"{args.name.strip().casefold()}: {'unlocked' if done else 'was not locked'}")
        elif command in ("create-service", "revoke-service", "services"):
            _services(ServiceTokens(database, accounts.audit), args, context)
        elif args.json:
            print_json([a.as_dict() for a in accounts.list()])
        else:
            for account in accounts.list():
                print(_row(account))
    finally:
        database.dispose()
    return 0
