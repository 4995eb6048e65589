"""Links between articles: a relative link to a ``.md`` / ``.markdown`` file (``x.md``, ``../y/x.md#part``, or
``/x.md`` from the corpus root, as TiDB's docs write them) names the article imported from that file of the same
collection. The one rule for every rendering that hands out an article's HTML (the article page, ``GET
/articles/{id}``): the link goes to that article when the viewer may read it (:func:`kb.identity.scopes.
readable_article`), else it is dropped and its text stays — so the HTML never names the file of an article the
viewer may not see (found by session 7's outside tester in the API's ``html``).

The forms handled are the ones in the bundled corpora (``/work/shared/data/articles``: ``x.md``,
``../support/x.md#anchor``, ``/x.md``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from kb.articles.store import ArticleStore
from kb.errors import KBError
from kb.identity.scopes import Principal, readable_article
from kb.models import Article

MARKDOWN_SUFFIXES = (".md", ".markdown")
#: A link rewriter: the URL of a link -> the URL to show, or None to drop the link (its text stays).
LinkRewriter = Callable[[str], str | None]


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


def is_relative(url: str) -> bool:
    """Whether ``url`` is a path of this site or corpus (no scheme, no host, a path)."""
    parts = urlsplit(url)
    return not (parts.scheme or parts.netloc or not parts.path)


def article_link_rewriter(
    store: ArticleStore, article: Article, viewer: Principal, target_url: Callable[[int], str]
) -> LinkRewriter:
    """The rewriter of ``article``'s links for ``viewer``: a relative Markdown link -> ``target_url(id)`` of the
    article from that file (fragment kept) when ``viewer`` may read it, else None (dropped; also when no article
    came from that file, or ``article`` was not imported from a folder); every other link as it is. Each path is
    looked up once (``store.by_source_paths``)."""
    seen: dict[str, str | None] = {}

    def target(candidates: list[str]) -> str | None:
        if not candidates or article.collection is None:
            return None
        found = store.by_source_paths(article.collection, candidates)
        for path in candidates:
            linked = found.get(path)
            if linked is None:
                continue
            try:
                readable_article(viewer, linked)
            except KBError:
                return None
            return target_url(linked.id)
        return None

    def rewrite(url: str) -> str | None:
        if not is_relative(url):
            return url
        parts = urlsplit(url)
        path = unquote(parts.path)
        if not path.lower().endswith(MARKDOWN_SUFFIXES):
            return url
        if path not in seen:
            seen[path] = target(linked_source_paths(article.source_path, path)) if article.source_path else None
        page = seen[path]
        if page is None:
            return None
        return page + (f"#{parts.fragment}" if parts.fragment else "")

    return rewrite
