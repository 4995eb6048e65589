"""Update proposals in the editor's review queue (the whole app in process): their own section with the diff
against the article they would update, accept (a new version of that article, the proposal retired) and reject
(the proposal retired, the article untouched) through the writer's use cases, as the API's
``POST /articles/{id}/proposal/accept|reject``; a refused decision changes nothing."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from kb.articles.content import ArticleContent, parse_markdown
from tests.helpers import kb_of, login
from tests.web.conftest import csrf_of, page_login

TARGET = "# 打印机脱机\n\n## 解决\n\n1. 重启打印后台处理程序。\n"
EVIDENCE = "## 症状\n\n打印机显示脱机。\n\n## 解决\n\n1. 重启打印后台处理程序。\n2. 重新安装驱动 v5.2。\n"


def _proposal(client: TestClient, target: int, title: str = "更新建议：打印机脱机") -> int:
    meta: dict[str, Any] = {
        "proposal": "update",
        "target_article": target,
        "distilled_from": {"source": "kb-zh", "tickets": ["INC-1", "INC-2"], "group_size": 2},
    }
    content = ArticleContent(title=title, body=EVIDENCE, kind="troubleshooting", status="draft", meta=meta)
    article = kb_of(client).writer.create(content, "distill").article
    assert article is not None
    return article.id


def _target(client: TestClient) -> int:
    article = kb_of(client).writer.create(parse_markdown(TARGET, service="打印"), "tests").article
    assert article is not None
    return article.id


def test_queue_shows_proposals_apart_with_their_diff(web_client: TestClient) -> None:
    page_login(web_client)
    target = _target(web_client)
    proposal = _proposal(web_client, target)
    kb_of(web_client).writer.create(ArticleContent(title="普通草稿", status="draft"), "tests")
    page = web_client.get("/ui/review").text
    section = page[page.index('id="proposals"') : page.index('id="drafts"')]
    drafts = page[page.index('id="drafts"') : page.index('id="in-review"')]
    assert f'data-id="{proposal}"' in section and f'href="/ui/articles/{target}"' in section
    assert '<span class="add">+2. 重新安装驱动 v5.2。</span>' in section  # the diff against the target
    assert "归纳自 2 张工单" in section
    assert "普通草稿" in drafts and "更新建议" not in drafts  # not listed twice


def test_accept_makes_a_new_version_of_the_target_and_retires_the_proposal(web_client: TestClient) -> None:
    page_login(web_client)
    kb = kb_of(web_client)
    target = _target(web_client)
    proposal = _proposal(web_client, target)
    token = csrf_of(web_client, "/ui/review")
    assert web_client.post(f"/ui/proposals/{proposal}/accept", data={}).status_code == 403  # no CSRF token
    assert kb.store.get(target).version == 1
    answer = web_client.post(f"/ui/proposals/{proposal}/accept", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith(f"/ui/articles/{target}?accepted=")
    updated = kb.store.get(target)
    assert updated.version == 2 and "重新安装驱动 v5.2" in updated.body and updated.status == "published"
    assert updated.title == "打印机脱机" and updated.meta["accepted_proposals"] == [proposal]
    decided = kb.store.get(proposal)
    assert decided.status == "retired" and decided.superseded_by == target
    assert "重新安装驱动" in web_client.get(answer.headers["location"]).text
    again = web_client.post(f"/ui/proposals/{proposal}/accept", data={"csrf_token": token})
    assert again.status_code == 409 and 'class="error"' in again.text
    assert kb.store.get(target).version == 2  # the refused decision changed nothing


def test_reject_retires_the_proposal_and_leaves_the_target(web_client: TestClient) -> None:
    page_login(web_client)
    kb = kb_of(web_client)
    target = _target(web_client)
    proposal = _proposal(web_client, target)
    token = csrf_of(web_client, "/ui/review")
    answer = web_client.post(f"/ui/proposals/{proposal}/reject", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/review#proposals"
    assert kb.store.get(target).version == 1
    rejected = kb.store.get(proposal)
    assert rejected.status == "retired" and rejected.meta["proposal_rejected_by"]
    assert f'data-id="{proposal}"' not in web_client.get("/ui/review").text


def test_refusals_change_nothing_and_the_api_uses_the_same_use_case(web_client: TestClient) -> None:
    page_login(web_client)
    kb = kb_of(web_client)
    target = _target(web_client)
    token = csrf_of(web_client, "/ui/review")
    plain = web_client.post(f"/ui/proposals/{target}/accept", data={"csrf_token": token})
    assert plain.status_code == 422 and kb.store.get(target).version == 1  # not a proposal
    assert web_client.post(f"/ui/proposals/{target}/merge", data={"csrf_token": token}).status_code == 422
    kb.writer.set_status(target, "retired", "tests")
    stale = _proposal(web_client, target)
    assert "要更新的文章已停用" in web_client.get("/ui/review").text  # the queue says why it cannot be accepted
    refused = web_client.post(f"/ui/proposals/{stale}/accept", data={"csrf_token": token})
    assert refused.status_code == 409 and kb.store.get(stale).status == "draft"  # target retired: nothing changed
    live = _target(web_client)
    proposal = _proposal(web_client, live)
    login(web_client)  # the API, with a Bearer token
    api = web_client.post(f"/articles/{proposal}/proposal/accept")
    assert api.status_code in (200, 202), api.text
    assert api.json()["article"]["id"] == live and kb.store.get(proposal).status == "retired"
    assert re.search("重新安装驱动", kb.store.get(live).body)
