"""Audit rows for the changes of other packages, in their own transactions, without those packages knowing.

:func:`observe` hooks SQLAlchemy's ``before_flush`` on the database's sessions: when a flush carries a row that
records an auditable action, the matching audit row is added to the same flush, so the action and its audit row
commit together or not at all (GB/T 22239-2019 7.1.4.3 a). The actions and the rows that reveal them:

=====================  ===============================================================
article.publish        an ``articles`` row whose ``status`` becomes ``published``
article.retire         ... becomes ``retired`` (other status changes: ``article.status``)
article.delete         an ``articles`` row deleted
article.create         the first ``article_versions`` row of an article made outside an import, with its
                       visibility (and ``restricted_to``)
article.update         an ``articles`` row whose content changed (a new version): the old -> new version and,
                       when it changed, the old -> new visibility and ``restricted_to`` (never the body)
article.import         new ``articles`` rows of an import (one audit row per flush, with the count)
ticket.import          new ``tickets`` rows of an export import (one audit row per flush, with the count)
ticket.create          a ``ticket_events`` row of kind created (a ticket the desk takes in, any channel, with it)
ticket.status          ... of kind status (a move such as new -> in_progress, with from -> to)
ticket.assign          ... of kind assigned or reassigned
ticket.escalate        ... of kind escalated
ticket.close           ... of kind closed or deflected
ticket.note            ... of kind note (a work note from the API, e-mail or IM)
ticket.reopen          ... of kind reopened (a reply to a closed ticket, by e-mail or IM)
article.resolved       a new ``article_usage`` row of event ``resolved`` (the desk's record that the article
                       resolved a ticket, which feeds the desk's ranking vote), with the ticket number
synonym.create         new ``synonym_groups`` rows (one audit row per flush and author: the terms, or the count;
                       not the bundled list of the first start, :data:`kb.identity.names.BUNDLED_ACTOR`)
synonym.delete         a ``synonym_groups`` row deleted, by its ``updated_by`` (the store sets it to who deletes)
article.restore        an old version made current again (named by the store in ``Session.info``,
                       :data:`kb.db.AUDIT_ACTIONS`)
=====================  ===============================================================

Session 9's outside tester found synonym changes, resolved uses, ticket creation and status moves unaudited.

Who acted is the actor the row itself records; roles, client IP and channel come from :data:`CURRENT`, the
context the API's permission check sets for the request (the command line leaves it unset: channel ``system``).
"""

from __future__ import annotations

from collections import Counter
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from kb.db import AUDIT_ACTIONS, Database
from kb.identity.audit import AuditContext, AuditTrail
from kb.identity.names import BUNDLED_ACTOR, IMPORT_ACTOR, SYSTEM_CHANNEL
from kb.models import Article, ArticleUsage, ArticleVersion, SynonymGroup, Ticket, TicketEvent

#: The acting user's audit context for the current request (set by ``kb.api.deps.Requires``).
CURRENT: ContextVar[AuditContext | None] = ContextVar("kb_audit_context", default=None)

_TICKET_KINDS = {"created": "ticket.create", "status": "ticket.status", "assigned": "ticket.assign",
                 "reassigned": "ticket.assign", "escalated": "ticket.escalate", "closed": "ticket.close",
                 "deflected": "ticket.close", "note": "ticket.note", "reopened": "ticket.reopen"}  # fmt: skip
#: ``tickets.source`` of tickets the desk takes in itself (``kb.desk.workflow.SOURCE``; this package sits below
#: kb.desk and may not import it): those are intake, not import.
DESK_SOURCE = "desk"
_STATUS_EVENTS = {"published": "article.publish", "retired": "article.retire"}
#: The ``articles`` columns of an article's content but its status (kb.articles.content.ArticleContent; a status
#: change alone is audited as article.publish / article.retire / article.status).
CONTENT_COLUMNS = ("title", "body", "summary", "kind", "service", "tags", "error_codes", "visibility",
                   "restricted_to", "meta")  # fmt: skip


def _context(actor: str) -> AuditContext:
    current = CURRENT.get()
    if current is not None and current.actor == actor:
        return current
    return AuditContext(
        actor, channel=current.channel if current else SYSTEM_CHANNEL, ip=current.ip if current else None
    )


