"""Login and opaque server-side sessions (GB/T 22239-2019 7.1.4.1 b 登录失败处理、登录连接超时自动退出).

A session is a random 256-bit token (``secrets.token_urlsafe(32)``) held by the client as the ``kb_session``
cookie or an ``Authorization: Bearer`` header; the database keeps only its SHA-256, so a copy of the database
opens no session. A session ends after ``idle`` without use, ``lifetime`` after login, at logout, or when its
user is disabled. After ``lockout_failures`` failed logins within ``lockout_window`` a user name is locked for
``lockout`` — the same for names that do not exist, and a password hash is verified either way so the time
taken does not tell them apart.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from kb.config import Settings
from kb.db import Database
from kb.errors import AccountLockedError, DataKeyError, ForbiddenError, UnauthorizedError
from kb.identity.accounts import Account, AccountStore
from kb.identity.audit import FAILURE, AuditContext, AuditTrail
from kb.identity.names import fold_name
from kb.identity.refusals import RefusedCredentials
from kb.identity.roles import ADMIN_ROLES
from kb.identity.totp import accepted_step
from kb.models import LoginThrottle, User, UserSession, as_utc, utcnow

if TYPE_CHECKING:
    from kb.identity.accounts import UserRow

#: A session's clocks and its user's columns (by token digest) that :meth:`AccountStore.account` reads; one
#: statement object, so SQLAlchemy's compiled cache serves it with no adaptation (0.28 -> 0.06 ms a request).
_LIVE_SESSION = (
    select(
        UserSession.last_seen_at,
        UserSession.expires_at,
        User.id,
        User.username,
        User.roles,
        User.groups,
        User.active,
        User.must_change_password,
        User.password_changed_at,
        User.created_at,
        User.last_login_at,
    )
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("digest"))
)

#: The one answer to every refused login that is not a lockout: a wrong password, an unknown or disabled user, and
#: a right password without a valid one-time code or without an enrolled one. A caller who does not hold both
#: factors cannot tell from the answer whether the password was right (found by session 7's outside tester: "code
#: needed" answered only a right password). The audit trail records which it was.
BAD_CREDENTIALS = (
    "Wrong user name, password or one-time code (totp). Administrators, and users who enrolled one, give the "
    "code of their authenticator app; an administrator enrols first on the console with `kb users totp NAME`."
)
LOCKED = "Too many failed logins: this account is locked; try again later or ask the security administrator."


@dataclass(frozen=True)
class LoginResult:
    """A new session: ``token`` (opaque, shown once), when it expires at the latest, and whether the user must
    change the password before anything else."""

    token: str
    expires_at: datetime
    must_change_password: bool
    account: Account


#: The idle clock is refreshed at most this often (or a tenth of ``idle``, if smaller): a session then ends at
#: most this much *earlier* than an exact clock would, and a burst of requests writes nothing to the database.
LAST_SEEN_STEP = timedelta(seconds=30)


@dataclass(frozen=True)
class SessionPolicy:
    """Session and lockout limits (``KB_SESSION_*``, ``KB_LOCKOUT_*``); ``totp_roles`` must log in with a TOTP
    code (the three administrator roles unless ``KB_TOTP_REQUIRED_FOR_ADMINS=false``)."""

    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=12)
    lockout_failures: int = 5
    lockout_window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=30)
    totp_roles: tuple[str, ...] = ADMIN_ROLES

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        """The limits named by ``settings``."""
        return cls(
            timedelta(minutes=settings.session_idle_minutes),
            timedelta(hours=settings.session_max_hours),
            settings.lockout_failures,
            timedelta(minutes=settings.lockout_window_minutes),
            timedelta(minutes=settings.lockout_minutes),
            ADMIN_ROLES if settings.totp_required_for_admins else (),
        )


def token_digest(token: str) -> str:
    """The stored form of a session token: hex SHA-256 (the token has 256 random bits, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Sessions:
    """Logins, session lookup and logout.

    Every login, failure, lockout and logout is audited in the same transaction (a failed login's row is never the
    name typed for a user that does not exist: that may be a password typed into the wrong field); so is every use
    of an ended or unknown token, aggregated per source and minute (:mod:`kb.identity.refusals`).

    Args:
        database: the kb database.
        accounts: the account store (views of users).
        policy: timeouts and lockout limits.
        audit: the audit trail.
        refusals: the writer of refused-token rows (default: one of this object's own; the server shares one).
    """

    def __init__(
        self,
        database: Database,
        accounts: AccountStore,
        policy: SessionPolicy,
        audit: AuditTrail,
        refusals: RefusedCredentials | None = None,
    ) -> None:
        self.database = database
        self.accounts = accounts
        self.policy = policy
        self.audit = audit
        self.refusals = refusals or RefusedCredentials(audit)

    def login(
        self,
        username: str,
        password: str,
        *,
        totp: str | None = None,
        ip: str | None = None,
        channel: str = "api",
        now: datetime | None = None,
    ) -> LoginResult:
        """Check the password (and the TOTP code of an enrolled user) and open a session; ``ip`` and ``channel``
        are recorded in the audit trail. A missing or wrong code counts as a failed login.

        Raises:
            AccountLockedError: the name is locked (423), whether or not it exists.
            UnauthorizedError: wrong password, unknown or disabled user, a missing or wrong TOTP code, an
                administrator who has not enrolled TOTP: one message (:data:`BAD_CREDENTIALS`) for all, after the
                same password-hash verification.
            DataKeyError: right password, but ``KB_DATA_KEY`` cannot open the user's TOTP seed (503; audited,
                not counted towards the lockout).
        """
        now = now or utcnow()
        name = fold_name(username)[:120]
        locked = already = False
        step: int | None = None
        fault: DataKeyError | None = None
        problem = ""
        with self.database.session() as session:
            user = self.accounts.user_row(session, name)
            ok = self.accounts.policy.verify(password, user.password_hash if user else None)  # always one verify
            throttle = session.get(LoginThrottle, name)
            who = AuditContext(name if user else "(unknown)", tuple(user.roles) if user else (), ip, channel)
            if user is None or not ok or not user.active:
                problem = "unknown user" if user is None else "disabled" if not user.active else "wrong password"
            elif user.totp_secret:
                try:
                    seed = self.accounts.totp_seed(user)
                except DataKeyError as exc:  # the server's key, not the caller, is at fault: no failure counted
                    fault, problem = exc, "totp seed cannot be opened with KB_DATA_KEY"
                else:
                    assert seed is not None
                    if (step := accepted_step(seed, totp or "", user.totp_last_step, now)) is None:
                        problem = "totp missing, wrong or reused"
            elif set(user.roles) & set(self.policy.totp_roles):
                problem = "totp not enrolled"
            if throttle is not None and throttle.locked_until and as_utc(throttle.locked_until) > now:
                self.audit.record(session, who, "login", name if user else "", FAILURE, "account locked")
                already = True
            elif fault is not None:
                self.audit.record(session, who, "login", who.actor, FAILURE, problem)
            elif problem:
                self.audit.record(session, who, "login", who.actor, FAILURE, problem)
                locked = self._fail(session, throttle, name, now)
                if locked:
                    self.audit.record(session, who, "lockout", who.actor, FAILURE, f"{self.policy.lockout} lock")
        if already or locked:
            raise AccountLockedError(LOCKED)
        if fault is not None:
            raise fault
        if problem or user is None:
            raise UnauthorizedError(BAD_CREDENTIALS)
        token = secrets.token_urlsafe(32)
        expires = now + self.policy.lifetime
        with self.database.session() as session:
            session.execute(delete(LoginThrottle).where(LoginThrottle.username == name))
            row = session.get(User, user.id)
            assert row is not None
            row.last_login_at = now
            if row.totp_secret and step is not None:
                row.totp_last_step = step  # this code and older ones are refused from now on
                if self.accounts.data_key.needs_reseal(row.totp_secret):  # bare, or sealed with an older key
                    row.totp_secret = self.accounts.data_key.reseal(row.totp_secret)
            session.add(UserSession(token_hash=token_digest(token), user_id=user.id, created_at=now,
                                    last_seen_at=now, expires_at=expires))  # fmt: skip
            account = self.accounts.account(row)
            self.audit.record(session, AuditContext(name, account.roles, ip, channel), "login", name)
        return LoginResult(token, expires, account.must_change_password or account.password_expired, account)

    def reprove(self, username: str, password: str, context: AuditContext, action: str) -> None:
        """Check the password a logged-in user gives again (``action``: ``password.change``, ``totp.enrol``) as a
        login would: a wrong one counts towards the lockout of the name and a locked name is refused, so a stolen
        session guesses no faster than a login (found by an outside test: the re-proving routes answered 403 without
        end). Like a lockout by failed logins, it does not end the user's sessions.

        Raises:
            AccountLockedError: the name is locked (423), now or already. ForbiddenError: the password is wrong.
        """
        now = utcnow()
        name = fold_name(username)[:120]
        with self.database.session() as session:
            user = self.accounts.user_row(session, name)
            ok = self.accounts.policy.verify(password, user.password_hash if user else None)
            throttle = session.get(LoginThrottle, name)
            already = throttle is not None and throttle.locked_until is not None and as_utc(throttle.locked_until) > now
            locked = not already and not ok and self._fail(session, throttle, name, now)
            if already or not ok:
                reason = "account locked" if already else "wrong password"
                self.audit.record(session, context, action, name, FAILURE, reason)
            if locked:
                self.audit.record(session, context, "lockout", name, FAILURE, f"{self.policy.lockout} lock")
        if already or locked:
            raise AccountLockedError(LOCKED)
        if not ok:
            raise ForbiddenError("The password is wrong.")

    def resolve(self, token: str, *, ip: str | None = None, now: datetime | None = None) -> Account:
        """The account of a live session, refreshing its idle clock. A token that does not open a session is
        audited (forged, reused after logout, expired; :mod:`kb.identity.refusals`) and its row, if any, deleted.

        Raises:
            UnauthorizedError: unknown, ended, idle-expired or past-lifetime token, or a disabled user.
        """
        now = now or utcnow()
        digest = token_digest(token)
        # One row of plain columns first, on a connection (no ORM session or objects: ~12 % of a serving process's
        # time went to loading the two rows, py-spy in bench/results/concurrent-writes-s12.md); the ORM path for
        # the rest (a refresh of the idle clock, a refusal).
        with self.database.engine.connect() as connection:
            seen = connection.execute(_LIVE_SESSION, {"digest": digest}).one_or_none()  # one statement object: cached
        if seen is not None and seen.active and self._live(seen, now) and not self._refresh_due(seen, now):
            return self.accounts.account(seen)
        with self.database.session() as session:
            row = session.get(UserSession, digest)
            user = session.get(User, row.user_id) if row is not None else None
            if row is not None and user is not None and user.active and self._live(row, now):
                if self._refresh_due(row, now):
                    row.last_seen_at = now  # in steps: no database write per request (never a later expiry)
                return self.accounts.account(user)
            if row is not None:
                session.delete(row)
            name = user.username if user else "(unknown)"
            reason = "expired or disabled" if row is not None else "unknown or ended token"
            self.refusals.record(session, AuditContext(name, ip=ip), "session", name, reason)
        raise UnauthorizedError("Not logged in, or the session has ended or expired; log in again.")

    def _live(self, row: UserSession | UserRow, now: datetime) -> bool:
        return as_utc(row.expires_at) > now and as_utc(row.last_seen_at) + self.policy.idle > now

    def _refresh_due(self, row: UserSession | UserRow, now: datetime) -> bool:
        """Whether the idle clock is moved on now: in steps, so not a database write per request (never a later
        expiry than a write per request would give)."""
        return now - as_utc(row.last_seen_at) >= min(LAST_SEEN_STEP, self.policy.idle / 10)

    def logout(self, token: str, context: AuditContext) -> None:
        """End the session of ``token`` (deletes its row; a later use answers 401)."""
        with self.database.session() as session:
            session.execute(delete(UserSession).where(UserSession.token_hash == token_digest(token)))
            self.audit.record(session, context, "logout", context.actor)

    def _fail(self, session: Session, throttle: LoginThrottle | None, name: str, now: datetime) -> bool:
        """Count a failure for ``name``; True when it locks the name now."""
        if throttle is None:
            throttle = LoginThrottle(username=name, failures=0, window_start=now)
            session.add(throttle)
        if as_utc(throttle.window_start) + self.policy.lockout_window <= now:
            throttle.failures, throttle.window_start, throttle.locked_until = 0, now, None
        throttle.failures += 1
        if throttle.failures >= self.policy.lockout_failures:
            throttle.locked_until = now + self.policy.lockout
            throttle.failures, throttle.window_start = 0, now
            return True
        return False

    def sessions_of(self, username: str) -> int:
        """How many sessions ``username`` has open (for tests and the users list)."""
        with self.database.session() as session:
            user = self.accounts.user_row(session, username)
            if user is None:
                return 0
            return len(session.scalars(select(UserSession.token_hash).where(UserSession.user_id == user.id)).all())
