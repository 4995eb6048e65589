"""Hand-off of index work from request threads to the one background applier of a process.

While a server runs its background applier (:meth:`kb.service.KnowledgeBase.start_background_applier`), a write's
request thread does no index work: it commits the article with its outbox row, asks the applier for a round
(:meth:`Handoff.request`) and waits at most ``wait_s`` seconds for its ``seq`` to be applied
(:meth:`Handoff.await_seq`). The applier takes every pending outbox row in one batch per round (one encode call,
one BM25 commit, one vector save), so N concurrent writes cost a few index commits, not N, and the request threads
neither queue on the index writer's lock nor run whoosh and the encoder on the threads that also serve searches.
A write whose seq is applied in time answers 201 and is searchable at once (read-your-writes); one that is not
answers 202 with its seq, and the applier applies it in a later round (the outbox row is committed, so a crash
loses nothing: the next start replays it).

With the applier in a process of its own (``kb serve`` with ``KB_INDEX_APPLIER=process``, :mod:`kb.search.applier`),
the serving process only follows the index the applier writes: :meth:`Handoff.start_remote` makes a write wait
until this process's copy of the live generation has followed its seq (the serving process's follow round runs
every :data:`FOLLOW_POLL_S` while a write waits, :meth:`Handoff.wait_for_work`), and the applier process notices the
new outbox row by its own poll (:data:`kb.search.applier.OUTBOX_POLL_S`). The 201/202 semantics stay the same.

Why a bound: measured with ``bench/concurrent_writes.py`` (40 writers posting real 6 KB articles, 8 readers, 2
cores), a batch of 40 articles took 1.2 s of CPU with the ``hash`` model, so waiting for the index without a bound
made writes wait 5-7 s; see ``bench/results/concurrent-writes.md``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar

#: When the current request arrived (``time.monotonic()``), set by :class:`kb.api.admission.WriteAdmission` for
#: article writes: a write's wait for the index ends ``wait_s`` after its arrival, not after its commit, so that time
#: spent queueing, parsing and storing comes out of the same budget and the answer stays within about ``wait_s``.
ARRIVED: ContextVar[float | None] = ContextVar("kb_write_arrived", default=None)

#: How often a serving process whose writes are applied by another process looks for the applier's new state
#: (one ``stat`` of the manifest) while a write waits, seconds; without waiting writes it follows at its poll.
FOLLOW_POLL_S = 0.01


class Handoff:
    """The rendezvous of request threads and the background applier of one process. Thread-safe.

    Inactive until :meth:`start`: then :meth:`await_seq` is what a write calls instead of applying itself.
    """

    def __init__(self) -> None:
        self._applied = threading.Condition()
        self._work = threading.Event()
        self._wait_s: float | None = None
        self._stopped = False
        self._remote = False
        self._waiting = 0  # writes in await_seq now
        self._late: list[int] = []  # seqs of writes answered before they were applied (202), until applied

    @property
    def wait_s(self) -> float | None:
        """How long a write waits for its change to be applied, seconds; None while no applier runs."""
        return self._wait_s

    @property
    def remote(self) -> bool:
        """Whether another process applies this process's writes (:meth:`start_remote`)."""
        return self._remote

    def start(self, wait_s: float) -> None:
        """A background applier runs from now on; writes wait at most ``wait_s`` seconds for it."""
        self._wait_s, self._stopped = wait_s, False

    def start_remote(self, wait_s: float) -> None:
        """Another process (the applier process, :mod:`kb.search.applier`) applies the outbox from now on: this
        process never applies, its background round only follows the shared index, and its writes wait at most
        ``wait_s`` seconds for it to have followed their seq."""
        self._remote = True
        self.start(wait_s)

    def stop(self) -> None:
        """No applier runs any more (writes apply themselves again); wakes the applier so it can end."""
        self._wait_s, self._stopped, self._remote = None, True, False
        self._work.set()
        self.published()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called (the process is closing): an apply in progress ends after its batch."""
        return self._stopped

    def request(self) -> None:
        """Ask the applier for a round (a change was committed)."""
        self._work.set()

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block the applier until a round is requested or ``timeout_s`` seconds pass (the poll that catches rows
        written by other processes); True when requested. Requests made during the round that follows are kept.
        In a process whose writes another process applies (:attr:`remote`), at most :data:`FOLLOW_POLL_S` while a
        write waits or a write answered 202 is not followed yet, so that it sees its seq applied within that time
        even when no search comes to follow it (:attr:`kb.search.index.IndexManager.generation`)."""
        if self._remote and (self._waiting or self._late):
            timeout_s = min(timeout_s, FOLLOW_POLL_S)
        requested = self._work.wait(timeout_s)
        self._work.clear()
        return requested

    def published(self) -> None:
        """Wake the writes waiting in :meth:`await_seq` (the applier recorded a new ``last_seq``)."""
        with self._applied:
            self._applied.notify_all()

    def await_seq(self, seq: int, applied: Callable[[], int]) -> int:
        """Request a round and wait until ``applied()`` (the live generation's ``last_seq``) reaches ``seq``, at
        most :attr:`wait_s` seconds after the request arrived (:data:`ARRIVED`; else from now); returns the last
        ``applied()`` seen (below ``seq`` on a timeout)."""
        wait_s = self._wait_s or 0.0
        arrived = ARRIVED.get()
        deadline = (time.monotonic() if arrived is None else arrived) + wait_s
        with self._applied:
            self._waiting += 1
        self.request()
        try:
            with self._applied:
                while (done := applied()) < seq:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._wait_s is None:
                        break
                    self._applied.wait(left)
        finally:
            with self._applied:
                self._waiting -= 1
                if done < seq:
                    self._late.append(seq)
        return done

    def late(self, applied: int) -> int:
        """How many writes of this process were answered before their seq was applied (202) and are still not
        applied at ``applied`` (the live generation's ``last_seq`` here): the backlog they left the applier, which
        :class:`kb.api.admission.WriteAdmission` counts with the writes in flight."""
        with self._applied:
            if self._late:
                self._late = [seq for seq in self._late if seq > applied]
            return len(self._late)
