"""The search page in a real browser: the keyboard flow from load to a copied fix, live results, the
low-confidence banner, bookmarkable searches, filters."""

from __future__ import annotations

import re
from urllib.parse import quote

from tests.web.conftest import Server, shot

QUERY = "远程桌面 没有可用的许可证"


def test_keyboard_only_from_load_to_copied_fix(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    assert page.evaluate("document.activeElement.id") == "q"  # focus on load
    page.keyboard.type(QUERY)
    first = page.locator("#hits .hit").first
    first.wait_for()
    assert first.get_attribute("data-id") == str(server.licensing_id)
    assert "selected" in (first.get_attribute("class") or "")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    panel = page.locator(f"#preview .panel[data-article='{server.licensing_id}']")
    panel.wait_for()
    page.keyboard.press("c")
    page.locator("#copy-status", has_text="已复制").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("1. 打开服务器管理器并导航到“远程桌面服务”。")
    assert "2. 在“部署概述”中" in copied
    shot(page, "search-article-open")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.press("Escape")
    page.locator("body").press("/")  # the / key focuses the box from anywhere
    assert page.evaluate("document.activeElement.id") == "q"


def test_results_update_while_typing_and_address_is_bookmarkable(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/ui/search/results" in r.url else None)
    page.keyboard.type("许可证", delay=20)
    page.locator("#hits .hit").first.wait_for()
    titles_before = page.locator("#hits .hit .title").all_inner_texts()
    assert len(requests) <= 2  # debounced: three fast keys, not three requests
    page.keyboard.type(" 没有注册类")
    page.wait_for_function(
        "before => document.querySelector('#hits .hit .title').innerText !== before[0]", arg=titles_before
    )
    assert page.locator("#hits mark").count() > 0  # highlighted snippets
    assert re.search(r"/\?q=", page.url)
    page.reload()
    assert page.input_value("#q") == "许可证 没有注册类"
    assert page.locator("#hits .hit").count() > 0  # rendered with the page, no typing needed


def test_bookmarked_search_opens_with_results_and_facts(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/?q={quote(QUERY)}")
    first = page.locator("#hits .hit").first
    assert first.get_attribute("data-id") == str(server.licensing_id)
    facts = first.locator(".facts").inner_text()
    assert "最后审核：" in facts and "有用 0" in facts and "服务：" in facts
    assert page.locator("#hits .hit .path").count() > 0  # heading paths
    shot(page, "search")


def test_low_confidence_banner_opens_a_ticket_with_one_key(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    page.keyboard.type("食堂的饭菜太咸了")
    banner = page.locator("#low-confidence")
    banner.wait_for()
    assert "没有把握的答案 — 建议转二线" in banner.inner_text()
    shot(page, "search-low-confidence")
    page.keyboard.press("Escape")  # leave the box
    page.keyboard.press("t")
    page.wait_for_url(re.compile(r"/ui/tickets/new\?title="))
    assert page.input_value("input[name=title]") == "食堂的饭菜太咸了"


def test_filters_narrow_the_results(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/?q={quote('打印')}")
    assert page.locator(f"#hits .hit[data-id='{server.hostile_id}']").count() == 1
    page.select_option("select[name=kind]", "faq")
    page.wait_for_function("() => !document.querySelector('#hits')")
    assert page.locator("#results").inner_text().strip().startswith(("没有把握", "没有找到"))


def test_phone_width_layout_has_no_horizontal_scroll(browser, server: Server) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import log_in, new_page

    phone = new_page(browser, server, width=390, height=844)
    try:
        log_in(phone, server, next_path=f"/?q={quote(QUERY)}")
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(phone, "search-phone")
    finally:
        phone.context.close()
