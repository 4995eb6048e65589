"""Links and images of an imported article as the article page shows them (a
:data:`kb.articles.rendering.UrlRewriter`):

* an image with a relative path inside the article's folder -> ``/ui/articles/{id}/media/{path}`` (served by the
  permission-checked media route, :mod:`kb.web.article_media`); an absolute path, one leaving the folder (``../``)
  or any relative image of an article not imported from a folder -> its alt text (it could not be shown);
* a link to a relative ``.md`` / ``.markdown`` file (``x.md``, ``../y/x.md#part``, or ``/x.md`` from the corpus
  root, as TiDB's docs write them) -> the page of the article imported from that file of the same collection
  (fragment kept), when the viewer may read it; else the link is dropped and its text stays;
* every other link or image (``https:``, ``mailto:``, ``#part``, non-Markdown files) is left as it is.

The forms handled are the ones in the bundled corpora (``/work/shared/data/articles``: ``media/x.png``,
``../../media/x.jpg``, ``x.md``, ``../support/x.md#anchor``, ``/x.md``).
"""

from __future__ import annotations

import posixpath
from urllib.parse import quote, unquote, urlsplit

from kb.articles.rendering import UrlRewriter
from kb.errors import KBError
from kb.identity.scopes import Principal, readable_article
from kb.models import Article
from kb.service import KnowledgeBase
from kb.web.article_media import article_folder, relative_media_path

MARKDOWN_SUFFIXES = (".md", ".markdown")


def media_url(article_id: int, path: str) -> str:
    """The URL of image ``path`` (relative to the article's folder) of article ``article_id``."""
    return f"/ui/articles/{article_id}/media/{quote(path)}"


def linked_source_paths(source_path: str, url_path: str) -> list[str]:
    """The source paths (relative to the collection root) a Markdown link's path may name, most likely first:
    relative to the linking file's folder, or for ``/x.md`` the collection root and then the top folder of
    ``source_path`` (a corpus imported inside a bigger collection). Empty when the path leaves the root."""
    if url_path.startswith("/"):
        inner = posixpath.normpath(url_path.lstrip("/"))
        top = source_path.split("/", 1)[0] if "/" in source_path else ""
        candidates = [inner] + ([f"{top}/{inner}"] if top else [])
    else:
        candidates = [posixpath.normpath(posixpath.join(posixpath.dirname(source_path), url_path))]
    return [c for c in candidates if c not in (".", "..") and not c.startswith("../")]


def url_rewriter(kb: KnowledgeBase, article: Article, viewer: Principal) -> UrlRewriter:
    """The rewriter of ``article``'s links and images for ``viewer`` (module docstring); looks each Markdown link
    up once (``kb.store.by_source_paths``) and checks the target with :func:`readable_article`."""
    has_folder = article_folder(kb.settings.articles_dir, article) is not None
    seen: dict[str, str | None] = {}

    def article_page(candidates: list[str]) -> str | None:
        if not candidates or article.collection is None:
            return None
        found = kb.store.by_source_paths(article.collection, candidates)
        for path in candidates:
            target = found.get(path)
            if target is None:
                continue
            try:
                readable_article(viewer, target)
            except KBError:
                return None
            return f"/ui/articles/{target.id}"
        return None

    def rewrite(kind: str, url: str) -> str | None:
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path:
            return url
        path = unquote(parts.path)
        if kind == "image":
            relative = relative_media_path(article.source_path, path) if has_folder else None
            return media_url(article.id, relative) if relative is not None else None
        if not path.lower().endswith(MARKDOWN_SUFFIXES):
            return url
        if path not in seen:
            seen[path] = article_page(linked_source_paths(article.source_path, path)) if article.source_path else None
        page = seen[path]
        if page is None:
            return None
        return page + (f"#{parts.fragment}" if parts.fragment else "")

    return rewrite
