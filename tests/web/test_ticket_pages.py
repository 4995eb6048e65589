"""The ticket pages in a real browser: a ticket taken in from the page, its suggestions re-run as a work note is
typed, the note saved into the event history, and the queue with its SLA clock."""

from __future__ import annotations

import re

from tests.web.conftest import Server, shot


def test_ticket_suggestions_follow_the_note_being_typed(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/ui/tickets/new?title=" + "打印机无法打印")
    page.fill("textarea[name=description]", "用户的打印机一直显示脱机")
    page.get_by_role("button", name="提交工单").click()
    page.wait_for_url(re.compile(r"/ui/tickets/\d+$"))
    first_before = page.locator("#suggestions .suggested li").first.inner_text()
    page.fill("#note", "")
    page.locator("#note").press_sequentially("远程桌面 没有可用的许可证 RD 许可证服务器", delay=10)
    page.wait_for_function(
        "before => document.querySelector('#suggestions .suggested li').innerText !== before", arg=first_before
    )
    assert "没有可用的许可证" in page.locator("#suggestions .suggested").inner_text()
    page.get_by_role("button", name="添加记录").click()
    page.wait_for_load_state()
    assert "远程桌面 没有可用的许可证" in page.locator("#work-notes").inner_text()
    assert page.locator("#events li", has_text="note").count() == 1
    assert page.locator("#proposed-group").count() == 1
    shot(page, "ticket")


def test_queue_lists_open_tickets_with_sla_clocks_and_filters(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/ui/tickets/new?title=" + "邮箱收不到邮件")
    page.get_by_role("button", name="提交工单").click()
    page.wait_for_url(re.compile(r"/ui/tickets/\d+$"))
    ticket_id = page.url.rsplit("/", 1)[1]
    page.goto("/ui/tickets")
    row = page.locator(f"#queue tr[data-id='{ticket_id}']")
    assert re.search(r"剩余|超时", row.locator("td.sla").inner_text())
    shot(page, "tickets")
    page.select_option("select[name=channel]", "email")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"channel=email"))
    assert page.locator(f"#queue tr[data-id='{ticket_id}']").count() == 0
