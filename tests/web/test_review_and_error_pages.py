"""In a real browser: the review queue's update proposals with their diff, and the error pages (404 for an unknown
page, with the nav and the signed-in user; Chinese ticket and article words)."""

from __future__ import annotations

from tests.web.conftest import Server, shot


def test_review_queue_lists_the_update_proposal_with_its_diff(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/ui/review")
    proposal = page.locator(f"#proposals article[data-id='{server.proposal_id}']")
    assert proposal.locator("a.target").get_attribute("href") == f"/ui/articles/{server.licensing_id}"
    added = proposal.locator(".diff .add").all_inner_texts()
    assert any("重新激活服务器" in line for line in added), added
    assert proposal.get_by_role("button", name="接受并更新文章").is_visible()
    assert proposal.get_by_role("button", name="拒绝").is_visible()
    assert page.locator("#drafts", has_text="更新建议").count() == 0  # not listed again among the drafts
    shot(page, "review-proposals", full_page=True)


def test_unknown_page_is_a_404_page_with_nav_and_user(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    answer = page.goto("/ui/no-such-page")
    assert answer is not None and answer.status == 404
    assert page.locator("h1").inner_text() == "找不到页面（404）"
    assert page.locator("header nav a").count() >= 3 and page.locator("header .who").inner_text() == "dev"
    shot(page, "not-found")


def test_article_facts_read_in_chinese(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/ui/articles/{server.licensing_id}")
    facts = dict(
        zip(page.locator("dl.facts dt").all_inner_texts(), page.locator("dl.facts dd").all_inner_texts(), strict=True)
    )
    assert facts["状态"] == "已发布" and facts["可见范围"] in ("公开", "内部", "受限"), facts
    assert facts["类型"] in ("文章", "故障排查", "操作指南", "常见问题", "参考", "已知错误", "事后复盘"), facts


def test_a_refused_live_request_shows_its_error_in_place(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    too_long = "远" * 1001  # over the longest query (1000 characters): the results fragment answers 422
    page.evaluate("q => htmx.ajax('GET', '/ui/search/results?q=' + encodeURIComponent(q), '#results')", too_long)
    error = page.locator("#results section.error")
    error.wait_for()
    assert error.get_attribute("data-status") == "422" and "输入有误" in error.inner_text()
