"""Who may continue a ticket from a channel: the one rule for threading an e-mail or IM message onto a ticket.

A message that quotes an earlier message of a ticket, or names its number (``T00000042``), is threaded onto that
ticket (a work note, a reopening, a linked follow-up) only when its sender may write the ticket:

- the sender is the ticket's requester (``QQ:<user_id>`` on IM, the address on e-mail; compared case-folded), or
- the sender names an enabled desk account (a kb user whose name is the sender address) whose roles grant
  ``ticket.work`` and who may see the ticket (:func:`kb.identity.scopes.ticket_visible`).

Anyone else's message opens a new ticket, answered exactly like any other new ticket, so the answer never says
whether the number exists; the refused attempt is audited as ``ticket.thread`` (result ``denied``). Ticket numbers
are sequential and a sender address can be forged, so the number alone never grants anything (an e-mail sender is
only as trustworthy as the sending domain allow-list, ``KB_EMAIL_SENDER_DOMAINS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

from kb.db import Database
from kb.identity.audit import DENIED, AuditContext, AuditTrail
from kb.identity.names import fold_name
from kb.identity.observer import CURRENT
from kb.identity.permissions import Permission
from kb.identity.scopes import Principal, ticket_visible
from kb.models import Ticket, User


def may_write(database: Database, ticket: Ticket, sender: str) -> bool:
    """Whether a channel message from ``sender`` (``QQ:<id>`` or an e-mail address) may be threaded onto
    ``ticket`` (rule in the module docstring)."""
    who = fold_name(sender)
    if who and fold_name(ticket.requester or "") == who:
        return True
    with database.session() as session:
        user = session.scalar(select(User).where(User.username == who, User.active.is_(True)))
        if user is None:
            return False
        desk = Principal(user.username, tuple(user.roles), tuple(user.groups))
    return desk.may(Permission.TICKET_WORK) and ticket_visible(desk, ticket)


def refuse(audit: AuditTrail | None, context: AuditContext, sender: str, named: str, why: str) -> None:
    """Audit a message that quoted or named a ticket (``named``: its number, or the quoted message ids) that its
    ``sender`` may not write or that does not exist (``why``): event ``ticket.thread``, result ``denied``, in a
    transaction of its own. The message itself opens a new ticket."""
    if audit is not None:
        audit.write(context, "ticket.thread", named, DENIED, f"{sender}: {why}; opened a new ticket")


@contextmanager
def channel_context(actor: str, channel: str) -> Iterator[None]:
    """Within the block, audit rows of the desk's changes (:mod:`kb.identity.observer`) name ``channel``
    (``im``, ``email``) for ``actor``, instead of ``system``."""
    token = CURRENT.set(AuditContext(actor, channel=channel))
    try:
        yield
    finally:
        CURRENT.reset(token)
