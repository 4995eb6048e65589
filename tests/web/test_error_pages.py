"""Error pages for browsers (the whole app in process): unknown ``/ui/...`` paths, wrong methods, refusals and
failures answer an HTML page in Chinese with the nav and the signed-in user, never the API's JSON; API paths keep
their JSON errors."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from kb.articles.content import parse_markdown
from tests.helpers import TEST_PASSWORD, TEST_USER, kb_of
from tests.web.conftest import page_login


def _is_page(answer: httpx.Response) -> bool:
    return answer.headers["content-type"].startswith("text/html")


def test_unknown_page_path_is_a_404_page_with_nav_and_user(web_client: TestClient) -> None:
    page_login(web_client)
    answer = web_client.get("/ui/no-such-page")
    assert answer.status_code == 404 and _is_page(answer)
    text = answer.text
    assert "找不到页面（404）" in text and 'data-code="not_found"' in text
    assert f'<span class="who">{TEST_USER}</span>' in text and 'href="/ui/tickets"' in text  # nav and user
    assert "Not Found" not in text and "default-src 'self'" in answer.headers["content-security-policy"]
    for page in (answer, web_client.get("/ui/tickets"), web_client.get("/")):  # as docs/security.md says
        assert page.headers["referrer-policy"] == "no-referrer"
    wrong = web_client.post("/", data={})  # the search page takes no POST
    assert wrong.status_code == 405 and _is_page(wrong) and "不支持此操作" in wrong.text


def test_api_paths_keep_their_json_errors(web_client: TestClient) -> None:
    answer = web_client.get("/no-such-api")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    assert web_client.get("/articles/999999").json()["error"] in ("unauthorized", "not_found")


def test_unknown_page_without_a_session_offers_the_login(web_client: TestClient) -> None:
    answer = web_client.get("/ui/nothing/here")
    assert answer.status_code == 404 and _is_page(answer)
    assert 'href="/ui/login?next=' in answer.text and 'class="who"' not in answer.text


def test_refusals_read_in_chinese_with_the_detail_folded(web_client: TestClient) -> None:
    kb = kb_of(web_client)
    kb.accounts.create("asker.e", ["requester"], "tests", password=TEST_PASSWORD, must_change=False)
    page_login(web_client, "asker.e")
    forbidden = web_client.get("/ui/review")
    assert forbidden.status_code == 403 and "没有权限（403）" in forbidden.text
    assert "您的角色没有这项操作的权限" in forbidden.text and "<summary>技术细节</summary>" in forbidden.text
    assert '<span class="who">asker.e</span>' in forbidden.text
    missing = web_client.get("/ui/articles/987654")
    assert missing.status_code == 404 and "要找的内容不存在" in missing.text
    bad = web_client.get("/ui/articles/abc")
    assert bad.status_code == 422 and "输入有误（422）" in bad.text


def test_an_unexpected_failure_is_a_500_page_naming_the_request(
    web_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    page_login(web_client)
    kb = kb_of(web_client)
    article = kb.writer.create(parse_markdown("# 打印机脱机\n\n重启后台处理程序。\n"), "tests").article
    assert article is not None

    def broken(ids: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(kb.feedback, "stats", broken)  # a fault injected into a real page's use case
    answer = web_client.get(f"/ui/articles/{article.id}")
    assert answer.status_code == 500 and _is_page(answer)
    assert "系统出错（500）" in answer.text and answer.headers["x-request-id"] in answer.text
    assert "disk on fire" not in answer.text and 'class="who"' in answer.text


def test_an_article_id_beyond_the_id_range_in_the_close_form_is_a_422_page(web_client: TestClient) -> None:
    """Session 8's outside tester: ``articles=9223372036854775808`` in the close form raised OverflowError (500)."""
    from tests.web.conftest import csrf_of

    page_login(web_client)
    made = web_client.post("/tickets", json={"title": "打印机卡纸", "service": "日常服务"})
    assert made.status_code == 201, made.text
    ticket = made.json()["ticket"]["id"]
    token = csrf_of(web_client)
    for ids in ("9223372036854775808", "1, 2147483648", "0"):
        form = {"resolution": "已处理", "root_cause": "硬件", "articles": ids, "csrf_token": token}
        answer = web_client.post(f"/ui/tickets/{ticket}/close", data=form, follow_redirects=False)
        assert answer.status_code == 422 and _is_page(answer), (ids, answer.status_code)
    assert kb_of(web_client).desk.get(ticket).status != "closed"
