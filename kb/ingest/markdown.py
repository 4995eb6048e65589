"""Import folders of Markdown files, whatever front-matter dialect they carry (see :mod:`kb.articles.content`).

Each file becomes one article identified by its collection (the import root's folder name, or a name
given) and its path relative to that root, so re-importing finds the same article: an unchanged file
changes nothing, a changed one makes a new version. Section index pages that hold nothing but a Hugo
``{{% children %}}`` listing are skipped. A file that cannot be read (invalid UTF-8, malformed front
matter, no title) is reported with its path and skipped; the rest imports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kb.articles.content import ArticleContent, parse_markdown
from kb.articles.reviews import parse_review
from kb.articles.store import ArticleStore
from kb.errors import ArticleFormatError, InvalidInputError, PayloadTooLargeError

logger = logging.getLogger(__name__)

MARKDOWN_SUFFIXES = (".md", ".markdown")

#: Files written to the database between two index applies of an import (``on_batch``): each apply then costs one
#: whoosh commit, one vector-file save and one encode call for the whole batch. Measured on the 100k-chunk bench
#: corpus (``bench/corpus_100k.py``, ~5.6 chunks per file, from its 51k-chunk snapshot to 64k, hash512, three
#: processes side by side): 512 and 1024 files per apply took the same CPU time (26.5 / 26.2 s for 12,762 chunks),
#: 1024 peaked 107 MiB higher (793 against 686 MiB); kb before session 6 (256 files per apply, vectors removed
#: article by article) took 28.4 s for 9,895 chunks, 38% more per chunk.
IMPORT_BATCH_FILES = 512


@dataclass
class ImportReport:
    """What an import did: counts per outcome, skipped files with reasons, ids of retired articles."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: list[int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    last_seq: int | None = None

    @property
    def total(self) -> int:
        """Files that became or matched an article."""
        return self.created + self.updated + self.unchanged

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "retired": self.retired,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "errors": [{"path": p, "error": e} for p, e in self.errors],
        }


def iter_markdown_files(root: Path) -> Iterator[Path]:
    """Markdown files under ``root`` (or ``root`` itself), sorted, skipping hidden folders."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if (
            path.is_file()
            and path.suffix.lower() in MARKDOWN_SUFFIXES
            and not any(part.startswith(".") for part in rel.parts)
        ):
            yield path


def read_article_file(path: Path, *, as_review: bool = False) -> ArticleContent | None:
    """Parse one file (as a post-incident review with ``as_review``, see :mod:`kb.articles.reviews`); None when it is a
    listing-only section index with no text of its own.

    Raises:
        ArticleFormatError: invalid UTF-8, malformed front matter, no title, bad field values.
        PayloadTooLargeError: the body is too long.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ArticleFormatError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    fallback_title = path.stem.replace("-", " ").replace("_", " ")
    if as_review:
        content = parse_review(text, fallback_title=fallback_title).content
    else:
        content = parse_markdown(text, fallback_title=fallback_title)
    if not _has_own_text(content):
        return None
    return content


def _has_own_text(content: ArticleContent) -> bool:
    lines = [line for line in content.body.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return bool(lines)


def import_paths(
    store: ArticleStore,
    paths: list[Path],
    actor: str,
    *,
    collection: str | None = None,
    delete_missing: bool = False,
    as_reviews: bool = False,
    progress: Callable[[int, int, Path], None] | None = None,
    on_batch: Callable[[], object] | None = None,
    batch_files: int = IMPORT_BATCH_FILES,
) -> ImportReport:
    """Import every Markdown file under each of ``paths``, streaming: ``on_batch()`` (the index apply) runs after
    every ``batch_files`` written files and once at the end, so an import of any size holds one batch in memory.

    Each file is committed with its outbox row (:meth:`kb.articles.store.ArticleStore.upsert_imported`), so an
    import killed anywhere loses no file it had written: the next open of the index applies the rows not applied
    yet, and the index never holds what the database does not.

    Args:
        store: where articles are written.
        paths: folders (each an import root) or single files.
        actor: who is importing (recorded on every version).
        collection: collection name; default each root's folder name.
        delete_missing: retire articles of the collection whose file no longer exists under the root.
        as_reviews: read every file as a post-incident review (kind ``post_incident_review``, see
            :mod:`kb.articles.reviews`; one missing template sections becomes a draft).
        progress: called as ``progress(done, total, path)`` after each file.
        on_batch: called after every ``batch_files`` files that changed an article, and after the last file.
        batch_files: files per batch, at least 1.

    Raises:
        InvalidInputError: a path does not exist.
    """
    report = ImportReport()
    written = 0
    for root in paths:
        root = root.resolve()
        if not root.exists():
            raise InvalidInputError(f"Nothing to import at {root}: no such file or folder.")
        base = root.parent if root.is_file() else root
        name = collection or base.name
        files = list(iter_markdown_files(root))
        present: set[str] = set()
        for done, path in enumerate(files, start=1):
            rel = path.relative_to(base).as_posix()
            try:
                content = read_article_file(path, as_review=as_reviews)
            except (ArticleFormatError, PayloadTooLargeError) as exc:
                logger.warning("skipped %s: %s", path, exc.message)
                report.errors.append((str(path), exc.message))
                present.add(rel)  # a broken file is not a deleted one
                continue
            if content is None:
                report.skipped.append((str(path), "section index without text of its own"))
                continue
            present.add(rel)
            outcome, result = store.upsert_imported(name, rel, content, actor)
            setattr(report, outcome, getattr(report, outcome) + 1)
            if result.seq is not None:
                report.last_seq = result.seq
                written += 1
                if on_batch is not None and written % max(1, batch_files) == 0:
                    on_batch()
            if progress:
                progress(done, len(files), path)
        if delete_missing and root.is_dir():
            report.retired.extend(store.retire_missing(name, present, actor))
    if on_batch is not None:
        on_batch()
    return report
