"""The table of idempotency keys (:class:`kb.models.IdempotencyKey`), and the claim that writes a key in the use
case's own transaction.

A key is not reserved before the request runs. Instead, while a request with a key runs, :data:`CLAIM` names it,
and the first transaction of that request that writes the desk's or the knowledge base's data (anything but the
bookkeeping rows of :data:`BOOKKEEPING`: sessions, audit rows, login throttles, service-token use, chunks) also
inserts the key's row, with no answer yet (``status`` None). So:

- a process killed before that transaction commits leaves neither the change nor the key: a retry runs again;
- two requests racing with one key both try to insert the row (primary key ``(caller, key)``): the second's whole
  transaction fails and is rolled back, and it is answered from the first's row (in progress, or its answer);
- when the request ends, :meth:`IdempotencyStore.complete` stores the answer in the row, to be replayed. A request
  that wrote nothing (a 4xx, a read) stores its answer then, unless it is a 5xx, 401 or 429.

What is left: a process killed in the few milliseconds between the use case's commit and storing its answer leaves
the key "in progress" (409) until it expires; nothing is done twice, but the answer is lost.
"""

from __future__ import annotations

import datetime as dt
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session

from kb.db import Database
from kb.models import (
    AuditEvent,
    AuditHead,
    Chunk,
    IdempotencyKey,
    LoginThrottle,
    ServiceToken,
    UserSession,
    as_utc,
    utcnow,
)

#: Rows written on the way to the use case (authentication, audit, rate limits) or after it (the index's chunks):
#: a transaction holding only these does not carry the key.
BOOKKEEPING: tuple[type, ...] = (UserSession, LoginThrottle, AuditEvent, AuditHead, ServiceToken, IdempotencyKey, Chunk)
#: ``Session.info`` key of the claim whose row the session's transaction holds.
_HOLDS = "kb.idempotency_claim"


@dataclass
class Claim:
    """A request running under an ``Idempotency-Key``: whose (``caller``, a hash of the credential), which key,
    the request's hash, and until when the key is kept. ``committed`` turns True when the transaction holding the
    key's row has committed (from then on the request's effects are durable and the row says so)."""

    caller: str
    key: str
    request_hash: str
    expires_at: dt.datetime
    committed: bool = False


#: The claim of the request running in this context (set by :class:`kb.api.idempotency.IdempotencyMiddleware`).
CLAIM: ContextVar[Claim | None] = ContextVar("kb_idempotency_claim", default=None)


@dataclass(frozen=True)
class Reservation:
    """What :meth:`IdempotencyStore.lookup` found: ``replay`` (answer ``status``, ``content_type``, ``body`` again),
    ``mismatch`` (the key was used for another request) or ``in_progress`` (its use case has committed, its
    answer is not stored yet)."""

    state: Literal["replay", "mismatch", "in_progress"]
    status: int = 0
    content_type: str = ""
    body: bytes = b""


def _claims_data(rows: Any) -> bool:
    return any(not isinstance(row, BOOKKEEPING) for row in rows)


def _hold(session: Session, claim: Claim) -> None:
    """Add the claim's key row to the session's transaction (once)."""
    if session.info.get(_HOLDS) is claim:
        return
    session.info[_HOLDS] = claim
    now = utcnow()
    session.add(
        IdempotencyKey(
            caller=claim.caller, key=claim.key, request_hash=claim.request_hash, status=None, content_type="",
            body=b"", created_at=now, expires_at=claim.expires_at,
        )
    )  # fmt: skip


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    claim = CLAIM.get()
    if claim is not None and not claim.committed and _claims_data([*session.new, *session.dirty, *session.deleted]):
        _hold(session, claim)


def _do_orm_execute(state: ORMExecuteState) -> None:
    """Bulk INSERT / UPDATE / DELETE statements bypass the flush; they carry the key too."""
    claim = CLAIM.get()
    if claim is None or claim.committed or not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and not issubclass(mapper.class_, BOOKKEEPING):
        _hold(state.session, claim)


def _after_commit(session: Session) -> None:
    claim = session.info.pop(_HOLDS, None)
    if isinstance(claim, Claim):
        claim.committed = True


def _after_rollback(session: Session) -> None:
    session.info.pop(_HOLDS, None)


def watch(database: Database) -> None:
    """Let the sessions of ``database`` carry the running request's key (idempotent; module docstring)."""
    factory = database.sessions
    if event.contains(factory, "before_flush", _before_flush):
        return
    event.listen(factory, "before_flush", _before_flush)
    event.listen(factory, "do_orm_execute", _do_orm_execute)
    event.listen(factory, "after_commit", _after_commit)
    event.listen(factory, "after_rollback", _after_rollback)


class IdempotencyStore:
    """Idempotency keys in the database, kept ``hours`` after first use (the ``idempotency_key_hours`` setting)."""

    def __init__(self, database: Database, hours: float) -> None:
        self.database = database
        self.lifetime = dt.timedelta(hours=hours)

    def claim(self, caller: str, key: str, request_hash: str) -> Claim:
        """A claim for a request that found no row (:meth:`lookup` answered None); set it in :data:`CLAIM`."""
        return Claim(caller, key, request_hash, utcnow() + self.lifetime)

    def lookup(self, caller: str, key: str, request_hash: str) -> Reservation | None:
        """What ``key`` of ``caller`` already answers for the request hashed ``request_hash`` (hex SHA-256), or
        None when it is unused. Expired keys (this one and any other) are deleted first."""
        now = utcnow()
        with self.database.session() as session:
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < now))
            found = session.get(IdempotencyKey, (caller, key))
            if found is None or as_utc(found.expires_at) < now:
                return None
            return _seen(found, request_hash)

    def complete(self, claim: Claim, status: int, content_type: str, body: bytes) -> None:
        """Store the answer of a committed claim's request in its row, to be replayed to retries."""
        with self.database.session() as session:
            row = session.get(IdempotencyKey, (claim.caller, claim.key))
            if row is not None:
                row.status, row.content_type, row.body = status, content_type, body

    def store(self, claim: Claim, status: int, content_type: str, body: bytes) -> bool:
        """Store the answer of a request that wrote nothing (its row did not exist); False when a request with the
        same key stored one first (its answer is then the key's)."""
        now = utcnow()
        try:
            with self.database.session() as session:
                session.add(
                    IdempotencyKey(
                        caller=claim.caller, key=claim.key, request_hash=claim.request_hash, status=status,
                        content_type=content_type, body=body, created_at=now, expires_at=claim.expires_at,
                    )
                )  # fmt: skip
        except IntegrityError:
            return False
        return True


def _seen(row: IdempotencyKey, request_hash: str) -> Reservation:
    if row.request_hash != request_hash:
        return Reservation("mismatch")
    if row.status is None:
        return Reservation("in_progress")
    return Reservation("replay", row.status, row.content_type, row.body)
