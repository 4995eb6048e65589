"""The audit trail (安全审计, GB/T 22239-2019 7.1.4.3): one append-only table with an HMAC-SHA256 chain.

Each row of ``audit_events`` records time (UTC), actor, roles, source IP, channel, event, object, result and
reason — never a password, token or other secret. It is written in the same transaction as the action it records
(:meth:`AuditTrail.record` takes the action's session). Row ``n`` carries ``prev_mac`` (the ``mac`` of row
``n - 1``; empty for the first) and ``mac = HMAC-SHA256(key, prev_mac + "\\n" + canonical JSON of the row)``,
with the key from the setting ``KB_AUDIT_KEY``, which is not in the database; so a changed, inserted or removed
row breaks the chain at that row (:meth:`AuditTrail.verify`). Writers are serialised by the single row of
``audit_head`` (the sequence and the newest mac), updated first in the transaction: a row lock on PostgreSQL,
the database write lock on SQLite. Triggers refuse UPDATE and DELETE on ``audit_events`` (migration 0006).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ScalarSelect, delete, func, inspect, select, update
from sqlalchemy.orm import Session

from kb.db import Database
from kb.errors import InvalidInputError
from kb.identity.names import CONSOLE_ACTOR, fold_name
from kb.models import AuditEvent, AuditHead, as_utc, utcnow

#: Rows younger than this many days are never purged (网络安全法 第二十一条: logs kept at least six months);
#: the delete triggers of migration 0006 enforce the same number.
RETENTION_DAYS = 184

#: ``result`` values.
SUCCESS, FAILURE, DENIED = "success", "failure", "denied"


@dataclass(frozen=True)
class AuditContext:
    """Who acts, from where: the user name (or what was typed, for failed logins of names that exist), roles,
    the client IP and the channel (``api``, ``cli``, ``im``, ``email``, ``system``)."""

    actor: str
    roles: tuple[str, ...] = ()
    ip: str | None = None
    channel: str = "api"


#: The context of changes made from the command line on the server.
CLI = AuditContext(CONSOLE_ACTOR, channel="cli")


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :meth:`AuditTrail.verify`: rows checked; ``broken_seq`` is the first bad row (None: intact)."""

    rows: int
    broken_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return self.broken_seq is None


def _canonical(row: AuditEvent) -> str:
    fields = [row.seq, as_utc(row.at).isoformat(), row.actor, row.roles, row.source_ip, row.channel, row.event,
              row.object, row.result, row.reason]  # fmt: skip
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


