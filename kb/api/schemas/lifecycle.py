"""Schemas of the knowledge lifecycle: status moves, versions and diffs, feedback, usage, the review queue."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from kb.api.params import BodyId
from kb.api.schemas.articles import ArticlePublic, ArticleStatsOut
from kb.api.schemas.request import RequestBody


class StatusChange(RequestBody):
    """A lifecycle move (see kb.articles.lifecycle): the new status, and for retiring the successor article; for
    publishing an optional review-by date (default a year ahead)."""

    status: Literal["draft", "in_review", "published", "retired"]
    superseded_by: BodyId | None = None
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


class FeedbackIn(RequestBody):
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


class UsageIn(RequestBody):
    """A use of an article: ``resolved`` with the ticket it resolved (``view`` is counted by GET)."""

    event: Literal["view", "resolved"] = "resolved"
    ticket: str | None = Field(default=None, max_length=120)


class ReviewItemOut(BaseModel):
    """An article due for review and why: ``expired`` (past review-by) and/or ``poor_feedback``."""

    article: ArticlePublic
    reasons: list[str]
    stats: ArticleStatsOut
