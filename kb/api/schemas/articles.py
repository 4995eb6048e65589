"""Request and response schemas of articles (create / update / public / detail / list / write answer)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from kb.api.schemas.request import RequestBody
from kb.articles.content import MAX_BODY_CHARS, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS


class ArticleCreate(RequestBody):
    """A new article. ``body`` is Markdown and may start with YAML front matter; explicit fields win
    over the front matter. ``title`` may be omitted when the front matter or a ``# `` heading gives one."""

    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    body: str = Field(default="", max_length=MAX_BODY_CHARS + 10_000)
    summary: str | None = Field(default=None, max_length=MAX_SUMMARY_CHARS)
    kind: str | None = Field(default=None, max_length=40)
    service: str | None = Field(default=None, max_length=120)
    tags: list[Annotated[str, Field(max_length=120)]] | None = Field(default=None, max_length=100)
    error_codes: list[Annotated[str, Field(max_length=120)]] | None = Field(default=None, max_length=100)
    status: str | None = Field(default=None, max_length=40)
    visibility: str | None = Field(default=None, max_length=40)
    restricted_to: list[Annotated[str, Field(max_length=120)]] | None = Field(default=None, max_length=50)


class ArticleUpdate(ArticleCreate):
    """Replacement content for an article (PUT): fields left out keep their current values."""


class ArticlePublic(BaseModel):
    """An article as listed."""

    id: int
    title: str
    summary: str
    kind: str
    service: str | None
    tags: list[str]
    error_codes: list[str]
    status: str
    visibility: str
    restricted_to: list[str]
    source: str
    collection: str | None
    source_path: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str
    reviewer: str | None = None
    review_by: date | None = None
    published_at: datetime | None = None
    superseded_by: int | None = None


class ArticleStatsOut(BaseModel):
    """Usage and feedback counts of an article."""

    views: int
    resolved: int
    helpful: int
    not_helpful: int
    tickets: list[str]


class ArticleDetail(ArticlePublic):
    """One article with its Markdown body, the body rendered to safe HTML, and its counts. A retired
    article that names a successor has ``superseded_by`` set (and a ``Link: rel="successor-version"`` header)."""

    body: str
    html: str
    meta: dict[str, Any]
    stats: ArticleStatsOut | None = None


class WriteAnswer(BaseModel):
    """Answer to a write: the article, whether the change is already searchable, and the outbox seq."""

    article: ArticleDetail | None
    indexed: bool
    seq: int | None


class ArticleList(BaseModel):
    """A page of articles."""

    total: int
    offset: int
    limit: int
    items: list[ArticlePublic]
