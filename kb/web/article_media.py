"""Images next to an imported article's Markdown file, for ``GET /ui/articles/{id}/media/{path}``.

An imported article is ``collection`` + ``source_path`` (relative to the import root, :mod:`kb.ingest.markdown`).
The root of a collection is the bundled articles folder (setting ``articles_dir``) when it has the collection's name
(``make run`` imports ``articles/`` as collection ``articles``), else ``articles_dir/<collection>`` (a corpus
imported on its own, e.g. ``articles/windows-troubleshooting``). Articles from other folders or from the API and
the editor have no media.

A file is served only when, after resolving ``..`` and symlinks, it lies inside the *folder of the article's own
Markdown file* (or below it) and is an image of :data:`MEDIA_TYPES`: no path outside that folder (``../``,
absolute paths, symlinks leading out), and never a Markdown file or anything else of the tree, so an article
cannot be used to read another article's text. And it is served only when the article's own body shows it (an
image of its Markdown, :func:`shown_images`): a reader of one article of a folder cannot fetch the images of the
other articles of that folder, some of which they may not be allowed to read. Who may see the article is checked by
the route (:func:`kb.identity.scopes.readable_article`), so restricted and internal articles' images obey their
visibility.
"""

from __future__ import annotations

import posixpath
from functools import lru_cache
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from kb.articles.rendering import render_html
from kb.errors import NotFoundError
from kb.models import Article

#: Image suffixes served, with their media types (IANA). SVG is served with a sandboxing CSP (see the route).
MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".svg": "image/svg+xml",
}


def collection_root(articles_dir: Path, collection: str | None) -> Path | None:
    """The folder ``collection`` was imported from (module docstring), None when it is not under ``articles_dir``."""
    if not collection or collection in (".", "..") or "/" in collection or "\\" in collection:
        return None
    base = articles_dir.resolve()
    if base.name == collection and base.is_dir():
        return base
    inner = base / collection
    return inner if inner.is_dir() else None


def article_folder(articles_dir: Path, article: Article) -> Path | None:
    """The folder holding ``article``'s Markdown file, resolved; None for an article not imported from a folder
    under ``articles_dir``."""
    root = collection_root(articles_dir, article.collection)
    if root is None or not article.source_path:
        return None
    folder = (root / article.source_path).parent.resolve()
    return folder if folder == root or root in folder.parents else None


def relative_media_path(source_path: str | None, url_path: str) -> str | None:
    """The path, relative to the article's folder, of a relative image URL path (already percent-decoded) in the
    article from ``source_path``; None for an absolute path or one that leaves the folder (``../``)."""
    if source_path is None or not url_path or url_path.startswith(("/", "\\")) or "\\" in url_path:
        return None
    normal = posixpath.normpath(url_path)
    if normal in (".", "..") or normal.startswith("../"):
        return None
    return normal


@lru_cache(maxsize=256)
def _images_of(body: str, source_path: str) -> frozenset[str]:
    shown: set[str] = set()

    def collect(kind: str, url: str) -> str | None:
        parts = urlsplit(url)
        if kind == "image" and not parts.scheme and not parts.netloc and parts.path:
            relative = relative_media_path(source_path, unquote(parts.path))
            if relative is not None:
                shown.add(relative)
        return url

    render_html(body, collect)
    return frozenset(shown)


def shown_images(article: Article) -> frozenset[str]:
    """The relative image paths (normalised, as :func:`relative_media_path` gives them) that ``article``'s body
    shows: the images of its Markdown as the article page renders them. Empty for an article without a source
    file. Remembered per body (256 bodies)."""
    if not article.source_path:
        return frozenset()
    return _images_of(article.body, article.source_path)


def media_file(articles_dir: Path, article: Article, path: str) -> tuple[Path, str]:
    """The file and media type of image ``path`` (relative to the folder of ``article``'s Markdown file).

    Raises:
        NotFoundError: the article has no media folder, ``path`` is absolute or leaves the folder (also through a
            symlink), holds a NUL, is not an image of :data:`MEDIA_TYPES`, is not an image the article's body
            shows (:func:`shown_images`), or no such file exists.
    """
    missing = NotFoundError(f"Article {article.id} has no image {path!r}.")
    folder = article_folder(articles_dir, article)
    if folder is None or "\x00" in path or PurePosixPath(path).is_absolute() or path.startswith("\\"):
        raise missing
    media_type = MEDIA_TYPES.get(PurePosixPath(path).suffix.lower())
    if media_type is None or relative_media_path(article.source_path, path) not in shown_images(article):
        raise missing
    try:
        target = (folder / path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # no such file, a symlink loop, a bad name
        raise missing from None
    if folder not in target.parents or not target.is_file():
        raise missing
    if target.suffix.lower() != PurePosixPath(path).suffix.lower():  # a symlink to a non-image inside the folder
        raise missing
    return target, media_type
