"""What a caller may state when opening a ticket through the API or the workbench: the one rule for both.

- **requester**: a caller who does not work the desk's queue (no ``ticket.groups``: requesters, service accounts)
  asks for themself, whatever they state; desk roles log tickets for others (the hotline) and name the requester.
- **channel**: set by the route that received the ticket (``web`` for a person's session, ``api`` for a service
  account; e-mail and IM have their own intake); desk roles may state another (``phone`` when they log a call).
  Anyone else stating a channel other than the route's is refused (403).
- **priority** (P1-P5): follows impact and urgency (``high`` / ``medium`` / ``low``), which anyone may state, by the
  ITIL impact x urgency matrix (:data:`MATRIX`; an unstated one counts as ``medium``; neither stated: no priority,
  the service type's targets alone apply, :mod:`kb.desk.sla`). Desk roles may set the priority directly; anyone
  else stating it is refused (403). The catalog's response and resolution targets do not depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kb.desk.workflow import NewTicket
from kb.errors import ForbiddenError, InvalidInputError
from kb.identity.names import requester_name
from kb.identity.permissions import Permission
from kb.identity.scopes import Principal

LEVELS = ("high", "medium", "low")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
#: (impact, urgency) -> priority: ITIL's priority matrix (ITIL Service Operation, 4.2.5.4 "Prioritization").
MATRIX = {
    ("high", "high"): "P1", ("high", "medium"): "P2", ("high", "low"): "P3",
    ("medium", "high"): "P2", ("medium", "medium"): "P3", ("medium", "low"): "P4",
    ("low", "high"): "P3", ("low", "medium"): "P4", ("low", "low"): "P5",
}  # fmt: skip


@dataclass(frozen=True)
class Stated:
    """A new ticket as its caller stated it (None: not stated)."""

    title: str
    description: str
    service: str
    channel: str | None = None
    requester: str | None = None
    priority: str | None = None
    impact: str | None = None
    urgency: str | None = None
    configuration_item: str | None = None
    category: str | None = None


def route_channel(viewer: Principal) -> str:
    """The channel of a ticket received over HTTP from ``viewer``: ``api`` for a service account, else ``web``."""
    return "api" if viewer.scopes is not None else "web"


def priority_of(impact: str | None, urgency: str | None) -> str | None:
    """The priority of :data:`MATRIX` for ``impact`` and ``urgency`` (an unstated one counts as medium; None when
    neither is stated).

    Raises:
        InvalidInputError: a level other than high, medium, low.
    """
    for name, level in (("impact", impact), ("urgency", urgency)):
        if level is not None and level not in LEVELS:
            raise InvalidInputError(f"{name} is one of {', '.join(LEVELS)}, not {level!r}.")
    if impact is None and urgency is None:
        return None
    return MATRIX[(impact or "medium", urgency or "medium")]


def new_ticket(stated: Stated, viewer: Principal) -> NewTicket:
    """The :class:`~kb.desk.workflow.NewTicket` ``viewer`` opens by stating ``stated`` (rules in the module
    docstring).

    Raises:
        ForbiddenError: a caller outside the desk states a priority, or a channel other than the route's.
        InvalidInputError: an unknown impact, urgency or priority.
    """
    desk = viewer.may(Permission.TICKET_GROUPS)
    channel = route_channel(viewer)
    if stated.channel is not None and stated.channel != channel:
        if not desk:
            raise ForbiddenError(f"The channel is the route's ({channel}); only the desk logs tickets of others.")
        channel = stated.channel
    priority = priority_of(stated.impact, stated.urgency)
    if stated.priority is not None:
        if not desk:
            raise ForbiddenError("State impact and urgency; the desk sets the priority.")
        if stated.priority not in PRIORITIES:
            raise InvalidInputError(f"The priority is one of {', '.join(PRIORITIES)}, not {stated.priority!r}.")
        priority = stated.priority
    return NewTicket(
        title=stated.title,
        description=stated.description,
        service=stated.service,
        channel=channel,
        requester=(requester_name(stated.requester) if stated.requester else None) if desk else viewer.username,
        priority=priority,
        configuration_item=stated.configuration_item,
        category=stated.category,
    )
