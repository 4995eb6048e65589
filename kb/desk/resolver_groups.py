"""Which resolver groups and people a ticket may be assigned to (分配), checked by every assignment and escalation.

A ticket goes to a group the desk knows:

- a group of the service catalog (each service's ``group``: where intake routes a new ticket);
- a group an enabled account is a member of (``kb users create --group``, ``PUT /users/NAME/groups``): a group
  with people in it;
- a resolver group of the desk's imported history (tickets of an export import, ``source`` other than ``desk``):
  the assignment suggestion (:mod:`kb.desk.suggest`) votes among the groups of similar past tickets, so what it
  proposes must be assignable, and a replay of the history (``bench/desk_replay.py``) assigns to them.

Anything else (a typo, a made-up name) is refused: it would hide the ticket from everyone who works it. Imports are
history, written as they were, and not checked here.

The person, when one is named, must be an enabled account allowed to work tickets (permission ``ticket.work`` in
:mod:`kb.identity.permissions`: agent, engineer, desk_lead) and a member of that group.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kb.desk.sla import ServiceCatalog
from kb.errors import AssigneeNotInGroupError, UnknownAssigneeError, UnknownGroupError
from kb.identity.names import fold_name
from kb.identity.permissions import Permission, allowed
from kb.ingest.ticket_numbers import DESK_SOURCE
from kb.models import Ticket, User


class ResolverGroups:
    """The assignment rule (module docstring) over the catalog and the database.

    Args:
        catalog: the service catalog (its groups are always known).
    """

    def __init__(self, catalog: ServiceCatalog) -> None:
        self.catalog_groups = frozenset(level.group for level in catalog.services.values() if level.group)

    def known(self, session: Session, group: str) -> bool:
        """Whether ``group`` (stripped) is a resolver group the desk knows, in ``session``."""
        if group in self.catalog_groups:
            return True
        for groups in session.scalars(select(User.groups).where(User.active.is_(True))):
            if group in (groups or ()):
                return True
        history = select(Ticket.id).where(Ticket.resolver_group == group, Ticket.source != DESK_SOURCE).limit(1)
        return session.scalar(history) is not None

    def check(self, session: Session, group: str, assignee: str | None = None) -> tuple[str, str | None]:
        """``(group, assignee)`` as stored — the group stripped, the assignee the account's (case-folded) name or
        None — when the assignment is allowed.

        Raises:
            UnknownGroupError: ``group`` is not a group the desk knows (the message lists the catalog's).
            UnknownAssigneeError: ``assignee`` is not an enabled account with ``ticket.work``.
            AssigneeNotInGroupError: ``assignee`` is not a member of ``group``.
        """
        group = group.strip()
        if not self.known(session, group):
            listed = "、".join(sorted(self.catalog_groups))
            raise UnknownGroupError(
                f"{group!r} is not a resolver group of this desk: use a group of the service catalog ({listed}), "
                "a group an account belongs to, or one of the imported tickets."
            )
        name = fold_name(assignee or "")
        if not name:
            return group, None
        user = session.scalar(select(User).where(User.username == name))
        if user is None or not user.active or not allowed(user.roles, Permission.TICKET_WORK):
            raise UnknownAssigneeError(
                f"{assignee!r} is not an enabled account that works tickets (agent, engineer or desk_lead)."
            )
        if group not in (user.groups or ()):
            raise AssigneeNotInGroupError(f"{user.username} is not a member of {group}; assign to one of its members.")
        return group, user.username
