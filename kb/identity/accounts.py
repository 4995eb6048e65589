"""Accounts: create, list, disable, enable, reset and change passwords; the first administrator.

User names are case-folded and unique. There is no default account: on an empty database
:meth:`AccountStore.ensure_admin` creates ``admin`` (系统管理员) with a random one-time password that must be changed
at first login.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import pyotp
from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kb.db import Database
from kb.errors import (
    ConflictError,
    DataKeyError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    WeakPasswordError,
)
from kb.identity.audit import CLI, FAILURE, AuditContext, AuditTrail
from kb.identity.data_key import DataKey
from kb.identity.names import ACCOUNT_NAME, SYSTEM_ACTOR, SYSTEM_CHANNEL, check_new_account_name, fold_name
from kb.identity.passwords import PasswordPolicy, one_time_password
from kb.identity.roles import check_groups, check_roles
from kb.identity.sysadmin import check_account_target
from kb.models import PasswordHistory, User, UserSession, as_utc, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Row

    #: A row of ``users`` columns by name, as a Core select returns it (what :meth:`AccountStore.account` reads).
    UserRow: TypeAlias = Row[*tuple[Any, ...]]

#: The administrator created on an empty database.
FIRST_ADMIN = "admin"
#: Issuer shown by authenticator apps.
TOTP_ISSUER = "kb"


@dataclass(frozen=True)
class FirstAdmin:
    """The administrator made on an empty database: its one-time password and TOTP enrolment URI (shown once)."""

    password: str
    totp_uri: str


@dataclass(frozen=True)
class Resealed:
    """What :meth:`AccountStore.reseal_totp_secrets` did: the users whose TOTP seed it sealed with the first key of
    ``KB_DATA_KEY``, and those whose seed no key opens (they cannot log in until the key is restored or they
    enrol again)."""

    resealed: tuple[str, ...]
    unreadable: tuple[str, ...]


@dataclass(frozen=True)
class Account:
    """A user as callers see it (never the hash). ``password_expired``: older than the policy's maximum age."""

    id: int
    username: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    active: bool
    must_change_password: bool
    password_expired: bool
    created_at: datetime
    last_login_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return {
            "username": self.username,
            "roles": list(self.roles),
            "groups": list(self.groups),
            "active": self.active,
            "must_change_password": self.must_change_password or self.password_expired,
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


def normalize_username(username: str) -> str:
    """``username`` in NFKC (full-width ``ａｄｍｉｎ`` is ``admin``: no look-alike accounts), stripped and case-folded.

    Raises:
        InvalidInputError: fewer than 2 or more than 120 characters, or characters other than letters, digits,
            ``.``, ``_``, ``@`` and ``-``.
    """
    name = fold_name(username)
    if not ACCOUNT_NAME.match(name):
        raise InvalidInputError("A user name has 2 to 120 letters, digits or the characters . _ @ - (no spaces).")
    return name


class AccountStore:
    """Accounts in the database, with passwords checked by ``policy`` and hashed with argon2. Every change is
    audited in its own transaction; ``context`` says who made it (the command line by default).

    TOTP seeds are stored sealed with ``data_key`` (:mod:`kb.identity.data_key`), never in clear.

    Args:
        database: the kb database.
        policy: the password policy new passwords must meet.
        audit: the audit trail.
        data_key: the keys of ``KB_DATA_KEY``, sealing TOTP seeds.
    """

    def __init__(self, database: Database, policy: PasswordPolicy, audit: AuditTrail, data_key: DataKey) -> None:
        self.database = database
        self.policy = policy
        self.audit = audit
        self.data_key = data_key

    def account(self, user: User | UserRow) -> Account:
        """The :class:`Account` view of a ``users`` row (the ORM object, or a row of its columns by name)."""
        age = utcnow() - as_utc(user.password_changed_at)
        expired = bool(self.policy.max_age_days) and age > timedelta(days=self.policy.max_age_days)
        return Account(
            user.id,
            user.username,
            tuple(user.roles),
            tuple(user.groups),
            user.active,
            user.must_change_password,
            expired,
            as_utc(user.created_at),
            as_utc(user.last_login_at) if user.last_login_at else None,
        )

    def create(
        self,
        username: str,
        roles: list[str],
        actor: str,
        *,
        groups: Sequence[str] = (),
        password: str | None = None,
        context: AuditContext = CLI,
        must_change: bool = True,
    ) -> tuple[Account, str | None]:
        """Create a user. Returns the account and, without ``password``, the one-time password to hand over.

        The one rule of a new account's first login: the user must change the password first, whether it is a
        one-time password or one the administrator chose (``POST /users``, the users page, ``kb users create
        --password-stdin``), since either is known to someone other than its user (GB/T 22239-2019 7.1.4.1 a;
        found by session 9's outside tester: the console's ``--password-stdin`` did not). ``must_change=False``
        is for a password that is the user's own; no route, page or command passes it (test fixtures seed
        accounts that log in at once with it).

        Raises:
            InvalidInputError: bad user name or role; WeakPasswordError: ``password`` fails the policy;
                ReservedNameError: a name of the server's own principals (:data:`kb.identity.names.RESERVED_NAMES`).
            ConflictError: the name exists, or an administrator role with another (三员 separation).
            ForbiddenError: an administrator role, off the console (:func:`kb.identity.sysadmin.check_account_target`).
        """
        check_new_account_name(fold_name(username))
        name = normalize_username(username)
        checked = check_roles(roles)
        check_account_target(context, checked)
        once = None if password is not None else one_time_password()
        secret = password if password is not None else once
        assert secret is not None
        self.policy.check(name, secret)
        user = User(
            username=name,
            roles=checked,
            groups=check_groups(groups),
            password_hash=self.policy.hash(secret),
            must_change_password=must_change,
            created_by=actor,
        )
        try:
            with self.database.session() as session:
                session.add(user)
                session.flush()
                session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))
                self.audit.record(session, context, "user.create", name, reason=f"roles={','.join(checked)}")
        except IntegrityError as exc:
            raise ConflictError(f"User {name} exists already.") from exc
        return self.account(user), once

    def ensure_admin(self) -> FirstAdmin | None:
        """On a database without users create :data:`FIRST_ADMIN` (sysadmin) with a one-time password and a TOTP
        secret and return both; otherwise return None."""
        with self.database.session() as session:
            if session.scalar(select(func.count()).select_from(User)):
                return None
        context = AuditContext(SYSTEM_ACTOR, channel=SYSTEM_CHANNEL)
        try:
            once = self.create(FIRST_ADMIN, ["sysadmin"], SYSTEM_ACTOR, context=context)[1]
        except ConflictError:  # another process created it first
            return None
        assert once is not None
        return FirstAdmin(once, self.enrol_totp(FIRST_ADMIN, context))

    def get(self, username: str) -> Account:
        """The account named ``username`` (any case). Raises NotFoundError."""
        with self.database.session() as session:
            return self.account(self._row(session, username))

    def list(self) -> list[Account]:
        """All accounts by name."""
        with self.database.session() as session:
            return [self.account(u) for u in session.scalars(select(User).order_by(User.username))]

    def set_active(self, username: str, active: bool, context: AuditContext = CLI) -> Account:
        """Enable or disable a user; disabling ends all of the user's sessions at once.

        Raises:
            NotFoundError: no such user. ForbiddenError: the user holds an administrator role and ``context`` is
                not the console (:func:`kb.identity.sysadmin.check_account_target`).
        """
        with self.database.session() as session:
            user = self._row(session, username)
            check_account_target(context, user.roles)
            user.active = active
            if not active:
                end_sessions(session, user)
            self.audit.record(session, context, "user.enable" if active else "user.disable", user.username)
            return self.account(user)

    def set_groups(self, username: str, groups: Sequence[str], context: AuditContext = CLI) -> Account:
        """Give ``username`` exactly these resolver groups (which tickets an agent sees, kb.identity.scopes) and end
        all of the user's sessions (:func:`end_sessions`).

        Raises:
            NotFoundError: no such user. InvalidInputError: a group name blank, over 120 characters or a role's
            name (:func:`kb.identity.roles.check_groups`). ForbiddenError: as :meth:`set_active`.
        """
        clean = check_groups(groups)
        with self.database.session() as session:
            user = self._row(session, username)
            check_account_target(context, user.roles)
            before = ",".join(user.groups)
            user.groups = clean
            ended = end_sessions(session, user)
            reason = f"{before} -> {','.join(clean)}; {ended} sessions ended"
            self.audit.record(session, context, "user.groups", user.username, reason=reason)
            return self.account(user)

    def disable_idle(self, idle_days: int, *, now: datetime | None = None) -> tuple[str, ...]:
        """Disable active accounts not logged in for ``idle_days`` (counted from creation for accounts never used),
        ending their sessions; each is audited as ``user.disable``. Returns the names disabled (0 days: none)."""
        if idle_days <= 0:
            return ()
        cutoff = (now or utcnow()) - timedelta(days=idle_days)
        context = AuditContext(SYSTEM_ACTOR, channel=SYSTEM_CHANNEL)
        disabled: tuple[str, ...] = ()
        with self.database.session() as session:
            for user in session.scalars(select(User).where(User.active.is_(True)).order_by(User.username)):
                if as_utc(user.last_login_at or user.created_at) < cutoff:
                    user.active = False
                    end_sessions(session, user)
                    self.audit.record(session, context, "user.disable", user.username, reason=f"idle {idle_days} days")
                    disabled += (user.username,)
        return disabled

    def enrol_totp(self, username: str, context: AuditContext = CLI) -> str:
        """Give the user a new TOTP secret (RFC 6238, 30 s, 6 digits; replacing any earlier one) and return its
        ``otpauth://`` enrolment URI, to be shown once (as text or a QR code). Raises NotFoundError."""
        secret = pyotp.random_base32()
        with self.database.session() as session:
            user = self._row(session, username)
            user.totp_secret, user.totp_last_step = self.data_key.seal(secret), None
            self.audit.record(session, context, "totp.enrol", user.username)
        return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=TOTP_ISSUER)

    def totp_seed(self, user: User) -> str | None:
        """The base32 TOTP seed of ``user`` opened from its sealed column, or None when not enrolled.

        Raises:
            DataKeyError: no key of ``KB_DATA_KEY`` opens it.
        """
        return self.data_key.open(user.totp_secret) if user.totp_secret else None

    def reseal_totp_secrets(self) -> Resealed:
        """Seal every stored TOTP seed with the first key of ``KB_DATA_KEY``: bare seeds from before sealing, and
        seeds sealed with an older key after a rotation (one transaction, audited as ``totp.reseal`` with the
        count). Seeds no key opens are left as they are and named in the answer. Cheap when nothing needs it
        (one query, one decryption per enrolled user)."""
        resealed: list[str] = []
        unreadable: list[str] = []
        with self.database.session() as session:
            for user in session.scalars(select(User).where(User.totp_secret.is_not(None)).order_by(User.username)):
                assert user.totp_secret is not None
                try:
                    if self.data_key.needs_reseal(user.totp_secret):
                        user.totp_secret = self.data_key.reseal(user.totp_secret)
                        resealed.append(user.username)
                except DataKeyError:
                    unreadable.append(user.username)
            if resealed:
                context = AuditContext(SYSTEM_ACTOR, channel=SYSTEM_CHANNEL)
                self.audit.record(session, context, "totp.reseal", ",".join(resealed), reason=f"{len(resealed)} seeds")
        return Resealed(tuple(resealed), tuple(unreadable))

    def enrol_own_totp(self, username: str, password: str, context: AuditContext = CLI) -> str:
        """A user (re-)enrols their own TOTP after proving the password; returns the enrolment URI (shown once).

        Raises:
            ForbiddenError: the password is wrong (audited). NotFoundError: no such user.
        """
        with self.database.session() as session:
            ok = self.policy.verify(password, self._row(session, username).password_hash)
        if not ok:
            self.audit.write(context, "totp.enrol", username, FAILURE, "wrong password")
            raise ForbiddenError("The password is wrong.")
        return self.enrol_totp(username, context)

    def reset_password(self, username: str, context: AuditContext = CLI) -> str:
        """Give the user a new one-time password (returned; it must be changed at next login) and end the user's
        sessions. Raises NotFoundError."""
        once = one_time_password()
        with self.database.session() as session:
            user = self._row(session, username)
            self._set_password(session, user, once, must_change=True)
            end_sessions(session, user)
            self.audit.record(session, context, "password.reset", user.username)
        return once

    def change_password(
        self, username: str, old: str, new: str, context: AuditContext = CLI, *, keep_session: str | None = None
    ) -> Account:
        """Change one's own password after proving the old one; clears ``must_change_password`` and ends every
        other session of the user (whoever held a stolen session or the old password is logged out), all but the
        one whose token digest (:func:`kb.identity.sessions.token_digest`) is ``keep_session``.

        Raises:
            ForbiddenError: ``old`` is wrong. WeakPasswordError: ``new`` fails the policy (including reuse).
            NotFoundError: no such user.
        """
        reason = "wrong old password"
        with self.database.session() as session:
            user = self._row(session, username)
            if self.policy.verify(old, user.password_hash):
                try:
                    self._set_password(session, user, new, must_change=False)
                except WeakPasswordError as exc:
                    reason = exc.message
                else:
                    ended = end_sessions(session, user, keep=keep_session)
                    self.audit.record(
                        session, context, "password.change", user.username, reason=f"{ended} other sessions ended"
                    )
                    return self.account(user)
        self.audit.write(context, "password.change", user.username, FAILURE, reason)
        if reason == "wrong old password":
            raise ForbiddenError("The old password is wrong.")
        raise WeakPasswordError(reason)

    def user_row(self, session: Session, username: str) -> User | None:
        """The ``users`` row of ``username`` (case-folded) in ``session``, or None."""
        name = fold_name(username)
        return session.scalar(select(User).where(User.username == name))

    def _row(self, session: Session, username: str) -> User:
        user = self.user_row(session, username)
        if user is None:
            raise NotFoundError(f"No user {fold_name(username)}.")
        return user

    def _set_password(self, session: Session, user: User, password: str, *, must_change: bool) -> None:
        earlier = session.scalars(
            select(PasswordHistory.password_hash)
            .where(PasswordHistory.user_id == user.id)
            .order_by(PasswordHistory.id.desc())
        ).all()
        self.policy.check(user.username, password, [] if must_change else earlier)
        user.password_hash = self.policy.hash(password)
        user.password_changed_at = utcnow()
        user.must_change_password = must_change
        session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))


def end_sessions(session: Session, user: User, *, keep: str | None = None) -> int:
    """End (delete) every session of ``user`` but the one whose token digest is ``keep``; returns how many ended.

    The one rule for every change of what an account may do or who may use it: disabling, a password reset or
    change, and any change of its roles (:meth:`kb.identity.secadmin.SecurityAdmin.set_roles`) or groups
    (:meth:`AccountStore.set_groups`). A session opened before the change (perhaps with a password only, as business
    accounts log in) must not carry the new rights: the user logs in again, under the rules of the new roles.
    Found by session 8's outside tester: a role change left the user's sessions open.
    """
    ended = delete(UserSession).where(UserSession.user_id == user.id)
    if keep is not None:
        ended = ended.where(UserSession.token_hash != keep)
    return int(cast(CursorResult[Any], session.execute(ended)).rowcount)
