"""Schemas of synonym groups."""

from __future__ import annotations

from pydantic import Field

from kb.api.schemas.request import RequestBody


class SynonymGroupCreate(RequestBody):
    """A new group of equivalent terms (at least two)."""

    terms: list[str] = Field(min_length=2, max_length=50)
