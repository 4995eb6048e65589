"""What /analysis (and its dashboard) shows of tickets (kb.desk.analysis): every ticket counts, but example titles
and ticket numbers come only from tickets the caller may read, titles redacted; a caller without ticket.read
(kb_editor) gets the counts only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.desk.conftest import as_user

WINDOW = {"start": "2000-01-01T00:00:00", "end": "2100-01-01T00:00:00"}
SECRET = "P@ssw0rd123"


@pytest.mark.security
def test_frequent_problems_show_only_readable_redacted_titles(web: TestClient) -> None:
    client = web
    for i in range(3):  # a frequent problem in group 服务台 (日常服务), a password in its title
        made = client.post(
            "/tickets",
            json={
                "title": f"VPN 登录失败 密码 {SECRET}",
                "description": f"VPN 客户端报错 691，第 {i} 次",
                "service": "日常服务",
            },
        )
        assert made.status_code == 201
    assert (
        client.post("/tickets", json={"title": "态度差", "description": "投诉", "service": "投诉"}).status_code == 201
    )
    lead = client.get("/analysis", params=WINDOW).json()  # desk_lead: every ticket
    assert [(p["size"], len(p["tickets"])) for p in lead["frequent_problems"]] == [(3, 3)]
    example = lead["frequent_problems"][0]["example"]
    assert example.startswith("VPN 登录失败") and SECRET not in example and "[密码]" in example
    assert lead["complaints"] == {"count": 1, "ids": ["T00000004"]}

    desk = as_user(client, "he.desk", ["engineer"], ("服务台",))
    other_group = as_user(client, "wu.net", ["engineer"], ("网络组",))
    editor = as_user(client, "ed.itor", ["kb_editor"])
    assert desk.get("/analysis", params=WINDOW).json()["frequent_problems"] == lead["frequent_problems"]
    for caller in (other_group, editor):
        answer = caller.get("/analysis", params=WINDOW)
        assert answer.status_code == 200
        report = answer.json()
        assert report["frequent_problems"] == [{"size": 3, "example": None, "tickets": []}]
        assert report["complaints"] == {"count": 1, "ids": []} and report["tickets"] == 4
        for text in (answer.text, caller.get("/analysis", params=WINDOW | {"format": "csv"}).text):
            assert "VPN 登录失败" not in text and SECRET not in text and "T0000000" not in text
        page = caller.get("/ui/analysis", params={"start": "2020-01-01", "end": "2029-12-01"})
        assert page.status_code == 200 and "VPN 登录失败" not in page.text and "T00000001" not in page.text
    assert SECRET not in client.get("/ui/analysis", params={"start": "2020-01-01", "end": "2029-12-01"}).text
