"""Access control (访问控制, GB/T 22239-2019 7.1.4.2): one declared permission per route, 401 for anonymous
callers, least privilege per role, the signed IM webhook."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute, _IncludedRouter
from fastapi.testclient import TestClient

from kb.api.deps import Requires
from kb.identity.permissions import GRANTS, UNGATED, Permission, allowed, markdown_table
from kb.identity.roles import ADMIN_ROLES, ROLES
from tests.helpers import ROOT, anonymous, kb_of, login, onebot, post_im

pytestmark = pytest.mark.security

GOOD = "Lan-Zhang-42"
#: Starlette's documentation routes (not API routes); production mode is to turn them off (issue 11 item 7).
DOC_ROUTES = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}


def _permission(route: APIRoute) -> Permission | None:
    found = [d.call.permission for d in route.dependant.dependencies if isinstance(d.call, Requires)]
    assert len(found) <= 1, f"{route.path} declares {found}"
    return found[0] if found else None


def _flatten(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full path, route) of every route, descending into included routers (FastAPI keeps them nested)."""
    for route in routes:
        if isinstance(route, _IncludedRouter):
            yield from _flatten(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + route.path, route


def _api_routes(client: TestClient) -> list[APIRoute]:
    routes = list(_flatten(client.app.routes))  # type: ignore[attr-defined]
    others = {path for path, r in routes if not isinstance(r, APIRoute)}
    assert others <= DOC_ROUTES, others
    assert all(path == r.path for path, r in routes)  # no router is included under an extra prefix
    return [r for _, r in routes if isinstance(r, APIRoute)]


def test_every_route_declares_one_permission(client: TestClient) -> None:
    routes = _api_routes(client)
    assert len(routes) > 40
    missing = [f"{sorted(r.methods)} {r.path}" for r in routes if _permission(r) is None]
    assert missing == []
    public = sorted(f"{m} {r.path}" for r in routes if _permission(r) is Permission.PUBLIC for m in r.methods)
    assert public == ["GET /health", "HEAD /health", "POST /auth/login"]


def test_anonymous_calls_to_every_route_answer_401(client: TestClient) -> None:
    nobody = anonymous(client)
    checked = 0
    for route in _api_routes(client):
        if _permission(route) is Permission.PUBLIC:
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in route.methods:
            response = nobody.request(method, path, json={})
            assert response.status_code == 401, f"{method} {path}: {response.status_code} {response.text}"
            assert response.json()["error"] == "unauthorized" and response.json()["detail"]
            checked += 1
    assert checked > 40
    assert nobody.get("/health").status_code == 200


def test_the_table_gives_least_privilege_and_keeps_the_three_administrators_apart() -> None:
    assert tuple(GRANTS) == ROLES
    desk = {Permission.TICKET_READ, Permission.TICKET_WORK, Permission.ARTICLE_WRITE}
    for admin in ADMIN_ROLES:
        assert not GRANTS[admin] & desk, admin
    assert allowed(["sysadmin"], Permission.USER_ADMIN) and not allowed(["kb_editor"], Permission.USER_ADMIN)
    assert not allowed(["requester"], Permission.TICKET_WORK) and not allowed(["agent"], Permission.ARTICLE_WRITE)
    assert not allowed(["requester", "bogus"], Permission.IMPORT)
    assert all(allowed([], p) for p in UNGATED)


@pytest.mark.parametrize(
    ("role", "method", "path", "status"),
    [
        ("requester", "GET", "/search?q=打印机", 200),
        ("requester", "POST", "/articles", 403),
        ("requester", "GET", "/tickets/1", 404),  # not their ticket: as if it did not exist
        ("requester", "GET", "/users", 403),
        ("agent", "GET", "/tickets/1", 404),
        ("agent", "DELETE", "/articles/1", 403),
        ("agent", "POST", "/ingest/tickets?mapping=kb-zh", 403),
        ("kb_editor", "GET", "/users", 403),
        ("kb_editor", "POST", "/tickets/1/assign", 403),
        ("sysadmin", "GET", "/search?q=打印机", 403),
        ("sysadmin", "GET", "/users", 200),
        ("auditadmin", "GET", "/articles", 403),
        ("auditadmin", "GET", "/users", 403),
        ("secadmin", "GET", "/analysis?start=2026-01-01&end=2026-02-01", 403),
        ("auditadmin", "GET", "/auth/me", 200),
    ],
)
def test_each_role_reaches_only_its_routes(client: TestClient, role: str, method: str, path: str, status: int) -> None:
    kb_of(client).accounts.create(f"{role}.user", [role], "tests", password=GOOD, must_change=False)
    kb_of(client).accounts.enrol_totp(f"{role}.user")
    user = anonymous(client)
    login(user, f"{role}.user", GOOD)
    response = user.request(method, path, json={"title": "x", "body": "# x\ny"} if method == "POST" else None)
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["error"] == "forbidden" and role in response.json()["detail"]


def test_im_webhook_authenticates_by_the_onebot_signature(client: TestClient) -> None:
    event = onebot(601, "打印机卡纸了")
    _unsigned = anonymous(client).post("/intake/im", json=event)
    assert _unsigned.status_code == 401 and _unsigned.json()["error"] == "unauthorized"
    assert post_im(client, event, secret="wrong-secret").status_code == 401
    assert client.get("/tickets/1").status_code == 404  # nothing was taken in
    signed = post_im(client, event)
    assert signed.status_code == 200, signed.text
    assert client.get("/tickets/1").json()["ticket"]["title"] == "打印机卡纸了"


def test_docs_security_md_prints_the_permission_table_of_the_code() -> None:
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    printed = doc.split("<!-- permission-table -->\n")[1].split("\n<!-- /permission-table -->")[0]
    assert printed == markdown_table()
