"""Progress bars of long commands (tqdm, on stderr): off with ``--json`` or when stderr is not a terminal.

``kb import`` shows two bars: the files read into the database (from the importer's ``progress`` callback), then
the outbox rows applied to the index (encoding and indexing, read from the index lag every
:data:`POLL_SECONDS` while the import applies them). ``kb index rebuild`` shows one bar of the articles indexed
into the new generation (from the rebuild's ``progress`` callback, after each batch).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

#: Seconds between two reads of the index lag while indexing.
POLL_SECONDS = 0.5


def bars_enabled(json_output: bool, stream: TextIO | None = None) -> bool:
    """Whether to draw bars: not for ``--json`` and only on a terminal (``stream``, default stderr)."""
    stream = stream if stream is not None else sys.stderr
    return not json_output and bool(getattr(stream, "isatty", lambda: False)())


class ImportProgress:
    """The bars of one ``kb import``.

    Args:
        pending: the number of outbox rows not yet applied to the index (the index lag), read while indexing.
        enabled: draw the bars (see :func:`bars_enabled`); when False every method does nothing.
    """

    def __init__(self, pending: Callable[[], int], enabled: bool) -> None:
        self._pending = pending
        self.enabled = enabled
        self._files: tqdm[None] | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def file_done(self, done: int, total: int, path: Path) -> None:
        """The importer's ``progress`` callback: ``done`` of ``total`` files read, the last one ``path``.
        After the last file, the indexing bar starts."""
        if not self.enabled:
            return
        if self._files is None:
            self._files = tqdm(total=total, desc="files", unit="file", file=sys.stderr, leave=True)
        self._files.set_postfix_str(path.name[-40:], refresh=False)
        self._files.update(done - self._files.n)
        if done >= total:
            self._files.close()
            self._start_indexing()

    def _start_indexing(self) -> None:
        total = self._pending()
        if total <= 0:
            return

        def poll() -> None:
            with tqdm(total=total, desc="index", unit="change", file=sys.stderr, leave=True) as bar:
                while True:
                    stopping = self._stop.wait(POLL_SECONDS)
                    bar.update(max(0, total - self._pending()) - bar.n)
                    if stopping:
                        break

        self._poller = threading.Thread(target=poll, name="kb-import-progress", daemon=True)
        self._poller.start()

    def close(self) -> None:
        """Finish the bars (the import has returned)."""
        if self._files is not None and not self._files.disable:
            self._files.close()
        self._stop.set()
        if self._poller is not None:
            self._poller.join()


@contextmanager
def import_progress(pending: Callable[[], int], enabled: bool) -> Iterator[ImportProgress]:
    """An :class:`ImportProgress` closed on exit, also when the import fails."""
    progress = ImportProgress(pending, enabled)
    try:
        yield progress
    finally:
        progress.close()


@contextmanager
def rebuild_progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """The ``progress(done, total)`` callback of :meth:`kb.search.index.IndexManager.rebuild` drawing an
    ``articles`` bar on stderr, closed on exit (also when the rebuild fails); None when not ``enabled``."""
    if not enabled:
        yield None
        return
    bar: tqdm[None] | None = None

    def step(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="articles", unit="article", file=sys.stderr, leave=True)
        bar.update(done - bar.n)

    try:
        yield step
    finally:
        if bar is not None:
            bar.close()
