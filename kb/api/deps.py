"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from kb.errors import ForbiddenError
from kb.service import KnowledgeBase

#: Roles that may read and search articles that are not published (drafts, reviews in progress, retired).
EDITOR_ROLES = ("editor", "admin")


@dataclass(frozen=True)
class Principal:
    """Who is acting. Until authentication exists this is the development principal from settings."""

    username: str
    roles: tuple[str, ...]

    def require_editor(self, what: str) -> None:
        """Raise :class:`ForbiddenError` unless the principal has an editor role; ``what`` names the action."""
        if not set(self.roles) & set(EDITOR_ROLES):
            raise ForbiddenError(
                f"{what} needs the editor role; {self.username} has {', '.join(self.roles) or 'none'}."
            )


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
