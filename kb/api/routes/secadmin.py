"""The security administrator's routes (/security, 安全管理员): roles, unlocks, the password policy and the
administrator IP allow-list. Every change is audited; only ``secadmin`` holds ``security.admin``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kb.api.deps import KB, Audit, CurrentUser, requires
from kb.api.guard import GuardedRoute
from kb.api.schemas.auth import CidrsIn, PolicyIn, RolesIn, UserPublic
from kb.identity.names import fold_name
from kb.identity.permissions import Permission as P

router = APIRouter(prefix="/security", tags=["security"], route_class=GuardedRoute)


@router.put("/users/{username}/roles", dependencies=[requires(P.SECURITY_ADMIN)])
def set_roles(kb: KB, user: CurrentUser, audit: Audit, username: str, payload: RolesIn) -> dict[str, Any]:
    """Give a business account exactly these business roles and end its sessions (404 unknown user, 422 unknown
    role, 409 two administrator roles, 403 one's own roles or an administrator role or account: the console's)."""
    account = kb.security.set_roles(username[:200], payload.roles, audit)
    return {"user": UserPublic.model_validate(account.as_dict()).model_dump()}


@router.get("/lockouts", dependencies=[requires(P.SECURITY_ADMIN)])
def lockouts(kb: KB, user: CurrentUser) -> dict[str, Any]:
    """The accounts locked now after failed logins, soonest unlock first; ``unknown_names_locked`` counts the
    locked names that are no account (not listed: such a name may be a mistyped password)."""
    return {
        "lockouts": [
            {"username": lock.username, "locked_until": lock.until.isoformat()} for lock in kb.security.lockouts()
        ],
        "unknown_names_locked": kb.security.unknown_lockouts(),
    }


@router.post("/users/{username}/unlock", dependencies=[requires(P.SECURITY_ADMIN)])
def unlock(kb: KB, user: CurrentUser, audit: Audit, username: str) -> dict[str, Any]:
    """Clear a lockout after failed logins; ``unlocked`` is false when the name was not locked."""
    return {"username": fold_name(username[:200]), "unlocked": kb.security.unlock(username[:200], audit)}


@router.get("/password-policy", dependencies=[requires(P.SECURITY_ADMIN)])
def password_policy(kb: KB, user: CurrentUser) -> dict[str, int]:
    """The password policy in force."""
    return kb.security.password_policy()


@router.put("/password-policy", dependencies=[requires(P.SECURITY_ADMIN)])
def set_password_policy(kb: KB, user: CurrentUser, audit: Audit, payload: PolicyIn) -> dict[str, int]:
    """Change numbers of the password policy (422 below the 等保二级 floor); answers the policy in force."""
    return kb.security.set_password_policy(payload.model_dump(exclude_none=True), audit)


@router.get("/admin-cidrs", dependencies=[requires(P.SECURITY_ADMIN)])
def admin_cidrs(kb: KB, user: CurrentUser) -> dict[str, list[str]]:
    """The networks administrator routes accept (empty: any)."""
    return {"cidrs": kb.security.admin_cidrs()}


@router.put("/admin-cidrs", dependencies=[requires(P.SECURITY_ADMIN)])
def set_admin_cidrs(kb: KB, user: CurrentUser, audit: Audit, payload: CidrsIn) -> dict[str, list[str]]:
    """Store the administrator allow-list (422 for a bad network or one that shuts out the caller)."""
    return {"cidrs": kb.security.set_admin_cidrs(payload.cidrs, audit)}
