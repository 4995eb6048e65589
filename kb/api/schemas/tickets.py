"""Schemas of the desk: ticket intake, the ticket as the desk sees it, workflow steps."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from kb.api.params import BodyId
from kb.api.schemas.request import RequestBody


class TicketIn(RequestBody):
    """A ticket taken in by the desk; ``service`` is a catalog service type (key or Chinese name). What a caller may
    state (channel, requester, priority or impact and urgency): :mod:`kb.desk.stated`."""

    title: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=20_000)
    service: str = Field(max_length=120)
    channel: str | None = Field(default=None, max_length=20, description="Desk roles only; default: the route's.")
    requester: str | None = Field(default=None, max_length=200)
    priority: str | None = Field(default=None, max_length=20, description="P1-P5; desk roles only.")
    impact: str | None = Field(default=None, max_length=20, description="high, medium or low.")
    urgency: str | None = Field(default=None, max_length=20, description="high, medium or low.")
    configuration_item: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=120)


class SuggestIn(RequestBody):
    """A ticket that lives in another system."""

    title: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=20_000)
    service: str = Field(max_length=120)


class TicketOut(BaseModel):
    """A ticket as the desk sees it."""

    id: int
    external_id: str
    title: str
    description: str
    service: str | None
    channel: str | None
    requester: str | None
    priority: str | None
    configuration_item: str | None
    status: str
    tier: str
    resolver_group: str | None
    assignee: str | None
    opened_at: dt.datetime | None
    response_due: dt.datetime | None
    resolution_due: dt.datetime | None
    responded_at: dt.datetime | None
    closed_at: dt.datetime | None
    sla_state: str
    deflected: bool
    resolution: str
    root_cause: str
    work_notes: str
    satisfaction: int | None
    satisfaction_comment: str


class AssignIn(RequestBody):
    group: str = Field(min_length=1, max_length=120)
    assignee: str | None = Field(default=None, max_length=120)


class EscalateIn(RequestBody):
    reason: str = Field(min_length=1, max_length=2000)
    group: str | None = Field(default=None, max_length=120)


class NoteIn(RequestBody):
    text: str = Field(min_length=1, max_length=20_000)


class StatusIn(RequestBody):
    status: str = Field(max_length=40)


class CloseIn(RequestBody):
    """Closure: resolution and root cause are required; satisfaction 1-5; the articles used to resolve it."""

    resolution: str = Field(default="", max_length=20_000)
    root_cause: str = Field(default="", max_length=20_000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    comment: str = Field(default="", max_length=2000)
    articles: list[BodyId] = Field(default_factory=list, max_length=100)


class DeflectIn(RequestBody):
    article_id: BodyId


class TicketSummary(BaseModel):
    """A ticket in the queue: no description, notes or resolution (``GET /tickets`` answers no bodies)."""

    id: int
    external_id: str
    title: str
    service: str | None
    channel: str | None
    priority: str | None
    status: str
    tier: str
    resolver_group: str | None
    assignee: str | None
    opened_at: dt.datetime | None
    response_due: dt.datetime | None
    resolution_due: dt.datetime | None
    sla_state: str


class TicketListOut(BaseModel):
    """One page of the queue; pass ``next_cursor`` as ``cursor`` for the next page (None: last page)."""

    items: list[TicketSummary]
    next_cursor: str | None
