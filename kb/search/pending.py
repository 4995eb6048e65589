"""The version of search's caches for one search: the index's own, or an overlay of it while the database holds
changes the index has not applied yet.

Search's caches (:mod:`kb.search.article_cache`: summaries, passages, which articles a class of callers may see)
are valid for one index version: every change of an article reaches search through the outbox, and the index
version changes when the change is applied. Until then (a write answered 202: a rebuild in another process holds
the index writer, or the applier is behind) a cached row is the article's previous state. Session 11's outside
tester saw a deleted article stay in search results for ~6 s during a rebuild (L5); the same lag let an article
just restricted to one group reach everyone else's results and query terms.

So a search first reads the outbox rows after the seq its index generation has applied (one range read of the
outbox's primary key, which finds nothing when the index is caught up) and, when there are some, searches under an
overlay (:func:`kb.search.lineage.overlay`) of the index version with those rows' articles: the caches read those
articles again from the database. A deleted article then has no summary and is no result; a restricted one is
filtered with its new visibility, and its words count only for callers who may see it. The index itself still holds
their previous text until it catches up: an article the caller may still see can match on, and show, its previous
words (the documented 202 contract). One overlay per (index version, newest pending seq): the searches of one state
share their rows, and a search that finds a state it has seen reads one ``max(seq)`` and no rows. With a standby
(``KB_DATABASE_READ_URL``), the rows of a new overlay's articles are read on the primary until the standby has
replayed them (:meth:`kb.db.Database.expect_changes`).

Not one statement per search: a statement releases the GIL, and each release costs a search in a busy process a
wait for it (8 threads of ~2.3 ms of Python each lost 3-5 % of their throughput to one ``PRAGMA`` each). The last
answer holds while this process committed no outbox row (:attr:`kb.db.Database.outbox_commits`, counted at each
commit: its own changes are seen by the next search) and its index applied nothing, for at most
:data:`RECHECK_S`: another process's change is seen at most 20 ms after its commit, while its writer still waits
for the index (a write is answered after at most ``index_wait_seconds``, 0.6 s, when not applied), so a caller
cannot tell this window from a search that started just before the commit.

The applied seq is read before the index version (the manifest's seq is advanced after the index commit it names,
:meth:`kb.search.index.IndexManager`), so every change the version searched lacks is among the rows read.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from sqlalchemy import bindparam, func, select

from kb.db import Database
from kb.models import OutboxEntry
from kb.search import lineage
from kb.search.generation import Legs

#: Overlays remembered per (index version, newest pending seq).
MAX_OVERLAYS = 64
#: Longest time a search answers from the last outbox read while this process committed no outbox row and its index
#: applied nothing, seconds: how late a search may see another process's change (module docstring).
RECHECK_S = 0.02

#: The newest outbox seq after a seq, NULL when there is none (statement objects built once: SQLAlchemy's compiled
#: cache serves every search), and the rows after a seq (read only for a newest seq not seen yet).
_NEWEST = select(func.max(OutboxEntry.seq)).where(OutboxEntry.seq > bindparam("seq"))
_PENDING = select(OutboxEntry.article_id).where(
    OutboxEntry.seq > bindparam("seq"), OutboxEntry.seq <= bindparam("last")
)


class PendingChanges:
    """Gives each search the version of the caches to read (module docstring). Thread-safe.

    Args:
        database: where the outbox is (read on the primary: the source of truth; one Core statement on a pooled
            connection, 37 us a search on SQLite against 76 us through an ORM session).
        recheck_s: longest time, seconds, the last answer holds while nothing here changed (:data:`RECHECK_S`).
    """

    def __init__(self, database: Database, recheck_s: float = RECHECK_S) -> None:
        self._database = database
        self._recheck_s = recheck_s
        self._lock = threading.Lock()
        self._overlays: OrderedDict[tuple[int, int], int] = OrderedDict()
        self._state: tuple[int, int, int] | None = None  # (applied seq, index version, outbox commits) last read
        self._answer = 0
        self._read_at = 0.0

    def version(self, legs: Legs) -> int:
        """``legs.bm25.version`` when the database holds no change after ``legs.manifest.last_seq``; otherwise the
        overlay of that version with the changed articles (the same one for the same newest seq)."""
        applied = legs.manifest.last_seq  # first: the version read next holds every change up to it
        index_version = legs.bm25.version
        state = (applied, index_version, self._database.outbox_commits)  # before the read: a later commit differs
        now = time.monotonic()
        with self._lock:
            if state == self._state and now - self._read_at < self._recheck_s:
                return self._answer
        answer = self._read(applied, index_version)
        with self._lock:
            self._state, self._answer, self._read_at = state, answer, now
        return answer

    def _read(self, applied: int, index_version: int) -> int:
        with self._database.engine.connect() as connection:  # the primary's outbox; no ORM session (37 us)
            newest = connection.execute(_NEWEST, {"seq": applied}).scalar()
            if newest is None:
                return index_version
            key = (index_version, int(newest))
            with self._lock:
                found = self._overlays.get(key)
            if found is not None:
                return found
            changed = frozenset(connection.scalars(_PENDING, {"seq": applied, "last": newest}))
        self._database.expect_changes()  # their rows are read next: not from a standby that has not replayed them
        with self._lock:
            found = self._overlays.get(key)
            if found is None:
                found = self._overlays[key] = lineage.overlay(index_version, changed)
                while len(self._overlays) > MAX_OVERLAYS:
                    self._overlays.popitem(last=False)
            return found
