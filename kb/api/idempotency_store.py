"""The table of idempotency keys (:class:`kb.models.IdempotencyKey`): reserve a key before the request runs,
complete it with the answer, release it when the request failed on the server's side.

A key is reserved in its own transaction *before* the use case runs, and the primary key ``(caller, key)`` makes
the reservation atomic: of two requests racing with one key, one runs and the other is told the key is in use.
So a retry never makes a second row, even when the answer was lost; the price is that a crash between the use
case's commit and :meth:`IdempotencyStore.complete` leaves the key "in progress" (409) until it expires.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from kb.db import Database
from kb.models import IdempotencyKey, as_utc, utcnow


@dataclass(frozen=True)
class Reservation:
    """What :meth:`IdempotencyStore.reserve` found: ``new`` (run the request), ``replay`` (answer ``status``,
    ``content_type``, ``body`` again), ``mismatch`` (the key was used for another request) or ``in_progress``."""

    state: Literal["new", "replay", "mismatch", "in_progress"]
    status: int = 0
    content_type: str = ""
    body: bytes = b""


class IdempotencyStore:
    """Idempotency keys in the database, kept ``hours`` after first use (the ``idempotency_key_hours`` setting)."""

    def __init__(self, database: Database, hours: float) -> None:
        self.database = database
        self.lifetime = dt.timedelta(hours=hours)

    def reserve(self, caller: str, key: str, request_hash: str) -> Reservation:
        """Reserve ``key`` of ``caller`` for the request hashed ``request_hash`` (hex SHA-256), or say what it
        already answered. Expired keys (this one and any other) are deleted first."""
        now = utcnow()
        with self.database.session() as session:
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < now))
            found = session.get(IdempotencyKey, (caller, key))
            if found is not None and as_utc(found.expires_at) >= now:
                return _seen(found, request_hash)
        try:
            with self.database.session() as session:
                session.add(
                    IdempotencyKey(
                        caller=caller, key=key, request_hash=request_hash, status=None, content_type="", body=b"",
                        created_at=now, expires_at=now + self.lifetime,
                    )
                )  # fmt: skip
        except IntegrityError:  # another request with this key reserved it between the two transactions
            with self.database.session() as session:
                found = session.get(IdempotencyKey, (caller, key))
                return _seen(found, request_hash) if found is not None else Reservation("in_progress")
        return Reservation("new")

    def complete(self, caller: str, key: str, status: int, content_type: str, body: bytes) -> None:
        """Store the answer to the reserved request, to be replayed to retries."""
        with self.database.session() as session:
            row = session.get(IdempotencyKey, (caller, key))
            if row is not None:
                row.status, row.content_type, row.body = status, content_type, body

    def release(self, caller: str, key: str) -> None:
        """Forget the reservation (the request failed on the server's side, so a retry may run it again)."""
        with self.database.session() as session:
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.caller == caller, IdempotencyKey.key == key))


def _seen(row: IdempotencyKey, request_hash: str) -> Reservation:
    if row.request_hash != request_hash:
        return Reservation("mismatch")
    if row.status is None:
        return Reservation("in_progress")
    return Reservation("replay", row.status, row.content_type, row.body)
