"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from kb.service import KnowledgeBase


@dataclass(frozen=True)
class Principal:
    """Who is acting. Until authentication exists this is the development principal from settings."""

    username: str
    roles: tuple[str, ...]


def get_kb(request: Request) -> KnowledgeBase:
    """The app's :class:`KnowledgeBase`."""
    kb: KnowledgeBase = request.app.state.kb
    return kb


def get_current_user(request: Request) -> Principal:
    """The acting principal (development principal: ``KB_DEV_USER``, role admin)."""
    kb: KnowledgeBase = request.app.state.kb
    return Principal(kb.settings.dev_user, ("admin",))


KB = Annotated[KnowledgeBase, Depends(get_kb)]
CurrentUser = Annotated[Principal, Depends(get_current_user)]
