"""Links and images of an imported article as the article page shows them (a
:data:`kb.articles.rendering.UrlRewriter`):

* an image with a relative path inside the article's folder -> ``/ui/articles/{id}/media/{path}`` (served by the
  permission-checked media route, :mod:`kb.web.article_media`); an absolute path, one leaving the folder (``../``)
  or any relative image of an article not imported from a folder -> its alt text (it could not be shown);
* a link to a relative ``.md`` / ``.markdown`` file -> the page of the article imported from that file, when the
  viewer may read it, else dropped (its text stays): the rule of :mod:`kb.articles.links`, which the API's
  ``html`` follows too;
* every other link or image (``https:``, ``mailto:``, ``#part``, non-Markdown files) is left as it is.

The image forms handled are the ones in the bundled corpora (``/work/shared/data/articles``: ``media/x.png``,
``../../media/x.jpg``).
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from kb.articles.links import article_link_rewriter, is_relative
from kb.articles.rendering import UrlRewriter
from kb.identity.scopes import Principal
from kb.models import Article
from kb.service import KnowledgeBase
from kb.web.article_media import article_folder, relative_media_path


def media_url(article_id: int, path: str) -> str:
    """The URL of image ``path`` (relative to the article's folder) of article ``article_id``."""
    return f"/ui/articles/{article_id}/media/{quote(path)}"


def page_url(article_id: int) -> str:
    """The URL of the page of article ``article_id``."""
    return f"/ui/articles/{article_id}"


def url_rewriter(kb: KnowledgeBase, article: Article, viewer: Principal) -> UrlRewriter:
    """The rewriter of ``article``'s links and images for ``viewer`` (module docstring)."""
    has_folder = article_folder(kb.settings.articles_dir, article) is not None
    link = article_link_rewriter(kb.store, article, viewer, page_url)

    def rewrite(kind: str, url: str) -> str | None:
        if kind != "image":
            return link(url)
        if not is_relative(url):
            return url
        relative = relative_media_path(article.source_path, unquote(urlsplit(url).path)) if has_folder else None
        return media_url(article.id, relative) if relative is not None else None

    return rewrite
