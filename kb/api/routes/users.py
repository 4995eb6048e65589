"""Accounts for the 系统管理员 (/users)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from kb.api.deps import KB, Audit, CurrentUser, requires
from kb.api.guard import GuardedRoute
from kb.api.schemas.auth import GroupsIn, ServiceIn, UserIn, UserPublic
from kb.identity.permissions import Permission as P

router = APIRouter(prefix="/users", tags=["users"], route_class=GuardedRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[requires(P.USER_ADMIN)],
)
def create_user(kb: KB, user: CurrentUser, audit: Audit, payload: UserIn) -> dict[str, Any]:
    """Create an account (409 for an existing name or two administrator roles). Without ``password`` the answer
    carries ``one_time_password`` once; with or without it, the user must change it at first login (a password
    chosen by an administrator is known to someone else: :meth:`kb.identity.accounts.AccountStore.create`)."""
    account, once = kb.accounts.create(
        payload.username,
        payload.roles,
        user.username,
        groups=payload.groups,
        password=payload.password,
        context=audit,
    )
    answer: dict[str, Any] = {"user": UserPublic.model_validate(account.as_dict()).model_dump()}
    if once is not None:
        answer["one_time_password"] = once
    return answer


@router.get("", dependencies=[requires(P.USER_ADMIN)])
def list_users(kb: KB, user: CurrentUser) -> dict[str, Any]:
    """All accounts by name."""
    return {"items": [UserPublic.model_validate(a.as_dict()).model_dump() for a in kb.accounts.list()]}


@router.post("/services", status_code=status.HTTP_201_CREATED, dependencies=[requires(P.USER_ADMIN)])
def create_service(kb: KB, user: CurrentUser, audit: Audit, payload: ServiceIn) -> dict[str, Any]:
    """A service account for an integration with these scopes; ``token`` (for ``Authorization: Bearer``) is
    answered once and stored only as its SHA-256. 409 for an existing name, 422 for a scope not allowed."""
    account, token = kb.service_tokens.create(payload.name, payload.scopes, audit)
    return {"service": account.as_dict(), "token": token}


@router.get("/services", dependencies=[requires(P.USER_ADMIN)])
def list_services(kb: KB, user: CurrentUser) -> dict[str, Any]:
    """Every service account (never a token)."""
    return {"items": [a.as_dict() for a in kb.service_tokens.list()]}


@router.delete("/services/{name}", dependencies=[requires(P.USER_ADMIN)])
def revoke_service(kb: KB, user: CurrentUser, audit: Audit, name: str) -> dict[str, Any]:
    """Revoke a service account's token at once (404 unknown)."""
    return {"service": kb.service_tokens.revoke(name[:120], audit).as_dict()}


@router.put("/{username}/groups", dependencies=[requires(P.USER_ADMIN)])
def set_groups(kb: KB, user: CurrentUser, audit: Audit, username: str, payload: GroupsIn) -> dict[str, Any]:
    """Give a user exactly these resolver groups (404 unknown user); audited as ``user.groups``."""
    account = kb.accounts.set_groups(username[:200], payload.groups, audit)
    return {"user": UserPublic.model_validate(account.as_dict()).model_dump()}
