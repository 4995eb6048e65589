"""IndexManager: the only writer of the search index; applies the outbox, rebuilds, reports consistency.

Layout of ``index_dir``::

    CURRENT                  name of the live generation, replaced atomically
    writer.lock              held (flock) by the process applying changes or rebuilding
    gen-000001/
        open.lock            held shared (flock) by every process that has this generation open
        manifest.json        format version, model, dimension, analyzer, chunking, last applied seq
        bm25/                whoosh index of chunks
        vectors.faiss        faiss IndexIDMap2(IndexFlatIP) of chunk vectors

Applying an outbox batch: the articles it names are re-chunked (or their stored chunks reused when the
version and model match), new chunks are encoded and stored in the database, then in the BM25 index all old
chunks of each article are deleted and the new ones added in one commit, then the same in the vector index,
which is saved, and finally the manifest records the batch's last ``seq``. Every step is idempotent, so a
crash anywhere is repaired on the next start by replaying from the manifest's ``seq``.

Several processes (the server, ``kb index rebuild``, ``kb import``) share one index folder safely:

- Every write (applying, rebuilding) holds ``writer.lock``. A writer that cannot get it within ``lock_wait_s``
  (a rebuild is running) raises :class:`~kb.errors.IndexUnavailableError`, so a write answers 202 with its seq
  and the background applier catches up later; any other failure while applying is translated to that error too.
- Under the lock, the writer first re-reads ``CURRENT`` and the live manifest: a generation another process
  switched to, or changes it applied, are loaded before anything is applied (so no process writes onto a stale
  in-memory copy). Searches check ``CURRENT`` with one ``stat`` and switch to a new generation without waiting
  for the writer.
- A rebuild keeps the previous generation and deletes older ones only when no process has them open
  (:func:`kb.search.generation.in_use`); a process keeps the generation it switched away from open until its next
  switch, so a search running during a switch finishes on it.

The manifest and ``CURRENT`` files are :mod:`kb.search.manifest`, a generation's folder :mod:`kb.search.generation`,
the documents and chunk rows of an article :mod:`kb.search.documents`, the hand-off of writes to the background
applier :mod:`kb.search.handoff`; tables are read through ``ArticleReader``, ``ChunkStore`` and ``Outbox``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from kb.articles.chunks import ChunkStore
from kb.articles.outbox import Outbox
from kb.articles.reader import ArticleReader
from kb.errors import IndexUnavailableError, KBError
from kb.search.embedders.base import Embedder
from kb.search.generation import Generation
from kb.search.handoff import Handoff
from kb.search.index_status import IndexStatus, measure
from kb.search.indexer import ArticleIndexer
from kb.search.locks import in_use, writer_lock
from kb.search.manifest import (
    CURRENT_FILE,
    FORMAT_VERSION,
    GENERATION_PREFIX,
    Manifest,
    generation_name,
    generation_number,
    read_current,
    write_current,
)
from kb.search.text import TextAnalyzer

logger = logging.getLogger(__name__)


class IndexManager:
    """Owns the live index generation; applies changes and rebuilds. One per process.

    Args:
        index_dir: the index folder (see module docstring); created on first use.
        articles: reads the articles to index.
        chunks: the stored chunks (reused when the article version and model match) and their embeddings.
        outbox: the changes to apply, in order.
        analyzer: the text analyzer (index terms).
        embedder: the embedding model (passage vectors).
        chunk_tokens: target chunk size, model tokens (capped by the model's limit, see :attr:`max_chunk_tokens`).
        overlap_tokens: overlap between the pieces of a split section, model tokens.
        lock_wait_s: how long applying changes waits for ``writer.lock`` (held by a rebuild), seconds.
    """

    def __init__(
        self,
        index_dir: Path,
        articles: ArticleReader,
        chunks: ChunkStore,
        outbox: Outbox,
        analyzer: TextAnalyzer,
        embedder: Embedder,
        *,
        chunk_tokens: int,
        overlap_tokens: int,
        lock_wait_s: float = 2.0,
    ) -> None:
        self.root = index_dir
        self._articles = articles
        self._chunks = chunks
        self._outbox = outbox
        self._analyzer = analyzer
        self._embedder = embedder
        self._chunk_tokens = chunk_tokens
        self._overlap_tokens = overlap_tokens
        self._gen: Generation | None = None
        self._retired: Generation | None = None  # the one switched away from, kept open for running searches
        self._current_stat: tuple[int, int] | None = None  # (inode, mtime ns) of CURRENT when last read
        self._manifest_stat: tuple[int, int] | None = None  # and of the live manifest when last followed
        self._write_lock = threading.RLock()
        self._swap_lock = threading.Lock()
        self._lock_wait_s = lock_wait_s
        self._indexer = ArticleIndexer(articles, chunks, analyzer, embedder, self.max_chunk_tokens, overlap_tokens)
        self.handoff = Handoff()  # started by the server's background applier (kb.search.handoff)

    # -- opening ---------------------------------------------------------------------------------

    def expected_manifest(self, generation: int, last_seq: int = 0) -> Manifest:
        """The manifest an index built now, with these settings, would carry."""
        return Manifest(
            format_version=FORMAT_VERSION,
            generation=generation,
            model=self._embedder.name,
            dimension=self._embedder.dimension,
            normalized=True,
            query_instruction=self._embedder.query_instruction,
            analyzer=self._analyzer.fingerprint(),
            chunking={"max_tokens": self.max_chunk_tokens, "overlap_tokens": self._overlap_tokens},
            last_seq=last_seq,
        )

    @property
    def max_chunk_tokens(self) -> int:
        """Upper bound of a chunk's embedding input, tokens: the setting, capped by the model's limit."""
        return min(self._chunk_tokens, self._embedder.max_seq_length)

    def open(self) -> None:
        """Open the live generation, creating an empty one on first use, then apply pending changes. A generation
        that cannot be read (for example after a crash mid-commit) is rebuilt from the database.

        Raises:
            IndexMismatchError: the saved index was built with other settings (model, dimension, analyzer,
                chunking); the message names ``kb index rebuild``.
        """
        broken = False
        with self._process_lock():  # processes opening an empty folder at once (serve --workers) make one generation
            name = read_current(self.root)
            if name is None:
                self._gen = self._create_generation(1, last_seq=0)
                write_current(self.root, self._gen.path.name)
            else:
                try:
                    self._gen = Generation.load(self.root / name)
                except IndexUnavailableError as exc:
                    logger.error("index generation %s is unreadable (%s); rebuilding from the database", name, exc)
                    broken = True
            self._current_stat = self._stat_current()
        if broken or self._gen is None:
            self.rebuild()
            return
        self._gen.manifest.check(self.expected_manifest(self._gen.manifest.generation), self.root)
        self.apply_pending()

    def open_readonly(self) -> Generation | None:
        """Load the live generation without checking settings or applying anything (for status)."""
        name = read_current(self.root)
        if name is None:
            return None
        gen = Generation.load(self.root / name)
        self._gen = gen
        return gen

    def _create_generation(self, number: int, last_seq: int) -> Generation:
        return Generation.create(self.root / generation_name(number), self.expected_manifest(number, last_seq))

    @property
    def is_open(self) -> bool:
        """Whether a generation is loaded."""
        return self._gen is not None

    @property
    def generation(self) -> Generation:
        """The live generation. A generation switched by another process (``CURRENT``) is followed here; so are
        changes another process saved to the live one (one ``stat`` of its manifest and a non-blocking try of the
        thread lock), in every mode: with ``kb serve --workers N`` a write one worker answered as searchable must be
        found by the next search any other worker serves (read-your-writes across workers; session 11 tried
        leaving remote mode's catch-ups to the background round alone, and its outside tester saw changes missing
        for up to the poll interval, ~2 s, on the other worker).

        Raises:
            IndexUnavailableError: :meth:`open` has not been called.
        """
        if self._gen is None:
            raise IndexUnavailableError("The search index is not open yet.")
        if self._stat_current() != self._current_stat:
            self._follow_current()
        if self._gen.manifest_stat() != self._manifest_stat and self._write_lock.acquire(blocking=False):
            try:  # another process applied changes; if this process is applying, its writer catches up itself
                self._follow_current(reload_stale=True)
            finally:
                self._write_lock.release()
        return self._gen

    def follow(self) -> None:
        """Bring this process's copy up to what other processes wrote to the shared folder (a switched
        generation, applied changes) without applying anything (the background round of ``kb serve``
        workers that do not apply the outbox, and of a server whose applier runs in a process of its own). Costs
        two ``stat`` calls when nothing changed."""
        gen = self._gen
        if gen is None or (self._stat_current() == self._current_stat and gen.manifest_stat() == self._manifest_stat):
            return
        with self._write_lock:
            if self._gen is not None:
                self._follow_current(reload_stale=True)

    def _stat_current(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self.root / CURRENT_FILE)
        except FileNotFoundError:
            return None
        return found.st_ino, found.st_mtime_ns

    def _follow_current(self, *, reload_stale: bool = False) -> None:
        """Switch to the generation ``CURRENT`` names if another process changed it; with ``reload_stale``
        (under ``writer.lock`` only), also reload the live one when another process applied changes to it."""
        with self._swap_lock:
            gen = self._gen
            if gen is None:
                return
            stat = self._stat_current()
            name = read_current(self.root)
            if name is None:
                return
            if name != gen.path.name:
                fresh = Generation.load(self.root / name)
                logger.info("index: switching to %s (last seq %s)", name, fresh.manifest.last_seq)
                self._install(fresh)
            elif reload_stale:
                manifest_stat = gen.manifest_stat()
                followed = gen.catch_up(self._outbox, self._chunks)
                if followed:
                    logger.debug("index: followed %d articles to seq %s", len(followed), gen.manifest.last_seq)
                self._manifest_stat = manifest_stat
            self._current_stat = stat
        self.handoff.published()  # writes waiting for another process's applier (Handoff.start_remote)
        self.handoff.late(self._applied_seq())  # forget the 202s now followed (the round's poll, wait_for_work)

    def _install(self, gen: Generation) -> None:
        """Make ``gen`` live; keep the one it replaces open (running searches), close the one before."""
        if self._retired is not None and self._retired is not gen:
            self._retired.close()
        self._retired, self._gen = self._gen, gen
        self._current_stat = self._stat_current()
        self._manifest_stat = None  # not the stat now: another process may have written after the load; follow

    def close(self) -> None:
        """Close the live generation's files (and the one it replaced)."""
        with self._write_lock:
            for gen in (self._gen, self._retired):
                if gen is not None:
                    gen.close()
            self._gen = self._retired = None

    def _process_lock(self, wait_s: float | None = None) -> contextlib.AbstractContextManager[None]:
        """``writer.lock`` of this folder and this manager's thread lock (:func:`kb.search.locks.writer_lock`)."""
        return writer_lock(self.root, self._write_lock, wait_s)

    # -- applying changes ------------------------------------------------------------------------

    def apply_pending(self, batch_size: int = 256, *, until: int | None = None) -> int:
        """Apply every outbox row after the manifest's ``last_seq``, in order; returns the new ``last_seq``.

        With ``until`` (a write's own seq), return at once when this process has applied it already; while a
        background applier runs (:attr:`handoff` started), only ask it for a round and wait a bounded time for
        ``until`` (:meth:`kb.search.handoff.Handoff.await_seq`): the result is below ``until`` on a timeout.

        Raises:
            IndexUnavailableError: an index write failed, or the index lock was busy for ``lock_wait_s``
                (any non-KBError is translated to it); nothing after the last completed batch is recorded as
                applied, so the next call retries it.
            EmbeddingModelError: the model cannot be loaded.
        """
        if until is not None and self.handoff.wait_s is not None:
            return self.handoff.await_seq(until, self._applied_seq)
        with self._write_lock:
            if until is not None and self._applied_seq() >= until:
                return self._applied_seq()
            return self._apply_locked(batch_size)

    def has_pending(self) -> bool:
        """Whether the outbox holds a row after the ``last_seq`` of this process's copy of the live generation
        (one ``max(seq)`` query; no ``stat``, no lock)."""
        return self._outbox.max_seq() > self._applied_seq()

    def late_writes(self) -> int:
        """Writes of this process answered 202 whose change is not applied here yet (:meth:`Handoff.late
        <kb.search.handoff.Handoff.late>`)."""
        return self.handoff.late(self._applied_seq())

    def _applied_seq(self) -> int:
        gen = self._gen
        return gen.manifest.last_seq if gen is not None else 0

    def _apply_locked(self, batch_size: int) -> int:
        with self._process_lock(self._lock_wait_s):
            try:
                self.generation  # noqa: B018 (raises when not open)
                self._follow_current(reload_stale=True)
                gen = self.generation
                while True:
                    rows = self._outbox.after(gen.manifest.last_seq, batch_size)
                    if not rows or self.handoff.stopped:  # stopping: the rest is replayed at the next start
                        return gen.manifest.last_seq
                    article_ids = list(dict.fromkeys(row.article_id for row in rows))
                    self._indexer.index_articles(gen, article_ids, replace=True)
                    gen.checkpoint(rows[-1].seq)
                    self._manifest_stat = gen.manifest_stat()
                    self.handoff.published()
            except KBError:
                raise
            except Exception as exc:
                raise IndexUnavailableError(f"Applying changes to the index failed: {exc}") from exc

    # -- rebuilding ------------------------------------------------------------------------------

    def rebuild(self, batch_size: int = 200, progress: Callable[[int, int], None] | None = None) -> Manifest:
        """Build a complete new generation from the database beside the live one, then swap atomically.

        Stored embeddings are reused when their article version and model match. Changes written while
        the rebuild runs are applied afterwards from the outbox. ``progress(done, total)`` follows each batch.

        Returns:
            The new generation's manifest.
        """
        with self._process_lock():
            start_seq = self._outbox.max_seq()
            all_ids = self._articles.ids()
            old = self._gen
            current = read_current(self.root)
            number = generation_number(current) + 1 if current else 1
            gen = self._create_generation(number, last_seq=0)
            try:
                for start in range(0, len(all_ids), batch_size):
                    self._indexer.index_articles(gen, all_ids[start : start + batch_size], replace=False)
                    if progress is not None:
                        progress(min(start + batch_size, len(all_ids)), len(all_ids))
                gen.checkpoint(start_seq)
            except BaseException:
                gen.close()
                shutil.rmtree(gen.path, ignore_errors=True)
                raise
            write_current(self.root, gen.path.name)
            with self._swap_lock:
                self._install(gen)
            keep = {gen.path, self.root / current} if current else {gen.path}
            if old is not None:
                keep.add(old.path)
            for stale in self.root.glob(f"{GENERATION_PREFIX}*"):
                if stale not in keep and not in_use(stale):
                    shutil.rmtree(stale, ignore_errors=True)
        self.apply_pending()
        return gen.manifest

    def status(self, full: bool = True) -> IndexStatus:
        """Counts in the database and both legs, and whether they agree (:func:`kb.search.index_status.measure`)."""
        return measure(self.generation, self._articles, self._chunks, self._outbox, full=full)
