"""Path and body id types validated at the edge, defined once and used by every route and schema.

Ids are database primary keys, ``INTEGER`` columns: 32-bit signed on PostgreSQL (64-bit on SQLite, but the
schema is the same for both), so an id outside ``1 .. 2**31 - 1`` answers 422 ``invalid_input`` instead of
overflowing in the database driver (PostgreSQL: ``NumericValueOutOfRange``, found by tests/api/test_properties.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

#: Largest value of an ``INTEGER`` primary key column on PostgreSQL (32-bit signed).
MAX_ID = 2**31 - 1
#: Largest version number (a 32-bit column).
MAX_VERSION = 2**31 - 1

#: An article id in a path (``/articles/{article_id}``).
ArticleId = Annotated[int, Path(ge=1, le=MAX_ID, description="Article id (1 .. 2**31-1).")]
#: A ticket id in a path (``/tickets/{ticket_id}``).
TicketId = Annotated[int, Path(ge=1, le=MAX_ID, description="Ticket id (1 .. 2**31-1).")]
#: A synonym group id in a path.
GroupId = Annotated[int, Path(ge=1, le=MAX_ID, description="Synonym group id (1 .. 2**31-1).")]
#: A version number of an article in a path (1 is the first version).
VersionNo = Annotated[int, Path(ge=1, le=MAX_VERSION, description="Version number (1 .. 2**31-1).")]

#: An id in a request body (``superseded_by``, ``article_id``, ``articles: [...]``).
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]
