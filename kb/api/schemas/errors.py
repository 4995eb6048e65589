"""The JSON error shape every 4xx and 5xx answer has."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorAnswer(BaseModel):
    """Every error: a machine-readable ``error`` code and a human ``detail`` sentence."""

    error: str
    detail: str
