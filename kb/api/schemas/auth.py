"""Request and response bodies of /auth and /users."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kb.api.schemas.request import RequestBody


class LoginIn(RequestBody):
    """``POST /auth/login``: user name and password (``totp`` for the second factor, when enrolled)."""

    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)
    totp: str | None = Field(default=None, max_length=12)


class LoginOut(BaseModel):
    """A new session: the opaque token (also set as the ``kb_session`` cookie) and when it ends at the latest."""

    token: str
    expires_at: str
    must_change_password: bool


class PasswordIn(RequestBody):
    """``POST /auth/password``: change one's own password."""

    old: str = Field(min_length=1, max_length=1000)
    new: str = Field(min_length=1, max_length=1000)


class TotpEnrolIn(RequestBody):
    """``POST /auth/totp``: one's own password, to (re-)enrol the second factor."""

    password: str = Field(min_length=1, max_length=1000)


class RolesIn(RequestBody):
    """``PUT /security/users/{name}/roles``: the user's roles from now on."""

    roles: list[str] = Field(min_length=1, max_length=10)


class GroupsIn(RequestBody):
    """``PUT /users/{name}/groups``: the user's resolver groups from now on (may be empty)."""

    groups: list[str] = Field(max_length=50)


class PolicyIn(RequestBody):
    """``PUT /security/password-policy``: the numbers to change (the others stay)."""

    min_length: int | None = None
    min_classes: int | None = None
    history: int | None = None
    max_age_days: int | None = None


class CidrsIn(RequestBody):
    """``PUT /security/admin-cidrs``: the networks administrator routes accept (empty: any)."""

    cidrs: list[str] = Field(max_length=100)


class ServiceIn(RequestBody):
    """``POST /users/services``: a service account and its scopes; the token is answered once."""

    name: str = Field(min_length=1, max_length=120)
    scopes: list[str] = Field(min_length=1, max_length=10)


class UserIn(RequestBody):
    """``POST /users``: a new account; without ``password`` a one-time password is answered once."""

    username: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=10)
    groups: list[str] = Field(default_factory=list, max_length=50)
    password: str | None = Field(default=None, min_length=1, max_length=1000)


class UserPublic(BaseModel):
    """An account as the API shows it (never a password or hash)."""

    username: str
    roles: list[str]
    groups: list[str]
    active: bool
    must_change_password: bool
    created_at: str
    last_login_at: str | None
