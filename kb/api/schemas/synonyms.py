"""Schemas of synonym groups."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SynonymGroupCreate(BaseModel):
    """A new group of equivalent terms (at least two)."""

    terms: list[str] = Field(min_length=2, max_length=50)
