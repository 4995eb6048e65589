"""Audit rows of refused credentials, bounded: a forged, ended, expired or revoked session or service token.

Every refusal is a security event (GB/T 22239-2019 7.1.4.3 a) and the audit trail keeps its rows at least 184 days
(:data:`kb.identity.audit.RETENTION_DAYS`), but a refusal costs an anonymous caller nothing: session 9's outside
tester wrote one permanent row per request with random Bearer tokens, with no limit (trail flooding). So refusals
are aggregated per source and window:

- The first refusal of a kind (event, actor, reason) from one source IP is written at once, in the transaction of
  the refusal, as before: who, from where, when and why are on record the moment it happens.
- Further refusals of that kind from that IP within :data:`WINDOW` of the first are counted, not written. When the
  window has passed, one more row says how many there were and between which times (``unknown or ended token:
  49 more from this address between ... and ...``), written with the next refusal of any kind, or by
  :meth:`RefusedCredentials.flush` (a background job of the server, every :data:`WINDOW`, and at close).
- At most :data:`MAX_OPEN` windows are open at once (memory and rows are bounded however many addresses an
  attacker has); refusals of a kind beyond them share one window for all other addresses.

So a steady flood from one address writes two rows a minute instead of one per request, and no refusal goes
unrecorded: each is either a row or counted in one. What is lost: the count of windows still open when the process
is killed without closing (at most a minute of refusals, whose first row is written). Chosen over a plain rate
limit on the rows (which would drop the events past the limit, 7.1.4.3) and over a counter table (a write per
refusal again). Successful logins, login failures (rate-limited per IP already, :mod:`kb.identity.ratelimit`) and
authorisation denials (which need a live account) are written one row each as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from kb.identity.audit import FAILURE, AuditContext, AuditTrail
from kb.models import utcnow

#: How long refusals of one kind from one address are counted into one row after the first is written.
WINDOW = timedelta(minutes=1)
#: Most windows open at once (one per kind and address; about 200 bytes each in memory).
MAX_OPEN = 1000
#: The source shown for the window shared by every address beyond :data:`MAX_OPEN`.
OTHER_SOURCES = "other addresses"


@dataclass
class _Window:
    """Refusals of one kind from one source since ``started``: the first was written, ``more`` were counted."""

    context: AuditContext
    event: str
    object: str
    reason: str
    started: datetime
    last: datetime
    more: int = 0
    shared: bool = False


class RefusedCredentials:
    """Writes the audit rows of refused credentials, at most two per kind, source and window (module docstring).

    Args:
        audit: the audit trail.
        window: how long further refusals are counted after a written one (default :data:`WINDOW`).
        max_open: most windows open at once (default :data:`MAX_OPEN`).
        clock: the time now, UTC (tests pass their own).
    """

    def __init__(
        self,
        audit: AuditTrail,
        *,
        window: timedelta = WINDOW,
        max_open: int = MAX_OPEN,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.audit = audit
        self.window = window
        self.max_open = max_open
        self._clock = clock
        self._open: dict[tuple[str, str, str, str], _Window] = {}
        self._lock = threading.Lock()

    def record(self, session: Session, context: AuditContext, event: str, object: str, reason: str) -> None:
        """Record one refusal in ``session`` (the refusal's own transaction): a ``failure`` row for the first of its
        kind and source in a window, else a count; plus the summary rows of windows that have passed."""
        now = self._clock()
        with self._lock:
            due = self._take_due(now)
            key = (event, context.actor, reason, context.ip or "")
            window = self._open.get(key)
            shared = False
            if window is None and len(self._open) >= self.max_open:
                key, shared = (event, "", reason, OTHER_SOURCES), True
                window = self._open.get(key)
            if window is not None:
                window.more += 1
                window.last = now
            else:
                self._open[key] = _Window(context, event, object, reason, now, now, shared=shared)
        for ended in due:
            self._summary(session, ended)
        if window is None:
            self.audit.record(session, context, event, object, FAILURE, reason)

    def flush(self, *, everything: bool = False, now: datetime | None = None) -> int:
        """Write, in a transaction of their own, the summary rows of the windows that have passed (``everything``:
        of every open window, at close); returns how many rows were written."""
        with self._lock:
            due = self._take_due(now or self._clock(), everything=everything)
        due = [w for w in due if w.more]
        if due:
            with self.audit.database.session() as session:
                for ended in due:
                    self._summary(session, ended)
        return len(due)

    def _take_due(self, now: datetime, *, everything: bool = False) -> list[_Window]:
        """Remove and return the windows that have passed (caller holds the lock)."""
        due = [k for k, w in self._open.items() if everything or w.started + self.window <= now]
        return [self._open.pop(k) for k in due]

    def _summary(self, session: Session, window: _Window) -> None:
        if not window.more:
            return
        source = f"from {OTHER_SOURCES} than the {self.max_open} counted" if window.shared else "from this address"
        span = f"between {window.started.isoformat(timespec='seconds')} and {window.last.isoformat(timespec='seconds')}"
        reason = f"{window.reason}: {window.more} more {source} {span}"
        self.audit.record(session, window.context, window.event, window.object, FAILURE, reason)
