"""The roles and the 三员 separation (GB/T 22239-2019 7.1.4.2 c 管理用户的最小权限、权限分离).

::

    requester    own tickets, public articles, feedback
    agent        L1 desk: tickets of their groups, internal articles, notes, escalation
    engineer     L2/L3: as agent, and the operations analysis
    desk_lead    值班长 / desk lead: as engineer, and every ticket whatever its group
    kb_editor    drafts, review, publish, distillation
    sysadmin     系统管理员: users, settings, imports, index (not the audit trail)
    secadmin     安全管理员: roles, password policy, lockouts, IP allow-lists
    auditadmin   审计管理员: read and export the audit trail only

One person may hold at most one of the three administrator roles, and an administrator role is held alone, however
the account gets its roles (:func:`check_roles`); nobody changes their own roles (:func:`check_assignment`). A resolver
group may not be named like a role (``restricted_to`` lists both, so such a group would grant what only a role
should). What each role may do is the permission table in :mod:`kb.identity.permissions`.
"""

from __future__ import annotations

from collections.abc import Iterable

from kb.errors import ConflictError, ForbiddenError, InvalidInputError
from kb.identity.names import fold_name
from kb.identity.permissions import GRANTS

#: Every role, in the order of the permission table.
ROLES = tuple(GRANTS)
#: The 三员: system, security and audit administrator.
ADMIN_ROLES = ("sysadmin", "secadmin", "auditadmin")


def check_roles(roles: Iterable[str]) -> list[str]:
    """The roles, deduplicated in :data:`ROLES` order: the one rule for every way an account gets roles (the
    console's ``kb users create`` and ``roles``, ``POST /users``, the users page, the security administrator).

    Raises:
        InvalidInputError: an unknown role, or none at all.
        ConflictError: two or more of :data:`ADMIN_ROLES`, or one of them with any other role (三员 separation,
            409: an administrator reads no business data, GB/T 22239-2019 7.1.4.2 c). Found by session 7's outside
            tester: the console let an account be desk lead, editor and system administrator at once.
    """
    wanted = set(roles)
    unknown = sorted(wanted - set(ROLES))
    if unknown:
        raise InvalidInputError(f"Unknown role {', '.join(unknown)}; the roles are {', '.join(ROLES)}.")
    if not wanted:
        raise InvalidInputError(f"A user needs at least one role of {', '.join(ROLES)}.")
    admins = [r for r in ADMIN_ROLES if r in wanted]
    if len(admins) > 1:
        raise ConflictError(
            f"One person cannot hold two administrator roles ({' and '.join(admins)}): system, security and audit "
            "administration are kept apart (三员分立)."
        )
    checked = [r for r in ROLES if r in wanted]
    if admins and len(checked) > 1:
        others = ", ".join(r for r in checked if r not in ADMIN_ROLES)
        raise ConflictError(
            f"An administrator role ({admins[0]}) is held alone, not with {others}: administrators do not work "
            "with the desk's data (三员分立)."
        )
    return checked


def check_assignment(roles: Iterable[str], actor: str, target: str, current: Iterable[str] = ()) -> list[str]:
    """:func:`check_roles` for the security administrator giving ``target`` (who holds ``current`` now) these roles
    over the API or the pages (``actor``: who does it). The console (``kb users roles``) uses :func:`check_roles`.

    Raises:
        InvalidInputError, ConflictError: as :func:`check_roles`.
        ForbiddenError: ``actor`` is ``target`` (a security administrator could otherwise make themselves the
            auditor, or anything else); or ``roles`` or ``current`` hold one of :data:`ADMIN_ROLES`: accounts of
            the 三员 are made and changed on the server's console only (GB/T 22239-2019 7.1.5.1). Found by
            session 8's outside tester: the security administrator made a second system administrator and
            demoted the only system administrator and auditor.
    """
    checked = check_roles(roles)
    if fold_name(actor) == fold_name(target):
        raise ForbiddenError("Nobody changes their own roles; another security administrator must do it.")
    if is_admin(checked) or is_admin(current):
        raise ForbiddenError(
            f"Administrator roles ({', '.join(ADMIN_ROLES)}) are given and taken on the server's console only "
            "(kb users roles); here the security administrator gives business roles to business accounts."
        )
    return checked


def is_admin(roles: Iterable[str]) -> bool:
    """Whether ``roles`` hold one of :data:`ADMIN_ROLES`."""
    return any(r in ADMIN_ROLES for r in roles)


def check_groups(groups: Iterable[str]) -> list[str]:
    """The resolver groups, stripped, deduplicated and sorted.

    Raises:
        InvalidInputError: a name blank or over 120 characters, or the name of a role (a group named ``kb_editor``
            would open articles restricted to that role).
    """
    clean = sorted({g.strip() for g in groups})
    if any(not g or len(g) > 120 for g in clean):
        raise InvalidInputError("A group name has 1 to 120 characters.")
    named = sorted({g for g in clean if fold_name(g) in ROLES})
    if named:
        raise InvalidInputError(f"A group cannot be named like a role: {', '.join(named)}.")
    return clean