def _found(session: Session) -> list[tuple[str, str, str, str]]:
    """(actor, event, object, reason) of each auditable action in the pending flush."""
    found: list[tuple[str, str, str, str]] = list(session.info.pop(AUDIT_ACTIONS, []))
    imported: Counter[tuple[str, str]] = Counter()
    synonyms: dict[str, list[SynonymGroup]] = {}
    for row in session.new:
        if isinstance(row, TicketEvent) and row.kind in _TICKET_KINDS:
            found.append((row.actor, _TICKET_KINDS[row.kind], f"ticket {row.ticket_id}", _ticket_reason(row)))
        elif isinstance(row, ArticleUsage) and row.event == "resolved":
            found.append((row.actor, "article.resolved", f"article {row.article_id}", f"ticket {row.ticket}"))
        elif isinstance(row, SynonymGroup) and row.updated_by != BUNDLED_ACTOR:  # the install's list: not an action
            synonyms.setdefault(row.updated_by, []).append(row)
        elif isinstance(row, Ticket) and row.source != DESK_SOURCE:
            imported[(IMPORT_ACTOR, f"ticket.import:{row.source}")] += 1
        elif isinstance(row, Article) and row.collection is not None:
            imported[(row.created_by, f"article.import:{row.collection}")] += 1
        elif isinstance(row, ArticleVersion) and row.version == 1:  # the article's row has its id by now
            article = next((a for a in session.identity_map.values() if _is_article(a, row.article_id)), None)
            assert article is None or isinstance(article, Article)
            if article is not None and article.collection is None:  # imports: one row per batch
                found.append((row.created_by, "article.create", f"article {row.article_id} {row.title}",
                              _visibility(article)))  # fmt: skip
    for row in session.dirty:
        if isinstance(row, Article):
            if (update := _update(row)) is not None:
                found.append((row.updated_by, "article.update", f"article {row.id} {row.title}", update))
            history = inspect(row).attrs.status.history
            if history.has_changes() and history.added:
                status = str(history.added[0])
                name = _STATUS_EVENTS.get(status, "article.status")
                found.append((row.updated_by, name, f"article {row.id} {row.title}", f"to {status}"))
    for row in session.deleted:
        if isinstance(row, Article):
            found.append((row.updated_by, "article.delete", f"article {row.id} {row.title}", ""))
        elif isinstance(row, SynonymGroup):
            found.append((row.updated_by, "synonym.delete", f"synonym {row.id} {','.join(row.terms)}", ""))
    for actor, groups in synonyms.items():
        what = f"synonym {','.join(groups[0].terms)}" if len(groups) == 1 else f"{len(groups)} synonym groups"
        found.append((actor, "synonym.create", what, ""))
    for (actor, key), count in imported.items():
        name, _, source = key.partition(":")
        current = CURRENT.get()
        who = current.actor if current is not None and actor == IMPORT_ACTOR else actor
        found.append((who, name, source, f"{count} rows"))
    return found


def _ticket_reason(row: TicketEvent) -> str:
    """The reason of a ticket event's audit row: ``web`` (the channel) for a creation, ``new -> in_progress`` for a
    status move, else the event's ``to`` (the group assigned or escalated to)."""
    if row.kind == "created":
        return str(row.data.get("channel", ""))
    if row.kind == "status":
        return f"{row.data.get('from', '')} -> {row.data.get('to', '')}"
    return str(row.data.get("to", ""))


def _is_article(row: object, article_id: int) -> bool:
    return isinstance(row, Article) and row.id == article_id


def _visibility(row: Article) -> str:
    """``visibility=V`` and, when restricted, ``restricted_to=A,B``."""
    restricted = f" restricted_to={','.join(row.restricted_to or ())}" if row.visibility == "restricted" else ""
    return f"visibility={row.visibility}{restricted}"


def _update(row: Article) -> str | None:
    """The reason of an ``article.update`` row: ``version 2 -> 3: body,visibility`` (the names of the columns that
    changed) and the old -> new visibility and ``restricted_to`` when they changed; None when only the status
    changed (audited by its own event). Found by session 7's outside tester: a PUT, even one opening an internal
    article to everyone, left no audit row."""
    attrs = inspect(row).attrs
    changed = [name for name in CONTENT_COLUMNS if attrs[name].history.has_changes()]
    if not changed:
        return None
    version = attrs.version.history
    old_version = version.deleted[0] if version.deleted else int(row.version) - 1
    parts = [f"version {old_version} -> {row.version}: {','.join(changed)}"]
    visibility, restricted = attrs.visibility.history, attrs.restricted_to.history
    if visibility.deleted:
        parts.append(f"visibility {visibility.deleted[0]} -> {row.visibility}")
    if restricted.deleted:
        before, after = ",".join(restricted.deleted[0] or ()) or "-", ",".join(row.restricted_to or ()) or "-"
        parts.append(f"restricted_to {before} -> {after}")
    return "; ".join(parts)


def observe(database: Database, audit: AuditTrail) -> None:
    """Add the audit rows of :mod:`kb.identity.observer`'s table to every flush of ``database``'s sessions."""

    def before_flush(session: Session, _context_: Any, _instances: Any) -> None:
        for actor, name, obj, reason in _found(session):
            audit.record(session, _context(actor), name, obj, reason=reason, flush=False)

    event.listen(database.sessions, "before_flush", before_flush)
