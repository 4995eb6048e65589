"""Synonym groups used for query expansion: list, add, remove (changes apply to the next query)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, status

from kb.api.deps import KB, CurrentUser, requires
from kb.api.guard import GuardedRoute
from kb.api.params import GroupId
from kb.api.schemas.synonyms import SynonymGroupCreate
from kb.identity.permissions import Permission as P

router = APIRouter(prefix="/synonyms", tags=["synonyms"], route_class=GuardedRoute)


@router.get("", dependencies=[requires(P.SYNONYM_READ)])
def list_groups(kb: KB, user: CurrentUser) -> list[dict[str, Any]]:
    """All synonym groups."""
    return [asdict(g) for g in kb.synonyms.groups()]


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[requires(P.SYNONYM_WRITE)])
def add_group(kb: KB, user: CurrentUser, payload: SynonymGroupCreate) -> dict[str, Any]:
    """Add a group; it expands queries from the next search on, with no re-indexing."""
    return asdict(kb.synonyms.add(payload.terms, user.username))


@router.delete("/{group_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[requires(P.SYNONYM_WRITE)])
def remove_group(kb: KB, user: CurrentUser, group_id: GroupId) -> None:
    """Remove a group; 404 when it does not exist."""
    kb.synonyms.remove(group_id, user.username)
