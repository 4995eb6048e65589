"""The manifest of an index generation, the ``CURRENT`` pointer file, and generation folder names.

Each generation folder (``gen-000001``, ...) carries a ``manifest.json``: the format version, the embedding model,
its dimension, the analyzer and chunking settings the index was built with, and the last outbox ``seq`` applied.
Opening an index compares the manifest with what the settings give now (:meth:`Manifest.check`) and refuses a
mismatch with a message that names ``kb index rebuild``. ``CURRENT`` holds the name of the live generation; both
files are replaced atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kb.errors import IndexMismatchError, IndexUnavailableError
from kb.models import utcnow

FORMAT_VERSION = 1
REBUILD_HINT = "Run `kb index rebuild` to build a new index with the current settings."
MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT"
GENERATION_PREFIX = "gen-"

#: Manifest fields that must equal the current settings' for an index to be opened.
CHECKED_FIELDS = ("format_version", "model", "dimension", "normalized", "query_instruction", "analyzer", "chunking")


@dataclass
class Manifest:
    """What a saved index generation was built with, and how far it has applied the outbox.

    ``chunking`` holds ``max_tokens`` and ``overlap_tokens`` (model tokens); ``analyzer`` is
    :meth:`kb.search.text.TextAnalyzer.fingerprint`; ``last_seq`` the last outbox row applied (0: none);
    timestamps are ISO 8601 UTC.
    """

    format_version: int
    generation: int
    model: str
    dimension: int
    normalized: bool
    query_instruction: str
    analyzer: dict[str, Any]
    chunking: dict[str, int]
    last_seq: int = 0
    created_at: str = field(default_factory=lambda: utcnow().isoformat())
    updated_at: str = field(default_factory=lambda: utcnow().isoformat())

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Read ``manifest.json``.

        Raises:
            IndexUnavailableError: missing or unreadable.
        """
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise IndexUnavailableError(f"Cannot read index manifest {path}: {exc}") from exc

    def write(self, path: Path) -> None:
        """Write atomically (temporary file, fsync, rename)."""
        self.updated_at = utcnow().isoformat()
        tmp = path.with_suffix(f".tmp{os.getpid()}")  # never two processes on one temporary file
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(asdict(self), handle, ensure_ascii=False, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def check(self, expected: Manifest, root: Path) -> None:
        """Compare the build settings (:data:`CHECKED_FIELDS`) with ``expected``, those the settings give now.

        Raises:
            IndexMismatchError: a field differs; the message names it and ``kb index rebuild``.
        """
        for key in CHECKED_FIELDS:
            have, want = getattr(self, key), getattr(expected, key)
            if have != want:
                raise IndexMismatchError(
                    f"The index in {root} was built with {key}={have!r} but the settings now give "
                    f"{want!r}. {REBUILD_HINT}"
                )


def generation_name(number: int) -> str:
    """The folder name of generation ``number`` (1, 2, ...): ``gen-000001``."""
    return f"{GENERATION_PREFIX}{number:06d}"


def generation_number(name: str) -> int:
    """Inverse of :func:`generation_name`: ``gen-000007`` -> 7."""
    return int(name.split("-")[1])


def read_current(root: Path) -> str | None:
    """The live generation's folder name from ``root/CURRENT``; None when there is no index yet."""
    current = root / CURRENT_FILE
    if not current.exists():
        return None
    name = current.read_text(encoding="utf-8").strip()
    return name or None


def write_current(root: Path, name: str) -> None:
    """Make ``name`` the live generation: replace ``root/CURRENT`` atomically (temporary file, fsync, rename)."""
    tmp = root / f"{CURRENT_FILE}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, root / CURRENT_FILE)
