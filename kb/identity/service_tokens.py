"""Service accounts of integrations (the ticket system calling ``/suggest``, an IM bot, e-mail intake) with scoped
API tokens (身份鉴别 and 访问控制, GB/T 22239-2019 7.1.4.1, 7.1.4.2).

A token is ``kbs_`` + 256 random bits (``secrets.token_urlsafe(32)``), shown once at creation and sent as
``Authorization: Bearer``; the database keeps only its SHA-256 (random tokens need no salt or slow hash). A
token acts as the principal ``svc:NAME`` with exactly its scopes — a subset of :data:`SERVICE_SCOPES`, never an
administrator, editor or ticket-working permission; the system administrator may give only
:data:`kb.identity.sysadmin.SYSADMIN_SCOPES` (``article.internal`` is given on the console). Creating, revoking and
every refused use are audited.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from kb.db import Database
from kb.errors import ConflictError, InvalidInputError, NotFoundError, UnauthorizedError
from kb.identity.audit import CLI, AuditContext, AuditTrail
from kb.identity.permissions import Permission
from kb.identity.refusals import RefusedCredentials
from kb.identity.scopes import Principal
from kb.identity.sysadmin import SERVICE_SCOPES, check_token_scopes
from kb.models import ServiceToken, as_utc, utcnow

#: Prefix of service tokens (session tokens have none), so a leaked one is recognisable by secret scanners.
PREFIX = "kbs_"
#: Principal names of service accounts start with this.
ACTOR_PREFIX = "svc:"
P = Permission
#: The recorded use time of a token is refreshed at most this often.
LAST_USED_STEP = timedelta(seconds=60)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,60}$")

#: What :meth:`ServiceTokens.resolve` reads of a token, built once (SQLAlchemy caches its compiled form): building the
#: ORM query per request was a third of the resolve, and the ORM's row handling another (bench/results/perf-s9.md).
_BY_DIGEST = select(ServiceToken.name, ServiceToken.scopes, ServiceToken.revoked_at, ServiceToken.last_used_at).where(
    ServiceToken.token_hash == bindparam("digest")
)
_TOUCH = (
    update(ServiceToken).where(ServiceToken.token_hash == bindparam("digest")).values(last_used_at=bindparam("now"))
)


@dataclass(frozen=True)
class ServiceAccount:
    """A service account as listed (never the token)."""

    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return {
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


def is_service_token(token: str) -> bool:
    """Whether ``token`` has the service-token form (rather than a session token)."""
    return token.startswith(PREFIX)


def check_scopes(scopes: list[str]) -> list[str]:
    """The scopes, deduplicated and sorted.

    Raises:
        InvalidInputError: none, or one that is not in :data:`SERVICE_SCOPES`.
    """
    allowed = sorted(s.value for s in SERVICE_SCOPES)
    bad = sorted(set(scopes) - set(allowed))
    if bad or not scopes:
        raise InvalidInputError(f"Service scopes are one or more of {', '.join(allowed)}; not {', '.join(bad)}.")
    return sorted(set(scopes))


class ServiceTokens:
    """Create, list, revoke and resolve service tokens.

    Args:
        database: the kb database.
        audit: the audit trail.
        refusals: the writer of refused-token rows (:mod:`kb.identity.refusals`; default: one of its own).
    """

    def __init__(self, database: Database, audit: AuditTrail, refusals: RefusedCredentials | None = None) -> None:
        self.database = database
        self.audit = audit
        self.refusals = refusals or RefusedCredentials(audit)

    def create(self, name: str, scopes: list[str], context: AuditContext = CLI) -> tuple[ServiceAccount, str]:
        """A new service account; returns it and its token (shown once).

        Raises:
            InvalidInputError: bad name (2-61 of a-z 0-9 . _ -) or scope. ConflictError: the name exists.
            ForbiddenError: ``article.internal`` asked for off the console (:func:`check_token_scopes`).
        """
        clean = name.strip().casefold()
        if not _NAME.match(clean):
            raise InvalidInputError("A service name has 2 to 61 of a-z, 0-9, '.', '_' and '-'.")
        checked = check_scopes(scopes)
        check_token_scopes(context, checked)
        token = PREFIX + secrets.token_urlsafe(32)
        row = ServiceToken(name=clean, scopes=checked, token_hash=_digest(token), created_by=context.actor)
        try:
            with self.database.session() as session:
                session.add(row)
                session.flush()
                self.audit.record(session, context, "service.create", clean, reason=f"scopes={','.join(checked)}")
        except IntegrityError as exc:
            raise ConflictError(f"A service account {clean} exists already.") from exc
        return _account(row), token

    def list(self) -> list[ServiceAccount]:
        """Every service account by name, revoked ones included."""
        with self.database.session() as session:
            return [_account(r) for r in session.scalars(select(ServiceToken).order_by(ServiceToken.name))]

    def revoke(self, name: str, context: AuditContext = CLI) -> ServiceAccount:
        """Revoke the token of ``name`` at once (a later use answers 401). Raises NotFoundError."""
        with self.database.session() as session:
            row = session.scalar(select(ServiceToken).where(ServiceToken.name == name.strip().casefold()))
            if row is None:
                raise NotFoundError(f"No service account {name.strip().casefold()}.")
            row.revoked_at = row.revoked_at or utcnow()
            self.audit.record(session, context, "service.revoke", row.name)
            return _account(row)

    def resolve(self, token: str, *, ip: str | None = None) -> Principal:
        """The principal of a live service token (its use time is recorded).

        Raises:
            UnauthorizedError: unknown or revoked token (audited per source and minute, :mod:`kb.identity.refusals`).
        """
        digest = _digest(token)
        with self.database.session() as session:  # read in every request: revoking takes effect at once
            connection = session.connection()
            row = connection.execute(_BY_DIGEST, {"digest": digest}).first()
            if row is not None and row.revoked_at is None:
                now = utcnow()
                if row.last_used_at is None or now - as_utc(row.last_used_at) >= LAST_USED_STEP:
                    connection.execute(_TOUCH, {"digest": digest, "now": now})  # in steps: no write per request
                return Principal(ACTOR_PREFIX + row.name, (), scopes=frozenset(Permission(s) for s in row.scopes))
            name = ACTOR_PREFIX + row.name if row is not None else "(unknown)"
            reason = "revoked token" if row is not None else "unknown service token"
            self.refusals.record(session, AuditContext(name, ip=ip), "service.token", name, reason)
        raise UnauthorizedError("Unknown or revoked service token.")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _account(row: ServiceToken) -> ServiceAccount:
    return ServiceAccount(
        row.name,
        tuple(row.scopes),
        as_utc(row.created_at),
        row.created_by,
        as_utc(row.revoked_at) if row.revoked_at else None,
        as_utc(row.last_used_at) if row.last_used_at else None,
    )
