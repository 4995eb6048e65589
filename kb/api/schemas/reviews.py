"""Schemas of post-incident reviews."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from kb.api.schemas.articles import ArticleDetail
from kb.api.schemas.request import RequestBody
from kb.articles.content import MAX_BODY_CHARS


class ReviewIn(RequestBody):
    """A review as Markdown in the template (front matter optional); ``status`` overrides the default
    (published when complete, draft when sections are missing)."""

    body: str = Field(max_length=MAX_BODY_CHARS + 10_000)
    status: str | None = None


class ReviewOut(BaseModel):
    """A stored review: the article, its template sections (Markdown), the incident fields and what is missing."""

    article: ArticleDetail
    sections: dict[str, str]
    review: dict[str, Any]
    missing: list[str]
    indexed: bool = True
