"""The pages over HTTP (the whole app in process): every page declares one permission, anonymous visitors are sent
to the login page, CSRF is checked before anything changes, bad input answers 4xx pages (never 500), and the
login page uses the same rules as POST /auth/login."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from kb.api.deps import Requires
from kb.articles.content import parse_markdown
from kb.articles.filters import ArticleFilter
from kb.config import MAX_QUERY_CHARS
from tests.helpers import NO_LICENSES, SYSADMIN_USER, TEST_PASSWORD, kb_of
from tests.web.conftest import csrf_of, page_login

pytestmark = pytest.mark.security


def _routes(client: TestClient) -> list[APIRoute]:
    from tests.api.test_access import _flatten

    routes: list[Any] = client.app.routes  # type: ignore[attr-defined]
    return [r for _, r in _flatten(routes) if isinstance(r, APIRoute)]


def _pages(client: TestClient) -> list[APIRoute]:
    return [r for r in _routes(client) if r.path == "/" or r.path.startswith("/ui/")]


def test_every_page_declares_one_permission_and_anonymous_visitors_go_to_login(web_client: TestClient) -> None:
    pages = _pages(web_client)
    assert len(pages) >= 14
    for route in pages:
        found = [d.call.permission for d in route.dependant.dependencies if isinstance(d.call, Requires)]
        assert len(found) == 1, route.path
        if found[0].value == "public" or "GET" not in route.methods:
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        answer = web_client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/ui/login?next=/")


def test_pages_never_shadow_the_api(web_client: TestClient) -> None:
    api = {r.path for r in _routes(web_client)} - {p.path for p in _pages(web_client)}
    assert {"/search", "/articles", "/tickets", "/health"} <= api
    assert not any(p.startswith("/ui") for p in api)
    assert web_client.get("/health").headers["content-type"].startswith("application/json")


def test_htmx_request_without_session_redirects_the_whole_window(web_client: TestClient) -> None:
    answer = web_client.get("/ui/search/results?q=x", headers={"HX-Request": "true"})
    assert answer.status_code == 401 and answer.headers["HX-Redirect"] == "/ui/login"


def test_login_page_then_search_page_with_csp(web_client: TestClient) -> None:
    page_login(web_client)
    kb_of(web_client).writer.create(parse_markdown(NO_LICENSES), "tests")
    page = web_client.get("/", params={"q": "远程桌面 没有可用的许可证"})
    assert page.status_code == 200
    assert "没有可用的许可证" in page.text and "<mark>" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text and "onclick" not in page.text  # no inline script anywhere


def test_login_refusals_show_the_form_with_the_api_status(web_client: TestClient) -> None:
    form = web_client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    wrong = web_client.post("/ui/login", data={"username": "dev", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "登录" in wrong.text
    no_token = web_client.post("/ui/login", data={"username": "dev", "password": TEST_PASSWORD})
    assert no_token.status_code == 403 and "csrf_failed" in no_token.text


def test_the_login_page_answers_a_right_password_without_its_code_as_a_wrong_password(web_client: TestClient) -> None:
    """Found by session 7's outside tester (as POST /auth/login): the page's details said "code needed" only when
    the password was right."""
    form = web_client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    answers = [
        web_client.post("/ui/login", data={"username": "dev", "password": password, "csrf_token": token})
        for password in (TEST_PASSWORD, "Wrong-pass-1")
    ]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].text == answers[1].text


def test_each_administrator_lands_on_a_page_they_may_use(web_client: TestClient) -> None:
    """Found by session 7's outside tester: the system administrator's ``/`` (where the login leads) was a 403 page."""
    kb = kb_of(web_client)
    for name, role in (("sec.admin", "secadmin"), ("audit.admin", "auditadmin")):
        kb.accounts.create(name, [role], "tests", password=TEST_PASSWORD, must_change=False)
        kb.accounts.enrol_totp(name)
    for name, landing in (
        (SYSADMIN_USER, "/ui/admin/users"),
        ("sec.admin", "/ui/admin/security"),
        ("audit.admin", "/ui/admin/audit"),
    ):
        web_client.cookies.clear()
        page_login(web_client, name)
        home = web_client.get("/", follow_redirects=False)
        assert (home.status_code, home.headers.get("location")) == (303, landing), name
        assert web_client.get(landing).status_code == 200, name
    web_client.cookies.clear()
    page_login(web_client)
    assert web_client.get("/", follow_redirects=False).status_code == 200  # whoever may search: the search page


def test_the_system_administrator_disables_business_accounts_only(web_client: TestClient) -> None:
    """Found by session 7's outside tester: the users page let the system administrator disable the security and
    audit administrators (and themselves)."""
    kb = kb_of(web_client)
    kb.accounts.create("sec.three", ["secadmin"], "tests", password=TEST_PASSWORD, must_change=False)
    kb.accounts.create("li.si", ["agent"], "tests", password=TEST_PASSWORD, must_change=False)
    page_login(web_client, SYSADMIN_USER)
    token = csrf_of(web_client, "/ui/admin/users")
    form = web_client.get("/ui/admin/users").text
    assert 'name="roles" value="agent"' in form and not re.search(r'name="roles" value="(sys|sec|audit)admin"', form)
    for target in ("sec.three", SYSADMIN_USER):
        refused = web_client.post(f"/ui/admin/users/{target}/active", data={"active": "no", "csrf_token": token})
        assert refused.status_code == 403 and kb.accounts.get(target).active, target
    made = web_client.post("/ui/admin/users", data={"username": "au.di", "roles": ["auditadmin"], "csrf_token": token})
    assert made.status_code == 403 and "au.di" not in {a.username for a in kb.accounts.list()}
    done = web_client.post(
        "/ui/admin/users/li.si/active", data={"active": "no", "csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303 and not kb.accounts.get("li.si").active


def test_login_never_redirects_off_site(web_client: TestClient) -> None:
    form = web_client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    from tests.helpers import totp_now

    data = {
        "username": "dev",
        "password": TEST_PASSWORD,
        "totp": totp_now(kb_of(web_client), "dev"),
        "csrf_token": token,
        "next": "//evil.example/",
    }
    answer = web_client.post("/ui/login", data=data, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_a_form_without_the_csrf_token_changes_nothing(web_client: TestClient) -> None:
    page_login(web_client)
    kb = kb_of(web_client)
    article = kb.writer.create(parse_markdown(NO_LICENSES), "tests").article
    assert article is not None
    url = f"/ui/articles/{article.id}/feedback"
    refused = web_client.post(url, data={"helpful": "yes"})
    assert refused.status_code == 403 and "csrf_failed" in refused.text
    forged = web_client.post(url, data={"helpful": "yes", "csrf_token": "0" * 64})
    assert forged.status_code == 403
    assert kb.feedback.stats([article.id])[article.id].helpful == 0
    done = web_client.post(url, data={"helpful": "yes", "csrf_token": csrf_of(web_client)}, follow_redirects=False)
    assert done.status_code == 303
    assert kb.feedback.stats([article.id])[article.id].helpful == 1
    header = web_client.post(url, data={"helpful": "no"}, headers={"X-CSRF-Token": csrf_of(web_client)})
    assert header.status_code == 200 and kb.feedback.stats([article.id])[article.id].not_helpful == 1


@pytest.mark.parametrize(
    "path",
    [
        "/?q=" + "长" * (MAX_QUERY_CHARS + 1),
        "/ui/articles/0",
        "/ui/articles/abc",
        "/ui/articles/999999",
        "/ui/tickets/999999",
        "/ui/tickets?cursor=not-a-cursor",
    ],
)
def test_bad_input_answers_a_4xx_page(web_client: TestClient, path: str) -> None:
    page_login(web_client)
    answer = web_client.get(path)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert 'class="error"' in answer.text


def test_a_one_time_password_must_be_changed_on_the_password_page(web_client: TestClient) -> None:
    kb = kb_of(web_client)
    _, one_time = kb.accounts.create("newbie", ["agent"], "tests")
    assert one_time is not None
    form = web_client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    data = {"username": "newbie", "password": one_time, "csrf_token": token}
    answer = web_client.post("/ui/login", data=data, follow_redirects=False)
    assert answer.headers["location"] == "/ui/password"
    assert web_client.get("/", follow_redirects=False).headers["location"] == "/ui/password"
    changed = web_client.post(
        "/ui/password",
        data={"old": one_time, "new": "Lan-Zhang-42-new!", "csrf_token": csrf_of(web_client, "/ui/password")},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert web_client.get("/").status_code == 200


def test_ticket_forms_assign_escalate_resolve_and_close_with_the_article_used(web_client: TestClient) -> None:
    page_login(web_client)
    kb = kb_of(web_client)
    article = kb.writer.create(parse_markdown(NO_LICENSES), "tests").article
    assert article is not None
    token = csrf_of(web_client)
    made = web_client.post(
        "/ui/tickets",
        data={"title": "远程桌面 没有可用的许可证", "service": "日常服务", "channel": "phone", "csrf_token": token},
        follow_redirects=False,
    )
    assert made.status_code == 303
    tid = int(made.headers["location"].rsplit("/", 1)[1])
    page = web_client.get(f"/ui/tickets/{tid}")
    assert "没有可用的许可证" in page.text and 'id="proposed-group"' in page.text
    steps = [
        ("assign", {"group": "应用组"}),
        ("escalate", {"reason": "一线无法处理"}),
        ("status", {"status": "in_progress"}),
        ("status", {"status": "resolved"}),
        ("close", {"resolution": "配置 RD 许可服务", "root_cause": "未配置许可证服务器", "articles": str(article.id)}),
    ]
    for action, data in steps:
        answer = web_client.post(
            f"/ui/tickets/{tid}/{action}", data={**data, "csrf_token": token}, follow_redirects=False
        )
        assert answer.status_code == 303, (action, answer.text)
    ticket = kb.desk.get(tid)
    assert ticket.status == "closed" and ticket.tier == "L2" and ticket.resolver_group == "应用组"
    assert str(ticket.external_id) in kb.feedback.stats([article.id])[article.id].tickets
    again = web_client.post(f"/ui/tickets/{tid}/escalate", data={"reason": "x", "csrf_token": token})
    assert again.status_code == 409 and 'class="error"' in again.text  # a refused move is a page, not a 500


def test_live_suggestions_fragment_follows_the_note(web_client: TestClient) -> None:
    page_login(web_client)
    kb = kb_of(web_client)
    kb.writer.create(parse_markdown(NO_LICENSES), "tests")
    from kb.desk.workflow import NewTicket

    tid = kb.tickets.take_in(NewTicket(title="电脑连不上", description="", service="日常服务"), "t").ticket.id
    fragment = web_client.get(f"/ui/tickets/{tid}/suggestions", params={"note": "远程桌面 没有可用的许可证"})
    assert fragment.status_code == 200 and "没有可用的许可证" in fragment.text
    assert "<html" not in fragment.text


def test_an_oversized_form_is_refused_unread(web_client: TestClient) -> None:
    page_login(web_client)
    big = "长" * 400_000
    answer = web_client.post("/ui/editor", data={"body": big, "csrf_token": csrf_of(web_client)})
    assert answer.status_code == 413 and "payload_too_large" in answer.text
    assert kb_of(web_client).store.list_articles(ArticleFilter(statuses=()), 0, 10)[1] == 0


@pytest.mark.parametrize("query", ["?", "的", "！？。", "   -  ", "\u3000"])
def test_queries_without_terms_answer_a_page_not_a_500(web_client: TestClient, query: str) -> None:
    page_login(web_client)
    article = kb_of(web_client).writer.create(parse_markdown(NO_LICENSES), "tests").article
    assert article is not None
    for path, params in (
        ("/", {"q": query}),
        ("/ui/debug/search", {"q": query}),
        ("/ui/debug/search", {"q": query, "article": str(article.id)}),
    ):
        answer = web_client.get(path, params=params)
        assert answer.status_code == 200, (path, params, answer.text[:300])
        assert answer.headers["content-type"].startswith("text/html")


def test_answers_are_not_stored_by_browsers_or_proxies_but_static_files_may_be(web_client: TestClient) -> None:
    """Session 10's outside tester: authenticated answers carried no Cache-Control, so a shared proxy or the
    browser's disk cache could keep a ticket page (OWASP ASVS 4.0 8.2.1)."""
    page_login(web_client)
    article = kb_of(web_client).writer.create(parse_markdown(NO_LICENSES), "tests").article
    assert article is not None
    for path in ("/", f"/ui/articles/{article.id}", f"/articles/{article.id}", "/search?q=远程桌面", "/nowhere"):
        assert web_client.get(path).headers["cache-control"] == "no-store", path
    static = web_client.get("/ui/static/style.css")
    assert static.status_code == 200 and static.headers["cache-control"] == "no-cache" and static.headers["etag"]


