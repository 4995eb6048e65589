"""Request and response models of the HTTP API (separate Create / Update / Public shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from kb.articles import MAX_BODY_CHARS, MAX_TITLE_CHARS


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


class ArticleDetail(ArticlePublic):
    """One article with its Markdown body and the body rendered to safe HTML."""

    body: str
    html: str
    meta: dict[str, Any]


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
