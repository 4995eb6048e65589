"""The index applier in a process of its own (``KB_INDEX_APPLIER=process``, the default of ``kb serve``).

Why: in one interpreter the applier's index work (chunking, whoosh, the encoder; about 30 ms of interpreter time
per real article with ``hash``) holds the same GIL as the searches, so 40 writers made searches 7x slower
(bench/results/concurrent-writes.md, session 6). In a process of its own, at a lower CPU priority
(``KB_INDEX_APPLIER_NICE``, :func:`os.nice`), it uses the second core and yields to the server.

- The child, ``python -m kb.cli.applier``, builds a :class:`~kb.service.KnowledgeBase` from the same ``KB_*``
  environment and runs its background jobs (:meth:`~kb.service.KnowledgeBase.start_background_applier`: it takes
  ``applier.lock`` and applies the outbox; the SLA clock and idle accounts run there too). It notices new outbox rows
  by polling ``max(seq)`` every :data:`OUTBOX_POLL_S` (one indexed query; any process may have written them),
  skips that query while the SQLite files are unchanged (:class:`FileChangeHint`),
  says ``ready`` on its stdout once its knowledge base is open, and ends when its stdin closes (the server ended,
  however: kill -9 included) or on SIGTERM, after the batch in progress.
- The serving processes never apply (:meth:`kb.search.handoff.Handoff.start_remote`): a write commits its article and
  outbox row and waits at most ``index_wait_seconds`` until this process has followed the applier's new state (one
  ``stat`` of the manifest every 10 ms while a write waits, then :meth:`kb.search.generation.Generation.catch_up`:
  the stored embeddings and the BM25 leg's latest commit, no re-encoding): 201 when searchable, else 202 with the
  seq, as before.
- :class:`ApplierProcess` (in the ``kb serve`` parent) starts the child, waits for its ``ready``, restarts it when
  it dies and stops it when the server stops.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO

from sqlalchemy.engine import URL

from kb.config import Settings
from kb.errors import IndexUnavailableError
from kb.runtime import freeze_after_warmup
from kb.service import KnowledgeBase

logger = logging.getLogger(__name__)

#: How often the applier process looks for new outbox rows, seconds (a write waits about half of it on average).
OUTBOX_POLL_S = 0.02
#: Longest time between two outbox queries of the applier process whatever :class:`FileChangeHint` says, seconds.
FULL_POLL_S = 1.0
#: How long ``kb serve`` waits for a starting applier process to say ``ready``, seconds (it loads the model).
READY_TIMEOUT_S = 300.0
#: Pause before a dead applier process is started again, seconds.
RESTART_DELAY_S = 1.0


def run_child(settings: Settings, stdin: IO[str], stdout: IO[str]) -> int:
    """The applier process (module docstring): open, say ``ready``, apply until ``stdin`` closes or SIGTERM.

    Returns:
        The exit status (0).
    """
    if settings.index_applier_nice:
        os.nice(settings.index_applier_nice)
    stop = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    def watch_parent() -> None:
        stdin.read()  # returns at EOF: the server closed the pipe or ended
        stop.set()

    threading.Thread(target=watch_parent, name="kb-applier-parent", daemon=True).start()
    kb = KnowledgeBase(settings).open()
    freeze_after_warmup(settings.gc_freeze)
    try:
        serve_applier(kb, stop, lambda: print("ready", file=stdout, flush=True))
    finally:
        kb.close()
    return 0


def serve_applier(kb: KnowledgeBase, stop: threading.Event, ready: Callable[[], None] = lambda: None) -> None:
    """Run ``kb``'s background jobs (it applies the outbox when it holds ``applier.lock``, else follows) and ask
    for a round whenever the outbox holds rows it has not applied (polled every :data:`OUTBOX_POLL_S`), until
    ``stop`` is set; ``ready()`` once the jobs run. The caller opens and closes ``kb``."""
    kb.start_background_applier()
    ready()
    hint = FileChangeHint(sqlite_files(kb.database.engine.url))
    while not stop.wait(OUTBOX_POLL_S):
        if not hint.changed():
            continue
        try:
            if kb.index.has_pending():
                kb.index.handoff.request()  # the applier's round (or, if another process applies, a follow)
        except Exception:  # keep polling; the applier's own round logs index failures
            logger.exception("kb-applier: outbox poll failed")


def sqlite_files(url: URL) -> list[Path]:
    """The files a commit to the SQLite database of ``url`` writes (the database and its ``-wal``); empty for
    any other database (and for an in-memory one)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return []
    path = Path(url.database)
    return [path, path.with_name(path.name + "-wal")]


