"""The article page in a real browser (hostile Markdown renders inert; facts, versions and diff, feedback,
successor banner) and 403 pages for a user without the role."""

from __future__ import annotations

import re

from tests.helpers import SYSADMIN_USER
from tests.web.conftest import AUDITOR, Server, log_in, new_page, shot


def test_script_and_javascript_links_in_an_article_render_inert(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"/ui/articles/{server.hostile_id}")
    body = page.locator("#article-body")
    assert "<script>" in body.inner_text()  # shown as text
    assert body.locator("script").count() == 0 and body.locator("img[onerror]").count() == 0
    assert body.locator("a[href^='javascript']").count() == 0
    page.get_by_text("点我").click()
    assert page.evaluate("window.__pwned === undefined") and dialogs == []


def test_article_page_shows_facts_versions_diff_and_takes_feedback(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/ui/articles/{server.hostile_id}")
    facts = page.locator("dl.facts").inner_text()
    assert "打印" in facts and "版本" in facts
    shot(page, "article")
    page.get_by_text("与 v1 比较").click()
    added = page.locator("#diff .add").all_inner_texts()
    assert any("第三步" in line for line in added)
    shot(page, "article-diff")
    page.fill("textarea[name=comment]", "步骤清楚")
    page.get_by_role("button", name="有用", exact=True).click()
    page.locator("#feedback .ok").wait_for()
    assert "有用 1" in page.locator("#feedback").inner_text()


def test_retired_article_names_its_successor(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/ui/articles/{server.retired_id}")
    banner = page.locator("#retired")
    assert "已停用" in banner.inner_text()
    banner.get_by_role("link").click()
    page.wait_for_url(f"**/ui/articles/{server.hostile_id}")


def test_a_user_without_the_role_gets_403_pages(browser, server: Server) -> None:  # type: ignore[no-untyped-def]
    auditor = new_page(browser, server)
    try:
        log_in(auditor, server, AUDITOR, next_path="/ui/tickets")
        home = auditor.goto("/")  # an administrator's "/" leads to a page they may use
        assert home is not None and home.status == 200 and auditor.url.endswith("/ui/admin/audit")
        for path in ("/ui/tickets", f"/ui/articles/{server.licensing_id}"):
            answer = auditor.goto(path)
            assert answer is not None and answer.status == 403, path
            assert "没有权限" in auditor.locator("h1").inner_text()
        shot(auditor, "forbidden")
    finally:
        auditor.context.close()


def test_login_page(browser, server: Server) -> None:  # type: ignore[no-untyped-def]
    anonymous = new_page(browser, server)
    try:
        anonymous.goto("/?q=x")
        anonymous.wait_for_url(re.compile(r"/ui/login\?next=/%3Fq%3Dx$"))
        assert anonymous.evaluate("document.activeElement.name") == "username"
        shot(anonymous, "login")
    finally:
        anonymous.context.close()


def test_hit_testing_shows_analysis_legs_fusion_and_why_not(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/ui/debug/search?q=" + "远程桌面 没有可用的许可证" + f"&article={server.hostile_id}")
    terms = page.locator("#analysis").inner_text()
    assert "远程桌面" in terms and "许可证" in terms
    fused = page.locator("#fused tr[data-id]")
    assert fused.first.get_attribute("data-id") == str(server.licensing_id)
    assert "→" in fused.first.inner_text()  # raw and normalised scores
    assert page.locator("#leg-1 tr").count() > 2 and page.locator("#leg-2 tr").count() > 2
    why = page.locator("#why").inner_text()
    assert "恶意脚本测试文章" in why and "文章中没有" in why
    shot(page, "debug-search")


def test_review_editor_flags_missing_sections_as_you_type(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/ui/review")
    page.get_by_role("link", name="新建故障复盘").click()
    page.wait_for_url(re.compile(r"/ui/editor\?kind=post_incident_review"))
    assert page.locator("#missing").count() == 0  # the template has every section
    body = page.locator("#body")
    text = body.input_value()
    assert "## 根因" in text
    body.fill("")
    body.press_sequentially("# 10月3日 邮件服务中断复盘\n\n## 概述\n\n上午邮件无法发送。\n", delay=5)
    missing = page.locator("#missing")
    missing.wait_for()
    assert "根因" in missing.inner_text() and "改进项" in missing.inner_text()
    assert "上午邮件无法发送" in page.locator("#preview .article-body").inner_text()  # live preview
    body.press_sequentially("\n## 根因\n\n证书过期。\n", delay=5)
    page.wait_for_function("() => !document.getElementById('missing').innerText.includes('根因')")
    shot(page, "editor-review")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/ui/articles/\d+$"))
    assert "草稿" in page.locator("dl.facts").inner_text()  # a review missing sections stays a draft


def test_an_editor_retires_an_article_with_a_successor(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/ui/editor")
    page.locator("#body").fill("# 临时文章\n\n1. 重启电脑。\n")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/ui/articles/\d+$"))
    page.fill("input[name=successor]", str(server.licensing_id))
    page.get_by_role("button", name="停用").click()
    page.locator("#retired").wait_for()
    assert "客户端无法连接" in page.locator("#retired").inner_text()
    page.goto("/ui/review")
    shot(page, "review-queue")


def test_sysadmin_adds_a_user_and_the_auditor_reads_it_in_the_audit_trail(browser, server: Server) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, server)
    auditor = new_page(browser, server)
    try:
        log_in(page, server, SYSADMIN_USER, next_path="/ui/admin/users")
        page.fill("#new-user input[name=username]", "zhangwei")
        page.check("#new-user input[value=agent]")
        page.fill("#new-user input[name=groups]", "网络组")
        page.get_by_role("button", name="创建").click()
        assert "一次性密码" in page.locator("#created").inner_text()
        assert "网络组" in page.locator("#users tr[data-user=zhangwei]").inner_text()
        shot(page, "admin-users")
        assert page.goto("/ui/admin/audit").status == 403  # the sysadmin cannot read the trail (三员分立)
        log_in(auditor, server, AUDITOR, next_path="/ui/admin/audit?event=user.create")
        assert "zhangwei" in auditor.locator("#audit").inner_text()
        shot(auditor, "admin-audit")
        assert auditor.goto("/ui/admin/users").status == 403
    finally:
        page.context.close()
        auditor.context.close()
