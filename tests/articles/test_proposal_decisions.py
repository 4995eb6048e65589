"""Accepting an update proposal writes two articles (the target's new version, the proposal retired) in one
transaction, decided under the rows' locks: of two concurrent accepts one applies it and the other finds it decided
(found by session 9: both applied it, leaving the target with two new versions)."""

from __future__ import annotations

import threading
from typing import Any

from kb.articles.content import ArticleContent, parse_markdown
from kb.errors import ConflictError
from kb.service import KnowledgeBase

TARGET = "# 打印机脱机\n\n## 解决\n\n1. 重启打印后台处理程序。\n"
EVIDENCE = "## 症状\n\n打印机显示脱机。\n\n## 解决\n\n1. 重启打印后台处理程序。\n2. 重新安装驱动 v5.2。\n"


def _target_and_proposal(kb: KnowledgeBase) -> tuple[int, int]:
    target = kb.writer.create(parse_markdown(TARGET, service="打印"), "tests").article
    assert target is not None
    meta: dict[str, Any] = {"proposal": "update", "target_article": target.id}
    content = ArticleContent(
        title="更新建议：打印机脱机", body=EVIDENCE, kind="troubleshooting", status="draft", meta=meta
    )
    proposal = kb.writer.create(content, "distill").article
    assert proposal is not None
    return target.id, proposal.id


def test_two_concurrent_accepts_apply_the_proposal_once(kb: KnowledgeBase) -> None:
    target, proposal = _target_and_proposal(kb)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def accept() -> None:
        start.wait()
        try:
            kb.writer.accept_proposal(proposal, "editor")
            outcomes.append("accepted")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["accepted", "conflict"]
    updated = kb.store.get(target)
    assert updated.version == 2 and updated.meta["accepted_proposals"] == [proposal]
    assert [v.version for v in kb.store.versions(target)] == [1, 2]
    decided = kb.store.get(proposal)
    assert decided.status == "retired" and decided.superseded_by == target


def test_a_refused_accept_changes_neither_article(kb: KnowledgeBase) -> None:
    """A retired target cannot take the proposal (409): neither article gets a version."""
    target, proposal = _target_and_proposal(kb)
    kb.writer.set_status(target, "retired", "tests")
    before = (kb.store.get(target).version, kb.store.get(proposal).version)
    try:
        kb.writer.accept_proposal(proposal, "editor")
    except ConflictError:
        pass
    else:
        raise AssertionError("a retired target took the proposal")
    assert (kb.store.get(target).version, kb.store.get(proposal).version) == before
    assert kb.store.get(proposal).status == "draft"
