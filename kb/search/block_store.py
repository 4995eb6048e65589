"""The analyzer's tokens of text blocks, stored once at index time so that searches do not run jieba for them.

A snippet's marks and the top hit's coverage (:mod:`kb.search.term_tokens`) tokenise only the *blocks* of a chunk
that hold a query term (a block is a run of normalised text between white space and punctuation, and has the same
tokens alone as in the whole text). On a block's first sight in a process that was jieba, about 0.1-0.3 ms a block
and a quarter of a BM25 query seen for the first time (``bench/results/perf-s9.md``). The indexer now tokenises
every block of each chunk it indexes (:func:`chunk_blocks`: the blocks of the chunk's readable form, which snippets
mark, and of its title, headings and text, which coverage reads) and keeps them here, in ``blocks.sqlite3`` of the
index generation; a search reads a block it has not seen yet with one primary-key look-up (a few microseconds).

The store is a cache, keyed by the block's normalised text, so it can never give a wrong answer: a block's tokens
depend only on its text and the analyzer, and a generation's analyzer is fixed by its manifest (a different one
refuses to open, :mod:`kb.search.manifest`). A block that is not stored (a generation built before the store
existed, a title changed since) is tokenised as before. No index format change: an older generation gets an empty
store that fills as articles are indexed again, and ``kb index rebuild`` fills it whole (reusing the stored
embeddings). Several processes share one file (SQLite in WAL mode: the writer adds rows while readers look up).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from kb.errors import IndexUnavailableError
from kb.search.snippets import readable
from kb.search.term_tokens import BlockTokens, text_blocks
from kb.search.text import TextAnalyzer

BLOCKS_FILE = "blocks.sqlite3"

#: Blocks looked up per statement when the indexer checks which of a batch's blocks are stored already (below
#: SQLite's default limit of 999 bound parameters of old builds).
LOOKUP_BATCH = 500

_SCHEMA = "CREATE TABLE IF NOT EXISTS blocks (block TEXT PRIMARY KEY, tokens TEXT NOT NULL) WITHOUT ROWID"


def chunk_blocks(title: str, heading_path: Sequence[str], text: str, analyzer: TextAnalyzer) -> list[str]:
    """The normalised blocks a search may tokenise for a chunk: those of its :func:`~kb.search.snippets.readable`
    form (the snippet) and of its title, headings and text joined as the top hit's coverage joins them
    (:func:`kb.search.confidence.top_confidence`); only blocks with a letter or digit (a query term has one)."""
    plain, _ = readable(text)
    return [*text_blocks(plain, analyzer), *text_blocks(" ".join([title, *heading_path, text]), analyzer)]


def encode_tokens(tokens: BlockTokens) -> str:
    """The stored form of a block's tokens: JSON ``[[term, start, end], ...]`` (offsets into the block)."""
    return json.dumps([list(t) for t in tokens], ensure_ascii=False, separators=(",", ":"))


def decode_tokens(stored: str) -> BlockTokens:
    """The tokens :func:`encode_tokens` stored."""
    return tuple(map(tuple, json.loads(stored)))  # JSON gives the str and the two ints back as they were


class BlockStore:
    """The stored block tokens of one generation (module docstring). Thread-safe (one connection behind a lock).

    Args:
        path: the SQLite file; created with its table when missing.

    Raises:
        IndexUnavailableError: the file cannot be opened or created.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
            # WAL is kept in the file, set by the first process to open it; another process (serve --workers N)
            # setting it at the same moment makes this one fail, harmlessly.
            with contextlib.suppress(sqlite3.OperationalError):
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: a row lost in a power cut is tokenised again
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise IndexUnavailableError(f"Cannot open the block tokens {path}: {exc}") from exc
        self._lock = threading.Lock()

    def __call__(self, blocks: Sequence[str]) -> dict[str, BlockTokens]:
        """The stored tokens of those of ``blocks`` (normalised text) that are stored, in one statement per
        :data:`LOOKUP_BATCH` blocks (none when the store is unreadable just now: the caller tokenises them)."""
        found: dict[str, BlockTokens] = {}
        try:
            with self._lock:
                rows = [row for batch in _batches(blocks) for row in self._db.execute(_select(len(batch)), batch)]
        except sqlite3.Error:
            return found
        for block, stored in rows:
            found[block] = decode_tokens(stored)
        return found

    def add(self, blocks: Iterable[str], analyzer: TextAnalyzer) -> int:
        """Tokenise and store the ``blocks`` (normalised text) not stored yet, in one transaction.

        Returns:
            How many blocks were added.

        Raises:
            IndexUnavailableError: the file cannot be written.
        """
        wanted = list(dict.fromkeys(blocks))
        try:
            with self._lock:
                present = {row[0] for batch in _batches(wanted) for row in self._db.execute(_select(len(batch)), batch)}
                rows = [
                    (b, encode_tokens(tuple((t.text, t.start, t.end) for t in analyzer.tokens(b, remember=False))))
                    for b in wanted
                    if b not in present
                ]
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany("INSERT OR IGNORE INTO blocks (block, tokens) VALUES (?, ?)", rows)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise IndexUnavailableError(f"Cannot write the block tokens {self.path}: {exc}") from exc
        return len(rows)

    def count(self) -> int:
        """Blocks stored."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM blocks").fetchone()[0])

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._db.close()


def _batches(blocks: Sequence[str]) -> list[Sequence[str]]:
    return [blocks[start : start + LOOKUP_BATCH] for start in range(0, len(blocks), LOOKUP_BATCH)]


@functools.lru_cache(maxsize=64)
def _select(n: int) -> str:
    """The statement reading the stored rows of ``n`` blocks."""
    return f"SELECT block, tokens FROM blocks WHERE block IN ({','.join('?' * n)})"