def test_an_editor_save_from_an_older_version_is_refused_and_keeps_the_newer_text(web_client: TestClient) -> None:
    page_login(web_client)
    kb = kb_of(web_client)
    article = kb.writer.create(parse_markdown(NO_LICENSES), "tests").article
    assert article is not None
    opened = web_client.get("/ui/editor", params={"id": article.id})
    version = re.search(r'name="version" value="(\d+)"', opened.text)
    assert version is not None and int(version.group(1)) == article.version
    form = {"id": str(article.id), "version": version.group(1), "csrf_token": csrf_of(web_client)}
    kb.writer.update(article.id, parse_markdown("# 另一位编辑的修改\n\n1. 重新申请许可证。\n"), "other")  # meanwhile
    stale = web_client.post(
        "/ui/editor", data={**form, "body": "# 旧版本上的修改\n\n1. 重启。\n"}, follow_redirects=False
    )
    assert stale.status_code == 409 and 'class="error"' in stale.text
    stored = kb.store.get(article.id)
    assert stored.title == "另一位编辑的修改" and stored.version == article.version + 1
    fresh = {**form, "version": str(stored.version), "body": "# 新版本上的修改\n\n1. 重启。\n"}
    saved = web_client.post("/ui/editor", data=fresh, follow_redirects=False)
    assert saved.status_code == 303 and kb.store.get(article.id).title == "新版本上的修改"


