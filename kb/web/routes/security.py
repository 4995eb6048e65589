"""The security administrator's page (``/ui/admin/security``, 安全管理员 only): lockouts (list, unlock), the roles
of each user (三员 rule: a 409 answers the error page and changes nothing), the password policy and the
administrator networks. Each form calls the use case of the matching ``/security`` API route
(:class:`kb.identity.secadmin.SecurityAdmin`), audited the same way, then goes back to the page (303)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from kb.api.deps import KB, Audit, CurrentUser, requires
from kb.identity.permissions import Permission as P
from kb.identity.roles import ADMIN_ROLES, ROLES
from kb.identity.secadmin import POLICY_FLOOR
from kb.web.routing import PageRoute
from kb.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE = "/ui/admin/security"
#: The roles the page offers: administrator roles are given on the server's console only
#: (:func:`kb.identity.roles.check_assignment`).
BUSINESS_ROLES = tuple(r for r in ROLES if r not in ADMIN_ROLES)
Name = Annotated[str, Form(min_length=1, max_length=120)]
Number = Annotated[int, Form(ge=0, le=1000)]
#: What the page says after a change (by the ``done`` query parameter of the redirect).
DONE = {
    "unlock": "已解锁。",
    "not_locked": "该账号当前没有被锁定。",
    "roles": "角色已更新。",
    "policy": "口令策略已更新，立即生效。",
    "cidrs": "管理网段已更新。",
}


@router.get(PAGE, dependencies=[requires(P.SECURITY_ADMIN)])
def security_page(
    kb: KB, user: CurrentUser, request: Request, done: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    """Locked accounts, every user's roles (a form of business roles for each business account), the password
    policy in force and the administrator networks."""
    return render(
        request,
        "admin_security.html",
        user=user,
        done=DONE.get(done, ""),
        lockouts=kb.security.lockouts(),
        accounts=kb.accounts.list(),
        roles=BUSINESS_ROLES,
        admin_roles=ADMIN_ROLES,
        policy=kb.security.password_policy(),
        floor=POLICY_FLOOR,
        cidrs=kb.security.admin_cidrs(),
    )


@router.post(f"{PAGE}/unlock", dependencies=[requires(P.SECURITY_ADMIN)])
def unlock(kb: KB, user: CurrentUser, audit: Audit, username: Name) -> Response:
    """Clear the lockout of ``username`` (``kb.security.unlock``, as ``POST /security/users/{name}/unlock``)."""
    cleared = kb.security.unlock(username, audit)
    return RedirectResponse(f"{PAGE}?done={'unlock' if cleared else 'not_locked'}", status_code=303)


@router.post(f"{PAGE}/roles", dependencies=[requires(P.SECURITY_ADMIN)])
def set_roles(
    kb: KB,
    user: CurrentUser,
    audit: Audit,
    username: Name,
    roles: Annotated[list[str] | None, Form(max_length=len(ROLES))] = None,
) -> Response:
    """Give ``username`` exactly the ticked roles (``kb.security.set_roles``, as ``PUT /security/users/{name}/roles``):
    404 unknown user, 422 no or unknown role, 409 two administrator roles, 403 an administrator role or account."""
    kb.security.set_roles(username, roles or [], audit)
    return RedirectResponse(f"{PAGE}?done=roles", status_code=303)


@router.post(f"{PAGE}/policy", dependencies=[requires(P.SECURITY_ADMIN)])
def set_policy(
    kb: KB,
    user: CurrentUser,
    audit: Audit,
    min_length: Number,
    min_classes: Number,
    history: Number,
    max_age_days: Number,
) -> Response:
    """Set the password policy (``kb.security.set_password_policy``, as ``PUT /security/password-policy``); 422 page
    below the 等保二级 floor (:data:`kb.identity.secadmin.POLICY_FLOOR`), nothing changed."""
    numbers = {"min_length": min_length, "min_classes": min_classes, "history": history, "max_age_days": max_age_days}
    kb.security.set_password_policy(numbers, audit)
    return RedirectResponse(f"{PAGE}?done=policy", status_code=303)


@router.post(f"{PAGE}/cidrs", dependencies=[requires(P.SECURITY_ADMIN)])
def set_cidrs(kb: KB, user: CurrentUser, audit: Audit, cidrs: Annotated[str, Form(max_length=10_000)] = "") -> Response:
    """Store the administrator networks, one per line or comma-separated, empty for any network
    (``kb.security.set_admin_cidrs``, as ``PUT /security/admin-cidrs``); 422 page for a bad network or a list
    without the caller's own address, nothing changed."""
    networks = [n.strip() for n in cidrs.replace("，", ",").replace(",", "\n").splitlines() if n.strip()]
    kb.security.set_admin_cidrs(networks, audit)
    return RedirectResponse(f"{PAGE}?done=cidrs", status_code=303)
