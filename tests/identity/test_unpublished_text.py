"""What an unpublished (draft, in review) or hidden article holds never reaches a caller who may not read it through
another article: its earlier versions, its successor link, its retired predecessor's words, which identifiers an
index holds, or the ranks of ``/search/why``. Found by session 9's outside tester. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import create, new_user, search_ids

pytestmark = pytest.mark.security


def publish(client: TestClient, aid: object) -> None:
    for status in ("in_review", "published"):
        assert client.post(f"/articles/{aid}/status", json={"status": status}).status_code == 200


def test_versions_saved_as_a_draft_stay_the_editors(client: TestClient) -> None:
    """Once published, the draft's versions (with their notes) were readable by every requester."""
    draft = create(client, "# 黄鹂方案\n\n草稿备注：口令见内部 wiki DRAFTSECRET。", status="draft", visibility="public")
    aid = draft["id"]
    assert client.put(f"/articles/{aid}", json={"body": "# 黄鹂方案\n\n重启打印后台处理程序。"}).status_code == 200
    publish(client, aid)
    requester = new_user(client, "req.nine", ["requester"])
    listed = requester.get(f"/articles/{aid}/versions").json()
    assert [v["status"] for v in listed] == ["published"]
    for path in (f"/articles/{aid}/versions/1", f"/articles/{aid}/versions/2", f"/articles/{aid}/diff?from=1"):
        hidden = requester.get(path)
        assert hidden.status_code == 404, path
        assert "DRAFTSECRET" not in hidden.text
    assert requester.get(f"/articles/{aid}").status_code == 200  # the published text is theirs
    # the editor (the client's own user) still reads every version
    assert "DRAFTSECRET" in client.get(f"/articles/{aid}/versions/1").json()["body"]
    assert len(client.get(f"/articles/{aid}/versions").json()) == 4


def test_a_draft_successor_is_not_named_to_who_may_not_read_it(client: TestClient) -> None:
    old = create(client, "# 旧方案\n\n重启服务。", status="published", visibility="public")["id"]
    draft = create(client, "# 黄鹂方案 公共草稿\n\n新做法。", status="draft", visibility="public")["id"]
    retired = client.post(f"/articles/{old}/status", json={"status": "retired", "superseded_by": draft})
    assert retired.status_code == 200, retired.text
    requester = new_user(client, "req.ten", ["requester"])
    shown = requester.get(f"/articles/{old}")
    assert shown.status_code == 200
    assert shown.json()["superseded_by"] is None and "Link" not in shown.headers
    page = new_user(client, "req.eleven", ["requester"])
    html = page.get(f"/ui/articles/{old}").text
    assert "黄鹂方案" not in html and f"/ui/articles/{draft}" not in html
    # the editor sees the successor named
    mine = client.get(f"/articles/{old}")
    assert mine.json()["superseded_by"] == draft and f"</articles/{draft}>" in mine.headers["Link"]
    publish(client, draft)  # published, the successor is named to everyone
    shown = requester.get(f"/articles/{old}")
    assert shown.json()["superseded_by"] == draft and f"</articles/{draft}>" in shown.headers["Link"]


def test_a_hidden_retired_articles_words_do_not_find_its_successor(client: TestClient) -> None:
    """A requester could probe a retired restricted article's text, with a graded score, through its public
    successor."""
    public = create(client, "# VPN 错误 809\n\n放行 UDP 500 和 4500。", status="published", visibility="public")["id"]
    secret = create(
        client, "# 内部\n\n鲸鲨协议 机密 并购。", status="published", visibility="restricted", restricted_to=["网络组"]
    )["id"]
    requester = new_user(client, "req.twelve", ["requester"])
    network = new_user(client, "net.twelve", ["agent"], ("网络组",))
    assert search_ids(requester, "鲸鲨协议", mode="bm25") == []
    retired = client.post(f"/articles/{secret}/status", json={"status": "retired", "superseded_by": public})
    assert retired.status_code == 200, retired.text
    for mode in ("bm25", "hybrid"):
        assert public not in search_ids(requester, "鲸鲨协议", mode=mode), mode
    assert search_ids(network, "鲸鲨协议", mode="bm25") == [public]  # who may read it is led to the successor


def test_identifiers_in_drafts_are_searched_as_if_absent(client: TestClient) -> None:
    """A requester learnt which identifiers a public draft holds: the index dropped the parts of an identifier an
    article held, and drafts counted."""
    create(client, "# 草稿\n\n配置项 hl-5521.beta 的说明。", status="draft", visibility="public")
    requester = new_user(client, "req.thirteen", ["requester"])

    def terms(who: TestClient, q: str) -> list[str]:
        body = who.get("/search", params={"q": q, "explain": True, "mode": "bm25"}).json()
        return body["explain"]["terms"]  # type: ignore[no-any-return]

    held, absent = terms(requester, "hl-5521.beta"), terms(requester, "qq-9999.omega")
    assert "hl" in held and "5521" in held  # the parts stand in, as for an identifier nothing holds
    assert "qq" in absent and "9999" in absent
    assert terms(client, "hl-5521.beta") == ["hl-5521.beta"]  # an editor may read the draft: parts dropped


def test_why_ranks_only_among_what_the_caller_may_read(client: TestClient) -> None:
    body = "# VPN 客户端错误 809\n\n放行 UDP 500 和 4500。"
    published = create(client, body, status="published", visibility="public")
    create(client, "# 黄鹂方案\n\nVPN 客户端错误 809 黄鹂方案 黄鹂方案。", status="draft", visibility="public")
    requester = new_user(client, "req.fourteen", ["requester"])
    q = "VPN 客户端错误 809 黄鹂方案"
    assert search_ids(requester, q, mode="bm25") == [published["id"]]
    why = requester.get("/search/why", params={"q": q, "article_id": published["id"]})
    assert why.status_code == 200, why.text
    assert why.json()["bm25"]["rank"] == 1