class FileChangeHint:
    """Whether the outbox may have new rows since the last look, from ``(mtime_ns, size)`` of ``files``: a SQLite
    commit writes its ``-wal`` (or, after a checkpoint, the database file), so while neither changed the
    ``max(seq)`` query can be skipped (two ``stat`` calls, microseconds, against a session and a query: the idle
    applier process took 3-4 % of a core, ``bench/results/concurrent-writes.md``). Only a hint: True at least
    every :data:`FULL_POLL_S` whatever the files say, and always when ``files`` is empty (PostgreSQL)."""

    def __init__(self, files: list[Path]) -> None:
        self._files = files
        self._seen: tuple[tuple[int, int], ...] | None = None
        self._last_full = 0.0

    def changed(self) -> bool:
        """True when the files changed since the last call, or :data:`FULL_POLL_S` passed since the last True."""
        now = time.monotonic()
        if not self._files:
            return True
        signature = tuple(_stat(path) for path in self._files)
        if signature != self._seen or now - self._last_full >= FULL_POLL_S:
            self._seen, self._last_full = signature, now
            return True
        return False


def _stat(path: Path) -> tuple[int, int]:
    try:
        found = os.stat(path)
    except OSError:
        return (-1, -1)
    return (found.st_mtime_ns, found.st_size)


class ApplierProcess:
    """Starts and supervises the applier child of ``kb serve`` (module docstring). Thread-safe.

    Args:
        env: the child's environment (default this process's: the same ``KB_*`` settings).
    """

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._env = env
        self._process: subprocess.Popen[str] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The running child's process id, None when none runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start the child and wait until it is ready, then supervise it (restart after :data:`RESTART_DELAY_S`).

        Raises:
            IndexUnavailableError: the child ended or stayed silent for ``ready_timeout_s`` seconds (its stderr is
                the server's, so the reason is in the server's log).
        """
        self._spawn(ready_timeout_s)
        self._watcher = threading.Thread(target=self._supervise, name="kb-applier-supervisor", daemon=True)
        self._watcher.start()

    def _spawn(self, ready_timeout_s: float) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "kb.cli.applier"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self._env,
            text=True,
        )
        with self._lock:
            self._process = process
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(process.stdout.readline() if process.stdout else ""))
        reader.start()
        reader.join(ready_timeout_s)
        if not line or line[0].strip() != "ready":
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
            raise IndexUnavailableError(
                f"The index applier process did not start (exit status {process.returncode}); its error is in the "
                "log above. KB_INDEX_APPLIER=thread applies the index inside the server instead."
            )
        logger.info("index applier process %d ready", process.pid)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                return
            status = process.wait()
            if self._stopping.is_set():
                return
            logger.error("index applier process %d ended (status %s); starting another", process.pid, status)
            time.sleep(RESTART_DELAY_S)
            try:
                self._spawn(READY_TIMEOUT_S)
            except IndexUnavailableError:
                logger.exception("index applier process: restart failed; trying again")

    def stop(self, timeout_s: float = 30.0) -> None:
        """End the child (close its stdin: it finishes its batch and closes); kill it after ``timeout_s`` seconds."""
        self._stopping.set()
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def main() -> int:
    """``python -m kb.cli.applier``: the applier process, settings from the ``KB_*`` environment."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s[applier]: %(message)s")
    return run_child(Settings(), sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
