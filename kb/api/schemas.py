"""Request and response models of the HTTP API (separate Create / Update / Public shapes)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from kb.articles.content import MAX_BODY_CHARS, MAX_TITLE_CHARS


class ArticleCreate(BaseModel):
    """A new article. ``body`` is Markdown and may start with YAML front matter; explicit fields win
    over the front matter. ``title`` may be omitted when the front matter or a ``# `` heading gives one."""

    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    body: str = Field(default="", max_length=MAX_BODY_CHARS + 10_000)
    summary: str | None = None
    kind: str | None = None
    service: str | None = None
    tags: list[str] | None = None
    error_codes: list[str] | None = None
    status: str | None = None
    visibility: str | None = None


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


class StatusChange(BaseModel):
    """A lifecycle move (see kb.articles.lifecycle): the new status, and for retiring the successor article; for
    publishing an optional review-by date (default a year ahead)."""

    status: Literal["draft", "in_review", "published", "retired"]
    superseded_by: int | None = None
    review_by: date | None = None


class VersionOut(BaseModel):
    """A saved version of an article."""

    version: int
    title: str
    created_at: datetime
    created_by: str
    status: str | None = None


class VersionDetail(VersionOut):
    """A saved version with its content."""

    body: str
    fields: dict[str, Any]


class VersionDiff(BaseModel):
    """A unified diff (Markdown with front matter) from version ``from_version`` to ``to_version``."""

    article_id: int
    from_version: int
    to_version: int
    diff: str


class FeedbackIn(BaseModel):
    """A vote on an article; ``query`` when the vote is on the article as a result of that search."""

    helpful: bool
    comment: str = Field(default="", max_length=2000)
    query: str | None = Field(default=None, max_length=1000)


class FeedbackOut(FeedbackIn):
    """A recorded vote."""

    id: int
    article_id: int
    actor: str
    created_at: datetime


class UsageIn(BaseModel):
    """A use of an article: ``resolved`` with the ticket it resolved (``view`` is counted by GET)."""

    event: Literal["view", "resolved"] = "resolved"
    ticket: str | None = Field(default=None, max_length=120)


class ReviewItemOut(BaseModel):
    """An article due for review and why: ``expired`` (past review-by) and/or ``poor_feedback``."""

    article: ArticlePublic
    reasons: list[str]
    stats: ArticleStatsOut


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


class ErrorAnswer(BaseModel):
    """Every error: a machine-readable ``error`` code and a human ``detail`` sentence."""

    error: str
    detail: str
