"""The HTTP API end to end through TestClient, with the real app, database and index (hash encoder)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import anonymous, create, kb_of, login, search_ids, sysadmin


def test_article_crud_and_read_your_writes(client: TestClient) -> None:  # BL-34
    for i in range(25):
        article = create(client, f"# 标记{i}号\n唯一标记词 marker{i}x 的正文", tags=["测试"])
        assert article["version"] == 1 and article["tags"] == ["测试"]
        assert search_ids(client, f"marker{i}x", mode="bm25") == [article["id"]]
    got = client.get(f"/articles/{article['id']}").json()
    assert got["title"] == "标记24号" and got["html"].startswith("<h1>")
    updated = client.put(f"/articles/{article['id']}", json={"body": "# 标记24号\n新的正文 marker99y"})
    assert updated.status_code == 200 and updated.json()["article"]["version"] == 2
    assert search_ids(client, "marker24x", mode="bm25") == []
    assert search_ids(client, "marker99y", mode="bm25") == [article["id"]]
    listing = client.get("/articles", params={"limit": 5}).json()
    assert listing["total"] == 25 and len(listing["items"]) == 5
    assert client.delete(f"/articles/{article['id']}").status_code == 200
    assert search_ids(client, "marker99y", mode="bm25") == []
    assert client.get(f"/articles/{article['id']}").status_code == 404


def test_a_replacement_body_s_front_matter_is_applied_and_validated(client: TestClient) -> None:
    """Found by session 10's outside tester: PUT kept the stored title, tags and visibility even when the new
    body's front matter named others, and accepted invalid front matter silently."""
    article = create(client, "# 旧标题\n正文 marker77q", tags=["旧"], service="邮件服务")
    url = f"/articles/{article['id']}"
    body = "---\ntitle: 新标题\ntags: [新, 邮件]\nvisibility: internal\nowner: 张三\n---\n# 正文标题\n新的正文"
    changed = client.put(url, json={"body": body})
    assert changed.status_code == 200, changed.text
    got = client.get(url).json()
    assert (got["title"], got["tags"], got["visibility"]) == ("新标题", ["新", "邮件"], "internal")
    assert got["service"] == "邮件服务"  # not named by the front matter: kept
    assert got["meta"] == {"owner": "张三"}
    explicit = client.put(url, json={"body": body, "title": "请求里的标题"})
    assert explicit.status_code == 200 and client.get(url).json()["title"] == "请求里的标题"
    for bad in ("---\nvisibility: everyone\n---\n正文", "---\ntitle: [\n---\n正文", "---\nkind: nonsense\n---\nx"):
        refused = client.put(url, json={"body": bad})
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_article", refused.text
    after = client.get(url).json()
    assert (after["title"], after["version"], after["body"]) == ("请求里的标题", got["version"] + 1, got["body"])
    plain = client.put(url, json={"body": "# 另一个标题\n没有前言的正文"})  # no front matter: stored fields kept
    assert plain.status_code == 200 and client.get(url).json()["title"] == "请求里的标题"


@pytest.mark.parametrize("front", ['title: "a\\0b"', 'tags: ["x\\x01"]', 'owner: "\\e[31m"', 'summary: "\\x7f"'])
def test_control_characters_in_front_matter_are_refused_on_every_write_path(client: TestClient, front: str) -> None:
    """Session 11's outside tester: a YAML escape made a NUL after the JSON guard's check, and PostgreSQL
    answered 500 (SQLite stored it). Now 422 on create, replace and reviews, and nothing is stored."""
    body = f"---\n{front}\n---\n# 标题\n正文"
    before = client.get("/articles").json()["total"]
    for method, path in (("POST", "/articles"), ("POST", "/reviews")):
        refused = client.request(method, path, json={"body": body})
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_article", refused.text
    article = create(client, "# 好的文章\n正文")
    assert client.put(f"/articles/{article['id']}", json={"body": body}).status_code == 422
    assert client.get("/articles").json()["total"] == before + 1
    shell = create(client, "# 终端输出\n彩色提示 \x1b[31m 红色")  # the body keeps pasted terminal output
    assert "\x1b[31m" in client.get(f"/articles/{shell['id']}").json()["body"]


def test_errors_are_json_with_codes(client: TestClient) -> None:
    missing = client.get("/articles/99999")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert client.delete("/articles/99999").status_code == 404  # BL-29
    assert client.put("/articles/99999", json={"body": "x", "title": "x"}).status_code == 404
    too_long = client.get("/search", params={"q": "打" * 1001})
    assert too_long.status_code == 422 and too_long.json()["error"] == "query_too_long"
    bad_mode = client.get("/search", params={"q": "x", "mode": "magic"})
    assert bad_mode.status_code == 422 and bad_mode.json()["error"] == "invalid_input"
    no_title = client.post("/articles", json={"body": "没有标题的正文"})
    assert no_title.status_code == 422 and no_title.json()["error"] == "invalid_article"
    bad_kind = client.post("/articles", json={"body": "x", "title": "t", "kind": "nonsense"})
    assert bad_kind.status_code == 422 and "kind" in bad_kind.json()["detail"]
    huge = client.post("/articles", json={"title": "大", "body": "字" * 305_000})
    assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large"
    assert client.get("/articles").json()["total"] == 0  # nothing was written by the failures


def test_degenerate_queries_answer_200(client: TestClient) -> None:  # BL-12
    create(client, "# 打印机卡纸\n打印机卡纸处理步骤")
    for q in ("", " ", "怎么", "的", "？？？", "是 的 了", "　　", "😀"):
        response = client.get("/search", params={"q": q})
        assert response.status_code == 200, q
        body = response.json()
        assert body["no_keyword_terms"] is True
        assert all("bm25" not in (r["explain"] or {}) for r in body["results"])