def test_the_editor_cannot_save_or_move_an_article_its_user_may_not_read(
    web_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workbench's writes check, as ``PUT /articles/{id}`` does, that the user may read the article (an editor
    role without ``article.all``, as a deployment could define it, and an article restricted to another group)."""
    from kb.identity.permissions import GRANTS
    from kb.identity.permissions import Permission as P

    kb = kb_of(web_client)
    text = "---\nvisibility: restricted\nrestricted_to: [安全组]\n---\n# 带外管理口令\n\n安全组专用。\n"
    secret = kb.writer.create(parse_markdown(text), "t").article
    assert secret is not None
    monkeypatch.setitem(GRANTS, "kb_editor", GRANTS["kb_editor"] - {P.ARTICLE_ALL})
    page_login(web_client)
    token = csrf_of(web_client)
    saved = web_client.post(
        "/ui/editor",
        data={"id": str(secret.id), "version": "1", "body": "# 覆盖\n\n改写。\n", "csrf_token": token},
        follow_redirects=False,
    )
    moved = web_client.post(
        f"/ui/articles/{secret.id}/status", data={"status": "retired", "csrf_token": token}, follow_redirects=False
    )
    proposal = f"---\nproposal: update\ntarget_article: {secret.id}\n---\n# 更新建议\n\n新口令。\n"
    count = kb.store.count()
    proposed = web_client.post("/ui/editor", data={"body": proposal, "csrf_token": token}, follow_redirects=False)
    for answer in (saved, moved):
        assert answer.status_code == 404 and "带外" not in answer.text
    assert proposed.status_code == 422 and "带外" not in proposed.text and "安全组" not in proposed.text
    assert kb.store.count() == count  # a proposal about it, which would take its visibility, is not stored
    stored = kb.store.get(secret.id)
    assert (stored.title, stored.version, stored.status) == ("带外管理口令", 1, secret.status)


def test_the_review_page_lists_only_drafts_and_proposals_its_user_may_read(
    web_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/ui/review`` lists drafts, articles in review and update proposals with the viewer's filter, as ``GET
    /articles?status=draft`` does (found by session 14's outside tester: titles of restricted drafts were shown)."""
    from kb.identity.permissions import GRANTS
    from kb.identity.permissions import Permission as P

    kb = kb_of(web_client)
    hidden = "---\nvisibility: restricted\nrestricted_to: [安全组]\n---\n"
    kb.writer.create(parse_markdown(hidden + "# 机密草稿DRAFTQQ\n\n草稿。\n", status="draft"), "t")
    kb.writer.create(parse_markdown(hidden + "# 机密审核INREVQQ\n\n审核中。\n", status="in_review"), "t")
    target = kb.writer.create(parse_markdown(hidden + "# 机密目标TARGETQQ\n\n正文。\n"), "t").article
    assert target is not None
    meta = {"proposal": "update", "target_article": target.id}
    kb.writer.create(parse_markdown("# 更新建议PROPQQ\n\n新正文。\n", status="draft", meta=meta), "t")
    kb.writer.create(parse_markdown("# 可见草稿OPENQQ\n\n草稿。\n", status="draft"), "t")
    monkeypatch.setitem(GRANTS, "kb_editor", GRANTS["kb_editor"] - {P.ARTICLE_ALL})
    page_login(web_client)
    page = web_client.get("/ui/review")
    assert page.status_code == 200 and "OPENQQ" in page.text
    for marker in ("DRAFTQQ", "INREVQQ", "TARGETQQ", "PROPQQ"):
        assert marker not in page.text, marker
