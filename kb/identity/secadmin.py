"""The security administrator's work (安全管理员, GB/T 22239-2019 7.1.5.2 and 7.1.4.2): roles of users, the
password policy, lockouts and the administrator IP allow-list. Every change is audited in its own transaction.

The password policy and the allow-list are stored in ``security_settings`` and override the ``KB_PASSWORD_*``
and ``KB_ADMIN_CIDRS`` settings; a change applies at once in this process and at start in others. The policy may
not be set below the 等保二级 floor (:data:`POLICY_FLOOR`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select

from kb.db import Database
from kb.errors import ForbiddenError, InvalidInputError, NotFoundError
from kb.identity.accounts import Account, AccountStore, end_sessions
from kb.identity.audit import CLI, FAILURE, AuditContext, AuditTrail
from kb.identity.hardening import check_cidrs, ip_allowed
from kb.identity.names import fold_name
from kb.identity.passwords import PasswordPolicy
from kb.identity.roles import check_assignment, check_roles
from kb.identity.sysadmin import on_console
from kb.models import LoginThrottle, SecuritySetting, User, as_utc, utcnow

POLICY_KEY, CIDRS_KEY = "password_policy", "admin_cidrs"
#: The policy numbers the security administrator may set: name -> (lowest, highest). The lowest values are the
#: 等保二级 profile (GB/T 22239-2019 7.1.4.1 a); max_age_days 0 (never) is not allowed.
POLICY_FLOOR: dict[str, tuple[int, int]] = {
    "min_length": (8, 128),
    "min_classes": (3, 4),
    "history": (5, 24),
    "max_age_days": (1, 90),
}


@dataclass(frozen=True)
class Lockout:
    """A user name locked after failed logins, until ``until`` (UTC); ``account``: whether it names an account."""

    username: str
    until: datetime
    account: bool = True


class SecurityAdmin:
    """Roles, unlocks, the stored password policy and the administrator allow-list.

    Args:
        database: the kb database.
        accounts: the account store (its policy is replaced when the stored policy changes).
        audit: the audit trail.
        admin_cidrs: the configured allow-list (``KB_ADMIN_CIDRS``), used until one is stored.
    """

    def __init__(
        self, database: Database, accounts: AccountStore, audit: AuditTrail, admin_cidrs: Sequence[str] = ()
    ) -> None:
        self.database = database
        self.accounts = accounts
        self.audit = audit
        self.configured_cidrs = list(admin_cidrs)

    def load(self) -> None:
        """Apply the stored password policy, if any (at start)."""
        stored = self._get(POLICY_KEY)
        if isinstance(stored, dict):
            self.accounts.policy = _with_numbers(self.accounts.policy, _policy_numbers(stored))

    def set_roles(self, username: str, roles: list[str], context: AuditContext = CLI) -> Account:
        """Give ``username`` exactly ``roles`` and end all of the user's sessions
        (:func:`kb.identity.accounts.end_sessions`): the user logs in again under the new roles.

        Off the console (:func:`kb.identity.sysadmin.on_console`) only business roles, to business accounts, by
        someone else (:func:`kb.identity.roles.check_assignment`); a refusal is audited as a ``user.roles`` failure.

        Raises:
            NotFoundError: no such user. InvalidInputError: unknown or no role.
            ConflictError: two administrator roles, or one with any other role (三员 separation, 409).
            ForbiddenError: off the console, the actor is the user, or ``roles`` or the user's roles hold an
                administrator role (403).
        """
        with self.database.session() as session:
            user = self.accounts.user_row(session, username)
            if user is None:
                raise NotFoundError(f"No user {fold_name(username)}.")
            name, before = user.username, list(user.roles)
            try:
                checked = (
                    check_roles(roles) if on_console(context) else check_assignment(roles, context.actor, name, before)
                )
            except ForbiddenError as exc:
                refused = exc
            else:
                user.roles = checked
                ended = end_sessions(session, user)
                reason = f"{','.join(before)} -> {','.join(checked)}; {ended} sessions ended"
                self.audit.record(session, context, "user.roles", name, reason=reason)
                return self.accounts.account(user)
        self.audit.write(context, "user.roles", name, FAILURE, refused.message[:500])
        raise refused

    def unlock(self, username: str, context: AuditContext = CLI) -> bool:
        """Clear the failed-login count and lock of ``username`` (existing or not, as lockouts are); True when
        there was one."""
        name = fold_name(username)[:120]
        with self.database.session() as session:
            row = session.get(LoginThrottle, name)
            cleared = row is not None and row.locked_until is not None
            if row is not None:
                session.delete(row)
            self.audit.record(session, context, "lockout.clear", name, reason="locked" if cleared else "not locked")
        return bool(cleared)

    def lockouts(self) -> list[Lockout]:
        """The accounts locked now after failed logins, soonest unlock first. Names that are no account are locked
        too (the answer must not tell them apart) but not listed: such a name may be a password typed into the
        user-name field (found by session 7's outside tester); :meth:`unknown_lockouts` counts them."""
        return [lock for lock in self._locked() if lock.account]

    def unknown_lockouts(self) -> int:
        """How many names that are no account are locked now."""
        return sum(1 for lock in self._locked() if not lock.account)

    def _locked(self) -> list[Lockout]:
        now = utcnow()
        with self.database.session() as session:
            rows = session.scalars(select(LoginThrottle).where(LoginThrottle.locked_until.is_not(None))).all()
            names = set(session.scalars(select(User.username).where(User.username.in_([r.username for r in rows]))))
            found = [Lockout(r.username, as_utc(r.locked_until), r.username in names) for r in rows if r.locked_until]
        # compared in Python, as the login does: SQLite keeps naive UTC times
        return sorted((lock for lock in found if lock.until > now), key=lambda lock: lock.until)

    def password_policy(self) -> dict[str, int]:
        """The numbers of the policy in force."""
        policy = self.accounts.policy
        return {name: int(getattr(policy, name)) for name in POLICY_FLOOR}

    def set_password_policy(self, changes: Mapping[str, int], context: AuditContext = CLI) -> dict[str, int]:
        """Change some numbers of the policy (the others stay); returns the policy in force.

        Raises:
            InvalidInputError: an unknown name, or a number outside :data:`POLICY_FLOOR`.
        """
        numbers = self.password_policy() | _policy_numbers(changes)
        self._set(POLICY_KEY, numbers, context)
        self.accounts.policy = _with_numbers(self.accounts.policy, numbers)
        return numbers

    def admin_cidrs(self) -> list[str]:
        """The networks administrator routes accept: the stored list, else ``KB_ADMIN_CIDRS`` (empty: any)."""
        stored = self._get(CIDRS_KEY)
        return list(stored) if isinstance(stored, list) else self.configured_cidrs

    def set_admin_cidrs(self, cidrs: Sequence[str], context: AuditContext = CLI) -> list[str]:
        """Store the administrator allow-list (empty: any network).

        Raises:
            InvalidInputError: an entry is not a network; or the list would shut out the caller's own IP.
        """
        checked = check_cidrs(cidrs)
        if context.ip is not None and not ip_allowed(context.ip, checked):
            raise InvalidInputError(f"The list does not contain your own address {context.ip}; add it first.")
        self._set(CIDRS_KEY, checked, context)
        return checked

    def _get(self, key: str) -> Any:
        with self.database.session() as session:
            row = session.get(SecuritySetting, key)
            return row.value if row is not None else None

    def _set(self, key: str, value: Any, context: AuditContext) -> None:
        with self.database.session() as session:
            row = session.get(SecuritySetting, key)
            before = row.value if row is not None else None
            if row is None:
                session.add(SecuritySetting(key=key, value=value, updated_at=utcnow(), updated_by=context.actor))
            else:
                row.value, row.updated_at, row.updated_by = value, utcnow(), context.actor
            self.audit.record(session, context, "setting.change", key, reason=f"{before} -> {value}"[:500])


def _with_numbers(policy: PasswordPolicy, numbers: Mapping[str, int]) -> PasswordPolicy:
    return replace(
        policy,
        min_length=numbers.get("min_length", policy.min_length),
        min_classes=numbers.get("min_classes", policy.min_classes),
        history=numbers.get("history", policy.history),
        max_age_days=numbers.get("max_age_days", policy.max_age_days),
    )


def _policy_numbers(changes: Mapping[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in changes.items():
        if name not in POLICY_FLOOR:
            raise InvalidInputError(f"Unknown policy setting {name}; the settings are {', '.join(POLICY_FLOOR)}.")
        low, high = POLICY_FLOOR[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InvalidInputError(f"{name} must be a whole number from {low} to {high} (等保二级 floor {low}).")
        out[name] = value
    return out
