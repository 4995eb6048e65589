"""Admin pages for the roles of the identity issue: users and their roles (``/ui/admin/users``, sysadmin) and the
audit trail viewer (``/ui/admin/audit``, auditadmin only). They call the use cases of ``/users`` and ``/audit``;
reading the trail is itself audited (``audit.read``), as through the API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from kb.api.deps import KB, Audit, CurrentUser, requires
from kb.identity.audit import as_row
from kb.identity.permissions import Permission as P
from kb.identity.roles import ADMIN_ROLES, ROLES
from kb.models import as_utc
from kb.web.routing import PageRoute
from kb.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Name = Annotated[str, Form(min_length=1, max_length=120)]
#: The roles the users page offers: the business roles (administrators' accounts are the console's,
#: kb.identity.sysadmin).
BUSINESS_ROLES = tuple(r for r in ROLES if r not in ADMIN_ROLES)
#: Audit rows per page of the viewer.
AUDIT_PAGE = 100


@router.get("/ui/admin/users", dependencies=[requires(P.USER_ADMIN)])
def users(kb: KB, user: CurrentUser, request: Request) -> Response:
    """Every account with its roles, groups, state and last login; the form to add one."""
    return render(
        request, "admin_users.html", user=user, accounts=kb.accounts.list(), roles=BUSINESS_ROLES, created=None
    )


@router.post("/ui/admin/users", dependencies=[requires(P.USER_ADMIN)])
def create_user(
    kb: KB,
    user: CurrentUser,
    audit: Audit,
    request: Request,
    username: Name,
    roles: Annotated[list[str], Form(min_length=1, max_length=len(ROLES))],
    groups: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Create an account (``kb.accounts.create``, as ``POST /users``) and show its one-time password once."""
    names = [g.strip() for g in groups.replace("，", ",").split(",") if g.strip()]
    account, once = kb.accounts.create(username, roles, user.username, groups=names, context=audit)
    return render(
        request,
        "admin_users.html",
        201,
        user=user,
        accounts=kb.accounts.list(),
        roles=BUSINESS_ROLES,
        created=(account.username, once),
    )


@router.post("/ui/admin/users/{username}/active", dependencies=[requires(P.USER_ADMIN)])
def set_active(
    kb: KB,
    user: CurrentUser,
    audit: Audit,
    username: Annotated[str, Path(max_length=120)],
    active: Annotated[str, Form(pattern="^(yes|no)$")],
) -> Response:
    """Enable or disable an account (``kb.accounts.set_active``)."""
    kb.accounts.set_active(username, active == "yes", audit)
    return RedirectResponse("/ui/admin/users", status_code=303)


@router.get("/ui/admin/audit", dependencies=[requires(P.AUDIT_READ)])
def audit_viewer(
    kb: KB,
    user: CurrentUser,
    audit: Audit,
    request: Request,
    actor: Annotated[str, Query(max_length=120)] = "",
    event: Annotated[str, Query(max_length=120)] = "",
    result: Annotated[str, Query(pattern="^(|success|failure|denied)$")] = "",
    since: dt.date | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """The audit trail, newest first, filtered by actor, event, result and day (``kb.audit.query``)."""
    start = as_utc(dt.datetime.combine(since, dt.time())) if since else None
    total, rows = kb.audit.query(
        actor=actor or None, event=event or None, result=result or None, since=start, limit=AUDIT_PAGE, offset=offset
    )
    filters = f"actor={actor} event={event} result={result} offset={offset} limit={AUDIT_PAGE}"
    kb.audit.write(audit, "audit.read", "audit_events", reason=filters)
    form = {"actor": actor, "event": event, "result": result, "since": since.isoformat() if since else ""}
    return render(
        request,
        "admin_audit.html",
        user=user,
        total=total,
        rows=[as_row(r) for r in rows],
        form=form,
        offset=offset,
        page=AUDIT_PAGE,
    )
