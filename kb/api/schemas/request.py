"""The base of every request body: unknown fields are refused (422), not ignored.

A field the server does not know is a client's mistake (``titel`` for ``title``, a policy key that does not
exist): ignoring it would answer 200 for a change that did not happen, and audit it as made.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """A JSON request body; a field it does not declare answers 422 ``invalid_input``."""

    model_config = ConfigDict(extra="forbid")