class AuditTrail:
    """Writes, reads and verifies ``audit_events``.

    Args:
        database: the kb database.
        key: the HMAC key (``KB_AUDIT_KEY``), at least 16 characters.
    """

    def __init__(self, database: Database, key: str) -> None:
        self.database = database
        self._key = key.encode("utf-8")

    def mac(self, prev_mac: str, row: AuditEvent) -> str:
        """Hex HMAC-SHA256 of ``row`` chained to ``prev_mac``."""
        message = (prev_mac + "\n" + _canonical(row)).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def record(
        self,
        session: Session,
        context: AuditContext,
        event: str,
        object: str = "",
        result: str = SUCCESS,
        reason: str = "",
        *,
        flush: bool = True,
        at: datetime | None = None,
    ) -> None:
        """Append one row in ``session`` (the action's own transaction: both commit or neither); ``flush=False``
        inside a flush event, where the row joins the flush under way; ``at`` (default now) for carrying over an
        earlier trail."""
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
        with session.no_autoflush:
            known = session.get(AuditHead, 1)
            # a row recorded earlier in the same flush (flush=False) has set a MAC not yet written: keep it
            pending = known.mac if known is not None and inspect(known).attrs.mac.history.has_changes() else None
            head = session.get(AuditHead, 1, populate_existing=True)
        assert head is not None, "migration 0006 creates the audit_head row"
        if pending is not None:
            head.mac = pending
        row = AuditEvent(
            seq=head.seq,
            at=at or utcnow(),
            actor=context.actor[:120],
            roles=",".join(context.roles)[:200],
            source_ip=(context.ip or "")[:64],
            channel=context.channel[:20],
            event=event[:40],
            object=object[:300],
            result=result[:10],
            reason=reason[:500],
            prev_mac=head.mac,
        )
        row.mac = self.mac(head.mac, row)
        head.mac = row.mac
        session.add(row)
        if flush:
            session.flush()

    def write(
        self, context: AuditContext, event: str, object: str = "", result: str = SUCCESS, reason: str = ""
    ) -> None:
        """Append one row in a transaction of its own (for events with no other change, e.g. a denial)."""
        with self.database.session() as session:
            self.record(session, context, event, object, result, reason)

    def verify(self) -> VerifyReport:
        """Check every row's mac and link in ``seq`` order, that no sequence number is missing and that the
        newest row is the head's, and that the oldest row follows the last archived one (or is row 1)."""
        rows = 0
        prev: AuditEvent | None = None
        with self.database.session() as session:
            anchor = session.get(AuditHead, 1)
            for row in self._rows(session):
                rows += 1
                if prev is None and anchor is not None:
                    expected = (anchor.archived_seq + 1, anchor.archived_mac)
                    if (row.seq, row.prev_mac) != expected:
                        reason = f"it does not follow the last archived row {anchor.archived_seq}"
                        return VerifyReport(rows, row.seq, reason)
                if prev is not None and row.seq != prev.seq + 1:
                    return VerifyReport(rows, row.seq, f"rows {prev.seq + 1} to {row.seq - 1} are missing")
                if prev is not None and row.prev_mac != prev.mac:
                    return VerifyReport(rows, row.seq, "its link to the previous row does not match")
                if not hmac.compare_digest(row.mac, self.mac(row.prev_mac, row)):
                    return VerifyReport(rows, row.seq, "its contents do not match its HMAC")
                prev = row
            head = session.get(AuditHead, 1)
            if head is not None and prev is not None and (head.seq, head.mac) != (prev.seq, prev.mac):
                return VerifyReport(rows, prev.seq + 1, f"rows after {prev.seq} up to {head.seq} are missing")
        return VerifyReport(rows)

    def archive(self, path: Path, context: AuditContext, *, older_than_days: int = RETENTION_DAYS) -> int:
        """Export the rows older than ``older_than_days`` to ``path`` (JSON lines, with their macs), then purge
        them and record ``audit.archive``, in one transaction; returns the number purged. The chain stays
        verifiable: the head keeps the last purged row's seq and mac as the anchor.

        Raises:
            InvalidInputError: ``older_than_days`` below :data:`RETENTION_DAYS`.
        """
        if older_than_days < RETENTION_DAYS:
            raise InvalidInputError(f"Audit rows are kept at least {RETENTION_DAYS} days; archive older ones only.")
        cutoff = utcnow() - timedelta(days=older_than_days)
        with self.database.session() as session:
            session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))  # lock the head
            old: list[AuditEvent] = []
            for row in self._rows(session):  # the oldest rows, up to the first one that is too young
                if as_utc(row.at) >= cutoff:
                    break
                old.append(row)
            if not old:
                return 0
            with path.open("a", encoding="utf-8") as out:
                for row in old:
                    out.write(json.dumps({**as_row(row), "prev_mac": row.prev_mac}, ensure_ascii=False) + "\n")
            session.execute(delete(AuditEvent).where(AuditEvent.seq <= old[-1].seq))
            head = session.get(AuditHead, 1, populate_existing=True)
            assert head is not None
            head.archived_seq, head.archived_mac = old[-1].seq, old[-1].mac
            reason = f"rows {old[0].seq}-{old[-1].seq} to {path.name}"
            self.record(session, context, "audit.archive", "audit_events", reason=reason)
        return len(old)

    def query(
        self,
        *,
        actor: str | None = None,
        event: str | None = None,
        result: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[AuditEvent]]:
        """Rows matching every given filter, newest first: ``(total matching, the page)``. ``since`` inclusive,
        ``until`` exclusive, both UTC."""
        conditions = []
        if actor:
            conditions.append(AuditEvent.actor == fold_name(actor))
        if event:
            conditions.append(AuditEvent.event == event)
        if result:
            conditions.append(AuditEvent.result == result)
        if since:
            conditions.append(AuditEvent.at >= since)
        if until:
            conditions.append(AuditEvent.at < until)
        with self.database.session() as session:
            total = session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
            page = session.scalars(
                select(AuditEvent).where(*conditions).order_by(AuditEvent.seq.desc()).limit(limit).offset(offset)
            ).all()
        return total, list(page)

    def _rows(self, session: Session, page: int = 1000) -> Iterator[AuditEvent]:
        """Every row in ``seq`` order, read ``page`` rows at a time (no open cursor is left behind on return)."""
        after = -1
        while True:
            rows = session.scalars(
                select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(page)
            ).all()
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1].seq


#: The audit events that give or change an account's roles: :meth:`kb.identity.accounts.AccountStore.create` and
#: :meth:`kb.identity.secadmin.SecurityAdmin.set_roles`, each recorded in the transaction of the change.
ROLE_EVENTS = ("user.create", "user.roles")


def roles_changed() -> ScalarSelect[int | None]:
    """The ``seq`` of the newest :data:`ROLE_EVENTS` row (None before any), as a scalar subquery to read with
    others in one statement: a value that changes whenever any account's roles may have changed, for caches that
    depend on roles (one lookup on ``ix_audit_events_event``). It can also go down (``kb audit archive`` purges
    old rows): compare for inequality, never order."""
    return select(func.max(AuditEvent.seq)).where(AuditEvent.event.in_(ROLE_EVENTS)).scalar_subquery()


def as_row(event: AuditEvent) -> dict[str, object]:
    """JSON-ready fields of one row (the chain fields included, for export)."""
    return {
        "seq": event.seq,
        "at": as_utc(event.at).isoformat(),
        "actor": event.actor,
        "roles": event.roles,
        "source_ip": event.source_ip,
        "channel": event.channel,
        "event": event.event,
        "object": event.object,
        "result": event.result,
        "reason": event.reason,
        "mac": event.mac,
    }


#: CSV columns of an export, in order.
CSV_FIELDS: Sequence[str] = ("seq", "at", "actor", "roles", "source_ip", "channel", "event", "object", "result",
                             "reason", "mac")  # fmt: skip
