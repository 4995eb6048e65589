"""Accounts for the 系统管理员 (/users)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from kb.api.deps import KB, Audit, CurrentUser, requires
from kb.api.guard import GuardedRoute
from kb.api.schemas.auth import UserIn, UserPublic
from kb.identity.permissions import Permission as P

router = APIRouter(prefix="/users", tags=["users"], route_class=GuardedRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[requires(P.USER_ADMIN)],
)
def create_user(kb: KB, user: CurrentUser, audit: Audit, payload: UserIn) -> dict[str, Any]:
    """Create an account (409 for an existing name or two administrator roles). Without ``password`` the answer
    carries ``one_time_password`` once; the user must change it at first login."""
    account, once = kb.accounts.create(
        payload.username, payload.roles, user.username, groups=payload.groups, password=payload.password, context=audit
    )
    answer: dict[str, Any] = {"user": UserPublic.model_validate(account.as_dict()).model_dump()}
    if once is not None:
        answer["one_time_password"] = once
    return answer


@router.get("", dependencies=[requires(P.USER_ADMIN)])
def list_users(kb: KB, user: CurrentUser) -> dict[str, Any]:
    """All accounts by name."""
    return {"items": [UserPublic.model_validate(a.as_dict()).model_dump() for a in kb.accounts.list()]}
