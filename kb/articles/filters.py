"""Which articles a listing or a search may show: :class:`ArticleFilter` (statuses, kinds, services, tags and the
viewer's visibility) and :class:`ArticleSummary`, the columns of an article that search filters and shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kb.identity.scopes import Principal, article_visible
from kb.models import Article


@dataclass(frozen=True, slots=True)
class ArticleSummary:
    """The columns of an article that search needs to filter, rank and show a result (no body)."""

    id: int
    title: str
    summary: str
    source_path: str | None
    kind: str
    service: str | None
    tags: list[str]
    status: str
    visibility: str
    version: int
    superseded_by: int | None
    restricted_to: list[str]


@dataclass(frozen=True)
class ArticleFilter:
    """Filters shared by listing and search. Empty values mean "any"."""

    statuses: Sequence[str] = ("published",)
    kinds: Sequence[str] = ()
    services: Sequence[str] = ()
    tags: Sequence[str] = ()
    #: Who is looking (kb.identity.scopes.article_visible); None: the system itself, which sees everything.
    viewer: Principal | None = None

    def visible(self, article: Article | ArticleSummary) -> bool:
        """Whether ``viewer`` may see ``article`` at all, whatever its status
        (:func:`kb.identity.scopes.article_visible`)."""
        return article_visible(self.viewer, article.visibility, article.restricted_to or ())

    def matches(self, article: Article | ArticleSummary) -> bool:
        """Whether ``article`` passes every filter (tags: the article has all of them) and ``viewer`` may see it."""
        return (
            self.visible(article)
            and (not self.statuses or article.status in self.statuses)
            and (not self.kinds or article.kind in self.kinds)
            and (not self.services or article.service in self.services)
            and all(tag in (article.tags or []) for tag in self.tags)
        )
