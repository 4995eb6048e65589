"""Post-incident reviews: the template, parsing real write-ups, search and filters, known errors, import.

The complete review below is the real case "驱逐导致服务中断" from ``k8s-troubleshooting/avoid/cases`` (CC BY-NC-SA,
see articles/k8s-troubleshooting/LICENSE) rewritten into our template; its facts are the write-up's.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from kb.articles.filters import ArticleFilter
from kb.articles.reviews import KIND, REVIEW_TAG, SECTIONS, section_of, split_sections
from kb.service import KnowledgeBase
from tests.helpers import BUNDLED, search_ids

CASES = BUNDLED / "k8s-troubleshooting/avoid/cases"
EVICTION_CASE = (CASES / "eviction-leads-to-service-disruption.md").read_text(encoding="utf-8")

EVICTION_REVIEW = """---
title: 驱逐故障节点导致业务 10 分钟不可用
service: 容器平台
severity: P2
incident_id: INC-20190412-0007
started_at: 2019-04-12T14:03:00+08:00
resolved_at: 2019-04-12T14:13:00+08:00
tickets: [INC-20190412-0007, REQ-20190412-0031]
---

## 概述

TKE 一客户的某个节点无法挂载 nfs，通过新加节点并驱逐故障节点上的 pod 来规避，期间其它节点上的大量 pod 集体重启，
连不上 kube-dns，无法解析 service。

## 影响

业务对外服务不可用约 10 分钟。

## 时间线

- 14:03 驱逐故障节点上的 pod
- 14:04 其它节点 pod 解析 service 失败，开始重启
- 14:13 新节点上的 kube-dns 启动，业务恢复

## 根因

kube-dns 的两个副本都在被驱逐的节点上；驱逐是先删除再创建，不是滚动更新。新节点上 kubelet 未指定
`--serialize-image-pulls`，默认值 true，即串行下载镜像，kube-dns 的镜像排在 1~2GB 的大镜像之后，很久才启动。

## 处置过程

分析 kubelet 日志，确认 kube-dns 从拉镜像到容器启动之间耗时很长；等待镜像下载完成后 kube-dns 启动，解析恢复。

## 改进项

- 避免服务单点故障：多副本，并加反亲和性
- 设置 preStop hook 与 readinessProbe，更新路由规则
"""


def test_headings_map_to_template_sections() -> None:
    assert section_of("3. 原因分析") == "根因"
    assert section_of("问题描述") == "概述"
    assert section_of("影响范围") == "影响"
    assert section_of("一、排查过程") == "处置过程"
    assert section_of("Root Cause") == "根因"
    assert section_of("参考资料") is None
    body = (
        "## 问题现象\n\n现象。\n\n```bash\n# 不是标题\nkubectl get pods\n```\n\n"
        "## 参考资料\n\n链接\n\n## 原因分析\n\n原因。\n"
    )
    sections = split_sections(body)
    assert sections["概述"].startswith("现象。") and "# 不是标题" in sections["概述"]
    assert "**参考资料**" in sections["概述"]  # an unrecognised heading stays with the section before it
    assert sections["根因"] == "原因。"


def test_complete_review_is_published_searchable_and_filterable(client: TestClient) -> None:
    assert client.get("/reviews/template").text.startswith("---\ntitle:")
    response = client.post("/reviews", json={"body": EVICTION_REVIEW})
    assert response.status_code == 201, response.text
    created = response.json()
    rid = created["article"]["id"]
    assert created["missing"] == [] and created["article"]["status"] == "published"
    assert created["article"]["kind"] == KIND and {REVIEW_TAG, "P2"} <= set(created["article"]["tags"])
    assert created["review"]["incident_id"] == "INC-20190412-0007"
    assert created["review"]["tickets"] == ["INC-20190412-0007", "REQ-20190412-0031"]

    query = "kube-dns 镜像串行下载 serialize-image-pulls"
    assert search_ids(client, query)[0] == rid
    assert search_ids(client, query, kind=KIND, tags="P2") == [rid]
    assert rid not in search_ids(client, query, kind="article")
    assert rid not in search_ids(client, query, tags="P1")
    hit = client.get("/search", params={"q": "串行下载镜像 根因", "kind": KIND}).json()["results"][0]
    assert hit["article_id"] == rid and hit["heading_path"][-1] == "根因"

    review = client.get(f"/reviews/{rid}").json()
    assert list(review["sections"]) == list(SECTIONS)
    assert "--serialize-image-pulls" in review["sections"]["根因"]


def test_known_error_from_a_review(client: TestClient) -> None:
    rid = client.post("/reviews", json={"body": EVICTION_REVIEW}).json()["article"]["id"]
    response = client.post(f"/reviews/{rid}/known-error")
    assert response.status_code == 201, response.text
    known = response.json()["article"]
    assert known["kind"] == "known_error" and known["status"] == "draft"
    assert known["meta"]["source_review"] == rid
    body = known["body"]
    assert body.index("## 症状") < body.index("## 原因") < body.index("## 解决方法") < body.index("## 适用范围")
    assert "--serialize-image-pulls" in body.split("## 原因")[1].split("## 解决方法")[0]
    assert "反亲和性" in body  # the improvement items become prevention in the resolution
    assert client.get(f"/reviews/{rid}").json()["review"]["known_errors"] == [known["id"]]
    query = "kube-dns 镜像串行下载"
    assert known["id"] not in search_ids(client, query)  # a draft until reviewed
    assert known["id"] in search_ids(client, query, status="draft", kind="known_error")
    assert client.post(f"/reviews/{known['id']}/known-error").json()["error"] == "invalid_input"
    assert client.post("/reviews/999999/known-error").status_code == 404


def test_review_missing_sections_is_a_draft_listing_them(client: TestClient) -> None:
    response = client.post("/reviews", json={"body": EVICTION_CASE})
    assert response.status_code == 201
    created = response.json()
    assert created["article"]["status"] == "draft"
    assert created["missing"] == ["影响", "时间线", "根因", "改进项"]
    assert set(created["sections"]) == {"概述", "处置过程"}
    assert client.get(f"/reviews/{created['article']['id']}").json()["missing"] == created["missing"]


def test_case_write_ups_import_as_reviews(kb: KnowledgeBase) -> None:
    report = kb.writer.import_paths([CASES], "tester", as_reviews=True)
    assert report.created == 12 and not report.errors and len(report.skipped) == 1  # _index.md is a listing
    articles, total = kb.store.list_articles(ArticleFilter(statuses=(), kinds=(KIND,)))
    assert total == 12
    assert all(a.status == "draft" and a.meta["review"]["missing"] for a in articles)
    schema = next(a for a in articles if a.source_path == "schemaerror-when-using-kubectl-apply-or-edit.md")
    sections = split_sections(kb.store.get(schema.id).body)  # a listing never loads bodies
    assert "metrics-server" in sections["根因"] and "回滚" in sections["处置过程"]
    assert kb.writer.import_paths([CASES], "tester", as_reviews=True).unchanged == 12