def test_keyword_leg_returns_only_matches_with_positive_scores(client: TestClient) -> None:  # BL-09
    made = {
        t: create(client, f"# {t}\n{t}")["id"]
        for t in ("打印机卡纸处理", "邮箱容量已满", "VPN 频繁断线", "域账号被锁定")
    }
    response = client.get("/search", params={"q": "卡纸", "mode": "bm25"}).json()
    assert [r["article_id"] for r in response["results"]] == [made["打印机卡纸处理"]]
    assert response["results"][0]["score"] > 0
    assert search_ids(client, "天气预报", mode="bm25") == []


def test_xss_never_reaches_html_or_snippets(client: TestClient) -> None:  # BL-42, BL-43
    body = (
        "# 脚本测试\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n<iframe src=//evil.example>\n"
        "[点我](javascript:alert(1)) 恶意脚本标记"
    )
    article = create(client, body)
    html = client.get(f"/articles/{article['id']}").json()["html"]
    for bad in ("<script", "<img", "<iframe", 'href="javascript:'):
        assert bad not in html
    results = client.get("/search", params={"q": "恶意脚本标记 script alert"}).json()["results"]
    assert results and results[0]["article_id"] == article["id"]
    snippet = results[0]["snippet"]
    assert "<script" not in snippet and "<img" not in snippet and "<iframe" not in snippet
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0


def test_highlight_is_contiguous_and_valid(client: TestClient) -> None:  # BL-49
    create(client, "# 宕机\n数据库服务器宕机处理")
    snippet = client.get("/search", params={"q": "数据库服务器"}).json()["results"][0]["snippet"]
    assert "<mark>数据库服务器</mark>" in snippet
    assert snippet.count("<mark>") == snippet.count("</mark>")
    assert "<mark><mark>" not in snippet


def test_front_matter_in_body_fills_fields(client: TestClient) -> None:  # BL-47
    article = create(client, "---\ntitle: VPN 指南\ntags: [vpn, 网络]\nservice: network\n---\n# VPN 连接\n正文")
    assert article["title"] == "VPN 指南" and article["tags"] == ["vpn", "网络"] and article["service"] == "network"
    assert "tags:" not in article["html"] and "<hr" not in article["html"]
    assert search_ids(client, "VPN", service="network") == [article["id"]]
    assert search_ids(client, "VPN", service="mail") == []
    assert search_ids(client, "VPN", tags="网络") == [article["id"]]


def test_explain_shows_both_legs(client: TestClient) -> None:
    article = create(client, "# 错误 0x80070005\n错误 0x80070005 拒绝访问 的解决办法")
    body = client.get("/search", params={"q": "0x80070005", "explain": "true"}).json()
    assert body["explain"]["identifiers"] == ["0x80070005"]
    top = body["results"][0]
    assert top["article_id"] == article["id"]
    assert top["explain"]["bm25"]["rank"] == 1 and -1 <= top["explain"]["vector"]["score"] <= 1


def test_health_reports_counts(client: TestClient) -> None:
    create(client, "# 健康\n检查")
    body = sysadmin(client).get("/health").json()  # counts for those who read the metrics
    assert body["status"] == "ok" and body["database"]["ok"]
    index = body["index"]
    assert index["articles"] == 1 and index["db_chunks"] == index["bm25_chunks"] == index["vector_chunks"] >= 1
    assert body["model"]["name"] == "hash"


@pytest.mark.security
def test_health_tells_anonymous_callers_the_state_only(client: TestClient) -> None:
    """Found by the outside tester of session 6: anonymous ``/health`` showed article and chunk counts (and would
    show a database error's text); ``HEAD /health`` answered 405."""
    create(client, "# 健康\n检查")
    nobody = anonymous(client)
    assert nobody.get("/health").json() == {"status": "ok"}
    head = nobody.head("/health")
    assert head.status_code == 200 and head.content == b""
    kb_of(client).accounts.create("desk.health", ["agent"], "tests", password="Kb-health-2026!x", must_change=False)
    desk = anonymous(client)
    login(desk, "desk.health", "Kb-health-2026!x")
    assert desk.get("/health").json() == {"status": "ok"}  # counts are for those who read the metrics
    assert sysadmin(client).get("/health").json()["index"]["articles"] == 1


def test_near_duplicate_passages_do_not_fill_the_results(client: TestClient) -> None:
    text = "重启打印服务：打开服务管理器，找到 Print Spooler，右键重新启动，然后重新发送打印任务。"
    first = create(client, f"# 打印服务重启\n{text}")
    copies = {create(client, f"# 打印服务重启（副本{i}）\n{text}")["id"] for i in range(3)}
    other = create(client, "# 打印机驱动\n打印服务 打印任务 打印机驱动重新安装的步骤")
    results = client.get("/search", params={"q": "打印服务 重新启动"}).json()["results"]
    ids = [r["article_id"] for r in results]
    assert sorted(ids) == sorted([first["id"], other["id"]])  # one result for the copied passage ...
    folded = next(r for r in results if r["article_id"] == first["id"])["duplicates"]
    assert {d["article_id"] for d in folded} == copies  # ... listing the copies, not losing them
    assert all(d["title"].startswith("打印服务重启") for d in folded)
    assert search_ids(client, "打印服务 重新启动", limit=2) == ids[:2]


def test_why_endpoint(client: TestClient) -> None:
    article = create(client, "# 打印机卡纸\n打印机卡纸处理步骤")
    body = client.get("/search/why", params={"q": "打印机卡纸", "article_id": article["id"]}).json()
    assert body["hybrid_rank"] == 1 and body["bm25"]["rank"] == 1
    assert all(t["in"] for t in body["terms"])
    missing = client.get("/search/why", params={"q": "x", "article_id": 424242})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
