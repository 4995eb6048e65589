"""The permission table (访问控制, GB/T 22239-2019 7.1.4.2): which role may do what. The one place for this rule;
every API route declares one :class:`Permission` and one FastAPI dependency (``kb.api.deps.requires``) checks it.

Least privilege: a role gets only what its work needs. The 三员 are kept apart — the system administrator
manages users, imports and the index but cannot read the audit trail; the security administrator manages roles
and lockouts; the audit administrator reads and exports the audit trail only (7.1.5.1, 7.1.5.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Permission(StrEnum):
    """What a route needs. ``PUBLIC`` needs nothing (login, health); ``SESSION`` any live session, even one that
    must change its password first; ``IM_WEBHOOK`` the OneBot signature instead of a session."""

    PUBLIC = "public"
    SESSION = "session"
    IM_WEBHOOK = "im_webhook"
    SEARCH = "search"
    ARTICLE_READ = "article.read"
    ARTICLE_FEEDBACK = "article.feedback"
    ARTICLE_WRITE = "article.write"
    REVIEW = "article.review"
    SYNONYM_READ = "synonym.read"
    SYNONYM_WRITE = "synonym.write"
    TICKET_CREATE = "ticket.create"
    TICKET_READ = "ticket.read"
    TICKET_WORK = "ticket.work"
    TICKET_DEFLECT = "ticket.deflect"
    SUGGEST = "suggest"
    ANALYSIS = "analysis"
    DISTILL = "distill"
    IMPORT = "import"
    SLA_CHECK = "sla.check"
    USER_ADMIN = "user.admin"
    SECURITY_ADMIN = "security.admin"
    AUDIT_READ = "audit.read"
    METRICS = "metrics"
    # What a caller may see inside a route (kb.identity.scopes), not route permissions:
    TICKET_GROUPS = "ticket.groups"
    TICKET_ALL = "ticket.all"
    ARTICLE_INTERNAL = "article.internal"
    ARTICLE_ALL = "article.all"
    PERSONAL_DATA = "personal_data"


P = Permission
_DESK = {
    *(P.SEARCH, P.ARTICLE_READ, P.ARTICLE_FEEDBACK, P.ARTICLE_INTERNAL, P.PERSONAL_DATA, P.TICKET_GROUPS),
    *(P.TICKET_CREATE, P.TICKET_READ, P.TICKET_WORK, P.TICKET_DEFLECT, P.SUGGEST, P.SLA_CHECK),
}

#: role -> the permissions it grants. Roles hold nothing beyond this table.
GRANTS: dict[str, frozenset[Permission]] = {
    "requester": frozenset(
        {P.SEARCH, P.ARTICLE_READ, P.ARTICLE_FEEDBACK, P.TICKET_CREATE, P.TICKET_READ, P.TICKET_DEFLECT}
    ),
    "agent": frozenset(_DESK),
    "engineer": frozenset(_DESK | {P.ANALYSIS}),
    "desk_lead": frozenset(_DESK | {P.ANALYSIS, P.TICKET_ALL}),
    "kb_editor": frozenset(
        {
            P.SEARCH,
            P.ARTICLE_READ,
            P.ARTICLE_FEEDBACK,
            P.ARTICLE_WRITE,
            P.REVIEW,
            P.SYNONYM_READ,
            P.SYNONYM_WRITE,
            P.DISTILL,
            P.ANALYSIS,
            P.ARTICLE_INTERNAL,
            P.ARTICLE_ALL,
        }
    ),
    "sysadmin": frozenset({P.USER_ADMIN, P.IMPORT, P.SYNONYM_READ, P.METRICS}),
    "secadmin": frozenset({P.SECURITY_ADMIN}),
    "auditadmin": frozenset({P.AUDIT_READ}),
}
#: Permissions every caller has, or that are checked by other means than roles.
UNGATED = frozenset({P.PUBLIC, P.SESSION, P.IM_WEBHOOK})


def allowed(roles: Iterable[str], permission: Permission) -> bool:
    """True when one of ``roles`` grants ``permission`` (unknown roles grant nothing)."""
    return permission in UNGATED or any(permission in GRANTS.get(role, frozenset()) for role in roles)


def holders(permission: Permission) -> list[str]:
    """The roles that grant ``permission``, in table order (for error messages and docs/security.md)."""
    return [role for role, granted in GRANTS.items() if permission in granted]


def markdown_table() -> str:
    """The permission table as Markdown (one row per permission, one column per role; ``x`` where granted), as
    printed in docs/security.md."""
    roles = list(GRANTS)
    lines = ["| permission | " + " | ".join(roles) + " |", "|---|" + "---|" * len(roles)]
    for permission in Permission:
        if permission in UNGATED:
            continue
        marks = ["x" if permission in GRANTS[role] else "" for role in roles]
        lines.append(f"| {permission.value} | " + " | ".join(marks) + " |")
    return "\n".join(lines)
