"""The index folder's file locks (``flock``): ``writer.lock`` for the one writer, each generation's
``open.lock``, held shared by every process that has the generation open, and ``applier.lock``, held for its
life by the one ``kb serve`` worker that runs the background applier (:func:`try_hold_exclusive`).

``flock`` locks belong to the open file: the kernel releases them when the process ends, however it ends
(kill -9 included), so no lock outlives its holder."""

from __future__ import annotations

import contextlib
import fcntl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from kb.errors import IndexUnavailableError

OPEN_LOCK = "open.lock"


@contextlib.contextmanager
def writer_lock(root: Path, thread_lock: threading.RLock, wait_s: float | None = None) -> Iterator[None]:
    """``root/writer.lock`` held exclusively (flock) and ``thread_lock`` held: one writer across the processes
    sharing an index folder (server and CLI) and across threads; waits at most ``wait_s`` seconds (None: as
    long as it takes).

    Raises:
        IndexUnavailableError: not acquired within ``wait_s`` (another process is rebuilding).
    """
    root.mkdir(parents=True, exist_ok=True)
    with thread_lock, open(root / "writer.lock", "a+") as handle:
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise IndexUnavailableError(
                        f"The index is busy (another process, e.g. `kb index rebuild`, holds its lock for more "
                        f"than {wait_s:g} s); the change is saved and will be applied when it is done."
                    ) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def hold(path: Path) -> IO[str]:
    """Hold the shared lock on ``path/open.lock`` (the generation in ``path`` is open) until the handle closes."""
    handle = open(path / OPEN_LOCK, "a+")  # noqa: SIM115 (held until the generation is closed)
    fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
    return handle


def try_hold_exclusive(path: Path) -> IO[str] | None:
    """The exclusive lock on the file ``path`` if no other process holds it, kept until the handle closes (or the
    process ends); None when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 (held until closed)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def in_use(path: Path) -> bool:
    """Whether any process has the generation in ``path`` open (holds the shared lock on its ``open.lock``)."""
    try:
        handle = open(path / OPEN_LOCK, "a+")  # noqa: SIM115
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False
