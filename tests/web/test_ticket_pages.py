"""The ticket pages in a real browser: a ticket taken in from the page, its suggestions re-run as a work note is
typed, the note saved into the event history, and the queue with its SLA clock."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.web.conftest import Server, shot


def test_ticket_suggestions_follow_the_note_being_typed(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/ui/tickets/new?title=" + "VPN 连上了但是 OA 打不开")
    page.fill("textarea[name=description]", "VPN 显示已连接，打开 OA 系统一直超时")
    shot(page, "ticket-new")
    page.get_by_role("button", name="提交工单").click()
    page.wait_for_url(re.compile(r"/ui/tickets/\d+$"))
    assert "INC-10" in page.locator("#suggestions .similar").inner_text()  # similar closed tickets with their fixes
    first_before = page.locator("#suggestions .suggested li").first.inner_text()
    page.fill("#note", "")
    page.locator("#note").press_sequentially("远程桌面 没有可用的许可证 RD 许可证服务器", delay=10)
    page.wait_for_function(
        "before => document.querySelector('#suggestions .suggested li').innerText !== before", arg=first_before
    )
    assert "没有可用的许可证" in page.locator("#suggestions .suggested").inner_text()
    page.get_by_role("button", name="添加记录").click()
    # the saved note is on the page that answers the form (auto-waiting: wait_for_load_state could return on the
    # page before it, which flaked with test suites sharing the cores)
    expect(page.locator("#work-notes")).to_contain_text("远程桌面 没有可用的许可证")
    events = page.locator("#events li strong").all_inner_texts()
    assert events.count("工作记录") == 1 and events[0] == "创建", events  # event names in Chinese
    assert not any(re.fullmatch("[a-z_]+", name) for name in events), events  # no stored kind shown raw
    assert page.locator("#proposed-group").count() == 1
    shot(page, "ticket", full_page=True)


def test_queue_lists_open_tickets_with_sla_clocks_and_filters(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/ui/tickets/new?title=" + "邮箱收不到邮件")
    page.get_by_role("button", name="提交工单").click()
    page.wait_for_url(re.compile(r"/ui/tickets/\d+$"))
    ticket_id = page.url.rsplit("/", 1)[1]
    page.goto("/ui/tickets")
    row = page.locator(f"#queue tr[data-id='{ticket_id}']")
    assert re.search(r"剩余|超时", row.locator("td.sla").inner_text())
    assert page.locator("#queue tr.sla-breached td.sla", has_text="超时").count() >= 1  # replayed October tickets
    shot(page, "tickets")
    page.select_option("select[name=channel]", "email")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"channel=email"))
    assert page.locator(f"#queue tr[data-id='{ticket_id}']").count() == 0


def test_dashboard_draws_its_charts_from_the_replayed_desk(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import DESK_ROWS, REPLAY_WINDOW

    page.goto(f"/ui/analysis?start={REPLAY_WINDOW[0]}&end={REPLAY_WINDOW[1]}")
    for chart in ("channels", "response", "within"):
        page.locator(f"#chart-{chart}[data-drawn='true'] canvas").wait_for()
    summary = page.locator("#summary").inner_text()
    assert re.search(rf"工单\s*{DESK_ROWS}（已关闭 {(DESK_ROWS + 1) // 2}）", summary), summary
    assert "均分" in summary
    assert page.locator("#services tr").count() >= 2  # numbers beside the charts
    shot(page, "analysis")
    with page.expect_download() as download:
        page.click("#csv")
    content = download.value.path().read_text(encoding="utf-8")
    assert content.startswith("section,key,metric,value") and f"summary,,tickets,{DESK_ROWS}" in content
